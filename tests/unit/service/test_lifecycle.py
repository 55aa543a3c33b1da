"""The Supervisor: parts start in order and stop in reverse within one deadline; the first failure stops the
daemon with one log line naming the part and exit code 1; reload and stop requests wake the main thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from service.lifecycle import (
    EXIT_FAILED,
    EXIT_OK,
    Health,
    Host,
    StartError,
    Supervisor,
    Wake,
    run_until_stopped,
    spawn,
)

log = logging.getLogger("xunjian.test")


@pytest.fixture(autouse=True)
def _close_supervisors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Supervisor a test makes releases its wake-up sockets."""
    made: list[Supervisor] = []
    original = Supervisor.__init__

    def tracking(self: Supervisor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Supervisor, "__init__", tracking)
    yield
    for sup in made:
        sup.close()


class Part:
    def __init__(self, name: str, events: list[str], *, fail_start: bool = False, hang: bool = False) -> None:
        self.name = name
        self.events = events
        self.fail_start = fail_start
        self.hang = hang
        self.host: Host | None = None

    def start(self, host: Host) -> None:
        if self.fail_start:
            raise OSError("address already in use")
        self.host = host
        self.events.append(f"start {self.name}")

    def stop(self, timeout: float) -> bool:
        self.events.append(f"stop {self.name}")
        return not self.hang

    def health(self) -> Health:
        return Health(True, "fine")


def test_parts_start_in_order_and_stop_in_reverse() -> None:
    events: list[str] = []
    sup = Supervisor("test daemon", log)
    for name in ("loop", "store", "grpc"):
        sup.add(Part(name, events))
    sup.start()
    assert sup.stop(1.0) is True
    assert events == ["start loop", "start store", "start grpc", "stop grpc", "stop store", "stop loop"]
    assert sup.health() == {"loop": Health(True, "fine"), "store": Health(True, "fine"), "grpc": Health(True, "fine")}


def test_a_part_that_cannot_start_stops_the_ones_already_running() -> None:
    events: list[str] = []
    sup = Supervisor("test daemon", log)
    sup.add(Part("loop", events))
    sup.add(Part("http", events, fail_start=True))
    sup.add(Part("timers", events))
    with pytest.raises(StartError, match=r"^http: OSError: address already in use$"):
        sup.start()
    assert events == ["start loop", "stop loop"]


def test_a_failure_wakes_the_main_thread_logs_one_line_and_exits_1(caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []
    sup = Supervisor("test daemon", log)
    part = sup.add(Part("writer", events))
    sup.start()
    assert part.host is not None
    threading.Timer(0.01, part.host.fail, args=("writer", OSError("disk I/O error"))).start()
    with caplog.at_level(logging.INFO, logger="xunjian.test"):
        code = run_until_stopped(sup, reload=lambda: None)
    assert code == EXIT_FAILED
    lines = [r.getMessage() for r in caplog.records]
    assert "writer failed: OSError: disk I/O error; stopping the test daemon" in lines
    assert "test daemon stopped because writer failed: OSError: disk I/O error (exit 1)" in lines
    assert events[-1] == "stop writer"


def test_a_crashing_thread_is_reported_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test daemon", log)

    def bug() -> None:
        raise ZeroDivisionError("division by zero")

    spawn("worker", bug, sup, "scheduler").join(5)
    assert sup.wait() is Wake.FAILED
    assert sup.failure == ("scheduler", "ZeroDivisionError: division by zero")


def test_reload_then_stop_requests(caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test daemon", log)
    sup.add(Part("scheduler", []))
    sup.start()
    reloads: list[int] = []

    def reload() -> None:
        reloads.append(1)
        sup.request_stop("SIGTERM")

    sup.request_reload()
    with caplog.at_level(logging.INFO, logger="xunjian.test"):
        assert run_until_stopped(sup, reload) == EXIT_OK
    assert reloads == [1]
    assert [r.getMessage() for r in caplog.records][-2:] == ["test daemon stopping (SIGTERM)", "test daemon stopped"]


def test_a_part_that_overruns_the_deadline_is_named(caplog: pytest.LogCaptureFixture) -> None:
    sup = Supervisor("test daemon", log)
    sup.add(Part("grpc", [], hang=True))
    sup.start()
    with caplog.at_level(logging.WARNING, logger="xunjian.test"):
        assert sup.stop(2.0) is False
    assert "grpc did not stop within the 2s shutdown deadline" in [r.getMessage() for r in caplog.records]


def test_a_wake_after_close_is_harmless() -> None:
    sup = Supervisor("test daemon", log)
    sup.close()
    sup.request_stop("SIGTERM")
    sup.fail("writer", "late")
