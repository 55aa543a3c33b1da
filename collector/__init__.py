"""The Xunjian collector: gRPC ingest, state engine, incidents, findings, store, metrics and HTTP API."""
