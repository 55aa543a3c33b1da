"""The Xunjian agent: config, scheduler, check execution, durable spool and gRPC stream to the collector."""

from __future__ import annotations
