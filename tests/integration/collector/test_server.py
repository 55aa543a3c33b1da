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
from service.lifecycle import STOP_DEADLINE_S

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
    path.write_text(f"listen: {{grpc: '127.0.0.1:{grpc_port}', http: '127.0.0.1:{http_port}'}}\n"
                    "tls: {mode: insecure}\nhttp: {auth: none}\n", encoding="utf-8")
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
        assert proc.wait(STOP_DEADLINE_S + 5) == 0, "SIGTERM stops every part within the shutdown deadline"
        assert (tmp_path / "collector.db").exists()
        assert proc.stdout is not None
        lines = [line.split(" ", 1)[1] for line in proc.stdout.read().decode().splitlines()]
        assert lines[-2:] == ["INFO xunjian.collector: collector stopping (SIGTERM)",
                              "INFO xunjian.collector: collector stopped"]
        assert not (tmp_path / "collector.pid").exists(), "the pid file goes with the process"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def run_collector(tmp_path: Path, store: str, *, prelude: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "collector.yaml"
    path.write_text(f"listen: {{grpc: '127.0.0.1:{free_port()}', http: '127.0.0.1:{free_port()}'}}\n"
                    "tls: {mode: insecure}\nhttp: {auth: none}\n"
                    f"store: {{url: '{store}'}}\n", encoding="utf-8")
    code = f"{prelude}\nimport sys\nfrom pathlib import Path\nfrom collector.server import serve\nsys.exit(serve(Path(sys.argv[1])))"
    return subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_a_store_directory_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    run = run_collector(tmp_path, f"sqlite:///{blocker}/data/collector.db")
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line.split(" ", 1)[1] == (
        f"ERROR xunjian.collector: collector cannot start: store: cannot open {blocker}/data/collector.db: "
        f"[Errno 20] Not a directory: '{blocker}/data' (store.url; its directory must exist or be creatable and be "
        "writable by the collector's user)")


def test_a_failing_part_stops_the_collector_with_exit_1_and_one_line_naming_it(tmp_path: Path) -> None:
    """Fault injection: the store writer's thread hits a bug on its first commit."""
    prelude = ("import collector.writer as w\n"
               "def broken(self, group):\n    raise RuntimeError('injected bug')\n"
               "w.Writer._commit = broken")
    run = run_collector(tmp_path, f"sqlite:///{tmp_path / 'c.db'}", prelude=prelude)
    assert run.returncode == 1, run.stderr
    lines = [line.split(" ", 1)[1] for line in run.stderr.splitlines() if line[:4].isdigit()]
    assert "ERROR xunjian.collector: store failed: RuntimeError: injected bug; stopping the collector" in lines
    assert lines[-1] == ("ERROR xunjian.collector: collector stopped because store failed: RuntimeError: injected "
                         "bug (exit 1)")
