"""Pid files refuse a second daemon on the same files; a reload request is answered through the status file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

import pytest

from service.control import ControlError, PidFile, ReloadReporter, ReloadStatus, read_pid, request_reload


def test_pid_file_refuses_a_second_daemon(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path = tmp_path / "agent.pid"
        path.write_text(f"{other.pid}\n")
        with pytest.raises(OSError, match=f"another agent \\(pid {other.pid}\\) is running"):
            PidFile(path, "agent").create()
    finally:
        other.kill()
        other.wait()
    PidFile(path, "agent").create()
    assert read_pid(path) == os.getpid()
    PidFile(path, "agent").remove()
    assert not path.exists()


def test_a_stale_pid_file_is_taken_over(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = tmp_path / "c.pid"
    path.write_text(f"{gone.pid}\n")
    assert read_pid(path) is None
    PidFile(path, "collector").create()
    assert read_pid(path) == os.getpid()


def test_reload_request_waits_for_the_daemons_answer(tmp_path: Path) -> None:
    pid, status = tmp_path / "agent.pid", tmp_path / "reload.json"
    PidFile(pid, "agent").create()
    reporter = ReloadReporter(status)
    reporter.report(True, "an earlier reload")
    got = threading.Event()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        got.set()

    previous = signal.signal(signal.SIGHUP, on_hup)
    try:
        threading.Thread(target=lambda: got.wait(10) and reporter.report(False, "pack.yaml:3: bad")).start()
        answer = request_reload(pid, status, "agent", timeout=10)
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert (answer.ok, answer.message, answer.generation) == (False, "pack.yaml:3: bad", 2)
    assert ReloadStatus.read(status) == answer


def test_reload_without_a_running_daemon(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no running collector"):
        request_reload(tmp_path / "c.pid", tmp_path / "c.reload.json", "collector")
