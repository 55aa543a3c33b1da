"""A real collector process for the benchmarks: plain text on loopback, a temporary SQLite store.

The benchmarks measure the hot path and the collector's own work, so the collector runs without TLS and
without HTTP sign-in (`tls.mode: insecure`, `http.auth: none`), as `xunjian up` does on loopback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class BenchCollector:
    proc: subprocess.Popen[bytes]
    grpc_port: int
    http_port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_collector(tmp: Path, *, history: str | None = None, lost_after_s: float | None = None,
                    src: Path = ROOT, timeout_s: float = 30.0) -> BenchCollector:
    """Write a collector.yaml in `tmp`, start `python -m collector.server` from `src` (another checkout for a
    before/after comparison) with its output in tmp/collector.log, and wait until /healthz answers 200."""
    grpc_port, http_port = free_port(), free_port()
    store = f"url: 'sqlite:///{tmp}/collector.db'" + (f", history: {history}" if history else "")
    lines = [f"listen: {{grpc: '127.0.0.1:{grpc_port}', http: '127.0.0.1:{http_port}'}}", f"store: {{{store}}}"]
    if lost_after_s is not None:
        lines.append(f"agents: {{lost_after: {lost_after_s:g}s}}")
    lines += ["tls: {mode: insecure}", "http: {auth: none}"]
    (tmp / "collector.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = open(tmp / "collector.log", "wb")  # noqa: SIM115 - lives as long as the process
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen([sys.executable, "-m", "collector.server", str(tmp / "collector.yaml")], cwd=src,
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    collector = BenchCollector(proc, grpc_port, http_port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{collector.http}/healthz", timeout=1) as r:
                if r.status == 200:
                    return collector
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"collector did not start; see {tmp / 'collector.log'}:\n"
                     f"{(tmp / 'collector.log').read_text(errors='replace')[-2000:]}")
