"""Grafana dashboards and Prometheus rules for the Xunjian wall, written as code.

The dashboards are built with grafana-foundation-sdk (`python -m dashboards` writes dashboards/json/);
the JSON is the build output and is committed, so Grafana provisions it without Python. Every query uses
only metrics listed in docs/metrics.md, and every threshold comes from the built-in packs.
"""
