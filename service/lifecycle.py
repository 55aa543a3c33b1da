"""One lifecycle for every long-running part of both daemons.

A component starts, stops within the time it is given, says whether it is healthy, and hands an error it cannot
recover from to its host. The Supervisor is that host: it starts components in order, stops them in reverse order
within one deadline, and turns the first fatal error into one log line naming the component and exit code 1. The
daemon's main thread sleeps in `wait()` until a signal, a reload request or a failure wakes it (a socket pair: no
polling, so an idle daemon costs no wake-ups).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Protocol, TypeVar

EXIT_OK = 0
EXIT_FAILED = 1
"""A part of the daemon failed, or it could not start (an unwritable data directory, a port in use)."""
EXIT_INVALID = 2
"""The configuration is invalid; the message names file, line and field."""
STOP_DEADLINE_S = 10.0
"""How long SIGTERM may take to stop everything; systemd's TimeoutStopSec should be longer."""


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


class Host(Protocol):
    def fail(self, component: str, error: BaseException | str) -> None:
        """`component` cannot go on: the daemon stops and exits 1."""


class Component(Protocol):
    name: str

    def start(self, host: Host) -> None:
        """Start and return; raise if the component cannot run at all."""

    def stop(self, timeout: float) -> bool:
        """Stop within `timeout` seconds; False when it did not manage to."""

    def health(self) -> Health: ...


def describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class LoggingHost:
    """The host of a component run on its own (tests, one-off tools): a failure is logged and remembered."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger("xunjian")
        self.failures: list[tuple[str, str]] = []

    def fail(self, component: str, error: BaseException | str) -> None:
        self.failures.append((component, describe(error)))
        self.log.error("%s failed: %s", component, describe(error))


def spawn(name: str, target: Callable[[], None], host: Host, component: str) -> threading.Thread:
    """A daemon thread running `target`; if it raises, `component` is reported failed instead of vanishing."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            host.fail(component, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


class StartError(Exception):
    """A component could not start; the message is the one line an operator needs."""

    def __init__(self, component: str, error: BaseException | str) -> None:
        self.component = component
        super().__init__(f"{component}: {describe(error)}")


class Wake(enum.Enum):
    STOP = "stop"
    RELOAD = "reload"
    FAILED = "failed"


C = TypeVar("C", bound=Component)


class Supervisor:
    """Starts, watches and stops a daemon's components; the Host they report failures to."""

    def __init__(self, daemon: str, log: logging.Logger) -> None:
        self.daemon = daemon
        self.log = log
        self.components: list[Component] = []
        self._started: list[Component] = []
        self._lock = threading.RLock()
        """Reentrant: a signal handler runs in the main thread, possibly while that thread holds it in wait()."""
        self._failure: tuple[str, str] | None = None
        self._stop_reason: str | None = None
        self._reload = False
        self._wakeup, self._waker = socket.socketpair()
        self._waker.setblocking(False)

    def add(self, component: C) -> C:
        self.components.append(component)
        return component

    # what wakes the main thread

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full (a wake is already pending) or closed (the daemon has stopped)
            self._waker.send(b"!")

    def fail(self, component: str, error: BaseException | str) -> None:
        with self._lock:
            if self._failure is not None:
                self.log.error("%s also failed: %s", component, describe(error))
                return
            self._failure = (component, describe(error))
        exc_info = error if isinstance(error, BaseException) and not isinstance(error, OSError) else None
        self.log.error("%s failed: %s; stopping the %s", component, describe(error), self.daemon, exc_info=exc_info,
                       extra={"event": "component.failed", "component": component})
        self._wake()

    def request_stop(self, reason: str) -> None:
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
        self._wake()

    def request_reload(self) -> None:
        with self._lock:
            self._reload = True
        self._wake()

    def wait(self) -> Wake:
        """Sleep until asked to stop, to reload, or a component failed (a failure or stop wins over a reload)."""
        while True:
            with self._lock:
                if self._failure is not None:
                    return Wake.FAILED
                if self._stop_reason is not None:
                    return Wake.STOP
                if self._reload:
                    self._reload = False
                    return Wake.RELOAD
            self._wakeup.recv(64)

    @property
    def failure(self) -> tuple[str, str] | None:
        """(component, error) of the first fatal failure."""
        return self._failure

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    # the parts

    def start(self) -> None:
        """Start every component in order; if one cannot start, stop those already running and raise StartError."""
        for component in self.components:
            try:
                component.start(self)
            except Exception as exc:
                self.stop(STOP_DEADLINE_S)
                raise StartError(component.name, exc) from exc
            self._started.append(component)

    def stop(self, deadline: float = STOP_DEADLINE_S) -> bool:
        """Stop what was started, last first, all within `deadline` seconds; False if a part overran."""
        end = time.monotonic() + deadline
        in_time = True
        while self._started:
            component = self._started.pop()
            try:
                stopped = component.stop(max(0.0, end - time.monotonic()))
            except Exception as exc:
                self.log.error("%s did not stop cleanly: %s", component.name, describe(exc))
                stopped = False
            if not stopped:
                in_time = False
                self.log.warning("%s did not stop within the %gs shutdown deadline", component.name, deadline)
        return in_time

    def health(self) -> dict[str, Health]:
        out = {}
        for component in self.components:
            try:
                out[component.name] = component.health()
            except Exception as exc:
                out[component.name] = Health(False, f"health unknown: {describe(exc)}")
        return out

    def close(self) -> None:
        """Release the wake-up sockets (a late wake is then a no-op, never a write to a reused descriptor)."""
        self._waker.close()
        self._wakeup.close()


def install_signals(supervisor: Supervisor) -> None:
    """SIGTERM and SIGINT stop the daemon, SIGHUP reloads its configuration (main thread only)."""

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        supervisor.request_stop(signal.Signals(signum).name)

    def on_reload(_signum: int, _frame: FrameType | None) -> None:
        supervisor.request_reload()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_reload)


def run_until_stopped(supervisor: Supervisor, reload: Callable[[], None],
                      stop: Callable[[float], bool] | None = None, deadline: float = STOP_DEADLINE_S) -> int:
    """A started daemon's main thread: reload on request, stop on a signal or a failure; returns the exit code.

    `stop` (the supervisor's own by default) stops the parts and closes what they shared, within `deadline`."""
    while True:
        wake = supervisor.wait()
        if wake is Wake.RELOAD:
            try:
                reload()
            except Exception as exc:
                supervisor.fail("reload", exc)
            continue
        break
    log = supervisor.log
    if wake is Wake.STOP:
        log.info("%s stopping (%s)", supervisor.daemon, supervisor.stop_reason,
                 extra={"event": "shutdown", "reason": supervisor.stop_reason})
    in_time = (stop or supervisor.stop)(deadline)
    failure = supervisor.failure
    if failure is not None:
        log.error("%s stopped because %s failed: %s (exit 1)", supervisor.daemon, *failure,
                  extra={"event": "stopped", "exit_code": EXIT_FAILED})
        return EXIT_FAILED
    log.info("%s stopped%s", supervisor.daemon, "" if in_time else " (some parts overran the deadline)",
             extra={"event": "stopped", "exit_code": EXIT_OK})
    return EXIT_OK
