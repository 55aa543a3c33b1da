"""The collector's asyncio event loop in a thread of its own: gRPC ingest and the timers run on it.

The main thread is left to the Supervisor (signals, reload, shutdown), the same shape as the agent's. Other
threads hand coroutines to the loop with `call` (wait for the result) or `submit` (a future).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from service.lifecycle import Health, Host, spawn

T = TypeVar("T")
log = logging.getLogger("xunjian.collector.loop")


class EventLoop:
    name = "event-loop"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the event loop has not been started")
        return self._loop

    def start(self, host: Host) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._unhandled)
        self._thread = spawn("xunjian-loop", self._run, host, self.name)
        if not self._ready.wait(10):
            raise RuntimeError("the event loop did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def _unhandled(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        log.error("unhandled error on the event loop: %s", context.get("message"),
                  exc_info=error if isinstance(error, BaseException) else None)

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result (from any other thread)."""
        return self.submit(coro).result(timeout)

    async def _cancel_the_rest(self) -> None:
        """Tasks still going once every component on the loop has stopped (stray streams) are cancelled."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self, timeout: float) -> bool:
        if self._thread is None or self._loop is None:
            return True
        if self.loop.is_running():
            try:
                self.call(self._cancel_the_rest(), max(0.1, timeout / 2))
            except Exception as exc:
                log.warning("event loop: tasks did not end: %s", exc)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if stopped:
            self.loop.close()
        return stopped

    def health(self) -> Health:
        alive = self._thread is not None and self._thread.is_alive()
        return Health(alive, "" if alive else "not running")
