"""Talking to a running daemon: its pid file, and a reload request whose outcome the daemon writes back.

`xunjian agent reload` / `xunjian collector reload` read the pid file, send SIGHUP (what systemd's
`ExecReload=kill -HUP $MAINPID` does too) and wait for the daemon to write the outcome of that reload into a
small JSON status file next to the pid file; no socket, no extra thread in the daemon.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

RELOAD_WAIT_S = 30.0


class AlreadyRunning(OSError):
    """Another live daemon holds the pid file: two daemons on one spool or store would corrupt it."""


class ControlError(Exception):
    """The daemon could not be reached (no pid file, not running, did not answer)."""


def _alive(pid: int) -> bool:
    """Whether `pid` runs (psutil: on Windows os.kill(pid, 0) would terminate the process instead)."""
    import psutil

    return bool(psutil.pid_exists(pid))


def read_pid(path: Path) -> int | None:
    """The pid in `path` if that process is still running, else None."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _alive(pid) else None


class PidFile:
    """`path` holds this process's pid while it runs; a second daemon on the same files is refused."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what

    def create(self) -> None:
        other = read_pid(self.path)
        if other is not None and other != os.getpid():
            raise AlreadyRunning(f"another {self.what} (pid {other}) is running with {self.path}; stop it first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(f"{os.getpid()}\n")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        if read_pid(self.path) == os.getpid():
            with contextlib.suppress(OSError):
                self.path.unlink()


@dataclass(frozen=True)
class ReloadStatus:
    generation: int
    ok: bool
    message: str
    at: float

    @staticmethod
    def read(path: Path) -> ReloadStatus | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return ReloadStatus(int(data["generation"]), bool(data["ok"]), str(data["message"]), float(data["at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"generation": self.generation, "ok": self.ok, "message": self.message,
                                   "at": self.at}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


class ReloadReporter:
    """The daemon's side: numbers each reload and writes its outcome for whoever asked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        previous = ReloadStatus.read(path)
        self.generation = previous.generation if previous else 0

    def report(self, ok: bool, message: str) -> None:
        self.generation += 1
        with contextlib.suppress(OSError):
            ReloadStatus(self.generation, ok, message, time.time()).write(self.path)


def request_reload(pid_path: Path, status_path: Path, what: str, timeout: float = RELOAD_WAIT_S) -> ReloadStatus:
    """Send SIGHUP to the daemon of `pid_path` and wait for it to report the reload's outcome."""
    pid = read_pid(pid_path)
    if pid is None:
        raise ControlError(f"no running {what}: {pid_path} is missing or names a process that has exited")
    if not hasattr(signal, "SIGHUP"):
        raise ControlError(f"reload needs SIGHUP, which this OS does not have; restart the {what} instead")
    before = ReloadStatus.read(status_path)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = ReloadStatus.read(status_path)
        if now is not None and (before is None or now.generation > before.generation):
            return now
        time.sleep(0.1)
    raise ControlError(f"the {what} (pid {pid}) got SIGHUP but reported no reload within {timeout:g}s; see its log")
