"""Daemon logs on stderr: one stable line per event, text or JSON, journald-friendly, scrubbed and rate-limited.

Text lines read `2026-01-02T03:04:05.123+08:00 INFO xunjian.collector: message`. Under systemd (stderr is the
journal, which $JOURNAL_STREAM says) the time is left to journald and each line starts with its syslog priority
(`<3>` for errors), so `journalctl -p warning` filters by level. `--log-format json` writes one object per line
with time, level, logger, message and the event's fields (`event`, `agent`, `component`...). Secrets registered
by targets, passwords in connection strings and URIs are masked in every line; an error that repeats is written
a few times a minute, then counted and summed up.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from checks.sql.secrets import scrub

LOG_FORMATS = ("text", "json")
DEFAULT_LEVEL = "INFO"
LEVEL_ENV = "XUNJIAN_LOG_LEVEL"
_SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
SUPPRESSED = "_xunjian_suppressed"
"""Record attribute RepeatLimit sets on the first record it lets through after holding some back."""


def _message(record: logging.LogRecord) -> str:
    """The record's message plus, after a burst was held back, how many were."""
    message = record.getMessage()
    held = getattr(record, SUPPRESSED, None)
    return f"{message} ({held})" if held else message


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="milliseconds")


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a call passed with `extra=` (event, agent, component...)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def __init__(self, journald: bool = False) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(_message(record))
        if record.exc_info:
            message += "\n" + scrub(self.formatException(record.exc_info))
        if self.journald:
            priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
            return "\n".join(f"<{priority}>{record.name}: {line}" for line in message.splitlines() or [""])
        return f"{_timestamp(record.created)} {record.levelname} {record.name}: {message}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(_message(record)),
        }
        for key, value in event_fields(record).items():
            out[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            out["traceback"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RepeatLimit(logging.Filter):
    """At most `burst` warnings or errors with the same logger and message template per `window` seconds; the
    first one let through after that says how many were held back."""

    def __init__(self, burst: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float]] = {}
        """key → [window start, count in window, suppressed count]"""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            state = self._seen.get(key)
            if state is None or now - state[0] >= self.window:
                suppressed = int(state[2]) if state is not None else 0
                self._seen[key] = [now, 1.0, 0.0]
                if len(self._seen) > 1000:
                    self._forget_old(now)
            else:
                state[1] += 1
                if state[1] > self.burst:
                    state[2] += 1
                    return False
                return True
        if suppressed:
            # On the record, not in its message: other handlers (pytest's, a second sink) share the record.
            setattr(record, SUPPRESSED, f"{suppressed} more like this in the last {self.window:g}s were not logged")
        return True

    def _forget_old(self, now: float) -> None:
        for k in [k for k, s in self._seen.items() if now - s[0] >= self.window and not s[2]]:
            del self._seen[k]


def under_journald(stream: TextIO) -> bool:
    """stderr is connected to the systemd journal (systemd sets $JOURNAL_STREAM to its device:inode)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def setup_logging(fmt: str = "text", level: str | None = None, stream: TextIO | None = None) -> None:
    """Send every `xunjian.*` (and library) log line to stderr in `fmt`; level from `level`, $XUNJIAN_LOG_LEVEL or INFO."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(journald=under_journald(out)))
    handler.addFilter(RepeatLimit())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    name = (level or os.environ.get(LEVEL_ENV) or DEFAULT_LEVEL).upper()
    root.setLevel(logging.getLevelName(name) if isinstance(logging.getLevelName(name), int) else logging.INFO)
    logging.captureWarnings(True)
