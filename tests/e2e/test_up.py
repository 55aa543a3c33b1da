"""`xunjian up` as a newcomer runs it: collector + local agent with the built-in host checks, visible through
`xunjian status`, /metrics (accepted by promtool) and the console page; Ctrl-C stops both."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, require
from tests.e2e.harness import free_port, wait_for

pytestmark = pytest.mark.e2e


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_up_starts_collector_and_local_agent_with_host_checks(tmp_path: Path) -> None:
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "xunjian", "up", "--data-dir", str(tmp_path / "data"),
                               "--grpc", grpc, "--http", http], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        wait_for(lambda: "Xunjian is up" in log.read_text(), timeout=30, what="the banner")
        banner = log.read_text()
        for where in (f"http://{http}/", f"http://{http}/metrics", f"http://{http}/api/v1/agents", grpc):
            assert where in banner
        wait_for(lambda: all(f'"{c}"' in fetch(f"http://{http}/api/v1/checks") for c in ("host.cpu", "host.memory", "host.disk")),
                 timeout=40, what="host checks (first runs spread over 15 s)")

        env = dict(os.environ, XUNJIAN_URL=f"http://{http}")
        status = subprocess.run([sys.executable, "-m", "xunjian", "status"], capture_output=True, text=True,
                                env=env, cwd=ROOT, timeout=30)
        assert status.returncode == 0, status.stderr
        assert socket.gethostname() in status.stdout and " up " in status.stdout

        metrics = fetch(f"http://{http}/metrics")
        assert 'check="host.memory"' in metrics
        promtool = shutil.which("promtool")
        require(promtool is not None, "promtool (Debian package prometheus)")
        assert promtool is not None
        lint = subprocess.run([promtool, "check", "metrics"], input=metrics, capture_output=True, text=True,
                              timeout=30)
        assert lint.returncode == 0, lint.stdout + lint.stderr

        assert "<title>Xunjian" in fetch(f"http://{http}/")
        assert (tmp_path / "data" / "collector.yaml").exists() and (tmp_path / "data" / "agent.yaml").exists()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]
