"""The collector as a process: a bad config exits 2 with file:line, SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from collector.server import serve

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bad_config_returns_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("agents:\n  lost_after: soon\n", encoding="utf-8")
    assert serve(path) == 2
    assert capsys.readouterr().err.strip() == (
        f"{path}:2: agents.lost_after: expected a duration such as 30s, 5m or 1h, got 'soon'")


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    grpc_port, http_port = free_port(), free_port()
    path = tmp_path / "collector.yaml"
    path.write_text(f"listen: {{grpc: '127.0.0.1:{grpc_port}', http: '127.0.0.1:{http_port}'}}\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "collector.server", str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0].decode()
                assert time.monotonic() < deadline, "collector did not start"
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert (tmp_path / "collector.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
