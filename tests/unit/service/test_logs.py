"""Log lines: a stable text format, JSON with the event's fields, journald priorities, no secrets, and an error
that repeats is written a few times and then summed up."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from checks.sql.secrets import register_secret
from service.logs import JsonFormatter, RepeatLimit, TextFormatter, setup_logging, under_journald


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("xunjian.collector", level, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(r, k, v)
    return r


def test_text_line_format() -> None:
    line = TextFormatter().format(record("agent %s connected", "his-app-01"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d INFO xunjian.collector: "
                        r"agent his-app-01 connected", line), line


def test_json_line_carries_the_event_fields() -> None:
    out = json.loads(JsonFormatter().format(record("incident opened: %s", "disk", level=logging.WARNING,
                                                   event="incident.opened", agent="his-app-01")))
    assert out["level"] == "WARNING"
    assert out["logger"] == "xunjian.collector"
    assert out["message"] == "incident opened: disk"
    assert (out["event"], out["agent"]) == ("incident.opened", "his-app-01")
    assert set(out) == {"time", "level", "logger", "message", "event", "agent"}


def test_journald_lines_start_with_the_syslog_priority() -> None:
    f = TextFormatter(journald=True)
    assert f.format(record("store write failed", level=logging.ERROR)) == "<3>xunjian.collector: store write failed"
    assert f.format(record("started")) == "<6>xunjian.collector: started"


def test_journald_is_detected_from_journal_stream(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    with open(os.path.join(tmp_path, "stderr"), "w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert under_journald(stream)
        monkeypatch.setenv("JOURNAL_STREAM", "1:2")
        assert not under_journald(stream)


def test_secrets_never_reach_a_line() -> None:
    register_secret("S3cr3t-pw!")
    for formatter in (TextFormatter(), JsonFormatter()):
        line = formatter.format(record("connect failed: password=%s dsn=postgresql://mon:hunter2@db/his",
                                       "S3cr3t-pw!"))
        assert "S3cr3t-pw!" not in line and "hunter2" not in line, line


def test_a_repeating_error_is_limited_then_summed_up() -> None:
    now = [0.0]
    limit = RepeatLimit(burst=2, window=60.0, clock=lambda: now[0])
    passed = [limit.filter(record("store write failed: %s", n, level=logging.ERROR)) for n in range(10)]
    assert passed == [True, True] + [False] * 8
    assert limit.filter(record("another error", level=logging.ERROR)), "a different message has its own budget"
    assert limit.filter(record("agent up", level=logging.INFO)), "info lines are never limited"
    now[0] = 61.0
    r = record("store write failed: %s", 11, level=logging.ERROR)
    assert limit.filter(r)
    assert r.getMessage() == "store write failed: 11", "the shared record's message is left alone"
    assert TextFormatter().format(r).endswith(
        "store write failed: 11 (8 more like this in the last 60s were not logged)")
    assert json.loads(JsonFormatter().format(r))["message"] == (
        "store write failed: 11 (8 more like this in the last 60s were not logged)")


def test_setup_logging_writes_json_to_the_stream(restore_root_logging: None) -> None:
    stream = io.StringIO()
    setup_logging("json", "info", stream=stream)
    logging.getLogger("xunjian.agent").info("agent started", extra={"event": "start"})
    logging.getLogger("xunjian.agent").debug("not shown")
    [line] = stream.getvalue().splitlines()
    assert json.loads(line)["event"] == "start"
    with pytest.raises(ValueError, match="log format must be one of text, json"):
        setup_logging("xml")
