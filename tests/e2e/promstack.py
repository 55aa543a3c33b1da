"""A real Prometheus and Alertmanager (Debian's packages) for end-to-end tests: free loopback ports, temp dirs.

Prometheus scrapes the test's collector every second and evaluates our rules every second; Alertmanager
delivers to a webhook receiver the test runs, so an alert is seen where a hospital's pager would see it.
"""

from __future__ import annotations

import json
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.harness import Fleet, Process, free_port, wait_for

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
SCRAPE_INTERVAL_S = 1


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def rules_for_test(source: Path, dest: Path, hold: str = "1s") -> Path:
    """Our rules with every alert's `for:` shortened to `hold`, and nothing else changed.

    A live test cannot wait the minutes a real `for:` holds; promtool's unit tests prove each `for:` on a
    virtual clock, and this copy proves the expressions and labels fire against live data.
    """
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "alert" in rule and "for" in rule:
                rule["for"] = hold
    dest.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return dest


def serve(fleet: Fleet, name: str, binary: str | None, config: dict[str, Any], args: list[str]) -> str:
    """Write `config` to a temp dir, start `binary` on a free loopback port, wait until it is ready.

    `args` may use {config}, {data} and {address}; returns the address (host:port).
    """
    assert binary, f"{name} is installed by scripts/test-deps.sh"
    root = fleet.root / name
    root.mkdir()
    path = root / f"{name}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    address = f"127.0.0.1:{free_port()}"
    proc = Process(name, [binary, *(a.format(config=path, data=root / "data", address=address) for a in args)],
                   fleet.root / f"{name}.log")
    fleet.procs.append(proc)
    proc.start()
    wait_for(lambda: ready(f"http://{address}/-/ready"), timeout=30, what=f"{name} ready")
    return address


def start_alertmanager(fleet: Fleet, webhook_url: str) -> str:
    """Alertmanager routing every alert to `webhook_url` at once; returns its host:port."""
    return serve(fleet, "alertmanager", ALERTMANAGER, {
        "route": {"receiver": "test", "group_by": ["alertname", "check"], "group_wait": "0s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}],
    }, ["--config.file={config}", "--storage.path={data}", "--web.listen-address={address}",
        "--cluster.listen-address="])


def start_prometheus(fleet: Fleet, collector_http: str, rules: Path, alertmanager: str, *,
                     site: str = "test-campus") -> str:
    """Prometheus scraping the collector as job `xunjian` with a `site` label; returns its base URL."""
    every = f"{SCRAPE_INTERVAL_S}s"
    address = serve(fleet, "prometheus", PROMETHEUS, {
        "global": {"scrape_interval": every, "evaluation_interval": every, "scrape_timeout": every},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "xunjian", "static_configs": [
            {"targets": [collector_http], "labels": {"site": site}}]}],
    }, ["--config.file={config}", "--storage.tsdb.path={data}", "--web.listen-address={address}"])
    return f"http://{address}"


class Webhook:
    """An HTTP receiver for Alertmanager's webhook: keeps every notification it is sent."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def alerts(self) -> list[dict[str, Any]]:
        return [a for n in list(self.received) for a in n.get("alerts", [])]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
