"""The agent process: scheduler → spool → transport, one lifecycle, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from types import FrameType

from agent.config import AgentConfig, load_agent_config
from agent.scheduler import Scheduler
from agent.spool import Spool, SpoolClosed
from agent.transport import StreamClient
from agent.wire import build_hello
from checks.config_error import ConfigError
from checks.result import Result
from protos import patrol_pb2

log = logging.getLogger("xunjian.agent")


class AgentDaemon:
    """Runs the checks of one agent.yaml and streams their results; start() returns at once, stop() is clean."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.spool = Spool(config.spool_path, config.spool_max_bytes)
        self.specs = config.checks.enabled()
        self.transport = StreamClient(config.collector, self.spool, self._hello)
        self._resources: dict[str, object] = {"spool": self.spool}
        ctx = config.run_context(resources=self._resources)
        self.scheduler = Scheduler(self.specs, ctx, self._on_results, concurrency=config.concurrency)

    def _hello(self, last_seq: int) -> patrol_pb2.Hello:
        c = self.config
        return build_hello(agent_id=c.agent.id, labels=c.agent.labels, roles=c.agent.roles, specs=self.specs,
                           targets=c.targets, last_seq=last_seq)

    def _on_results(self, results: list[Result]) -> None:
        """Results are on disk (fsync'd, numbered) before the transport is told about them."""
        try:
            last_seq = self.spool.append(results)
        except SpoolClosed:
            log.info("agent stopping: %d results of a run that ended during shutdown not stored", len(results))
            return
        self.transport.notify(results, last_seq)

    def start(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        st = self.spool.stats()
        log.info("agent %s: %d checks, spool %s (%d results waiting, last seq %d), collectors %s",
                 self.config.agent.id, len(self.specs), self.spool.path, st.depth, st.last_seq,
                 ", ".join(self.config.collector.addresses))
        self.transport.start()
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.stop()
        self.transport.stop()
        self.spool.close()
        self._close_sessions()
        log.info("agent %s stopped", self.config.agent.id)

    def _close_sessions(self) -> None:
        """Database sessions the sql kinds keep in ctx.resources are closed politely, not dropped at exit."""
        if any(isinstance(k, str) and k.startswith("sql") for k in self._resources):
            from checks.sql.session import close_sessions

            close_sessions(self._resources)

    @property
    def error(self) -> BaseException | None:
        return self.scheduler.error or self.transport.error


def relax_grpc_wait_polling(seconds: float = 5.0) -> bool:
    """grpc's sync API wakes every blocked waiter each 0.1 s so that a main thread can notice Ctrl-C. The agent's
    waiters are background threads and its main thread handles signals itself, so that polling is pure cost
    (about 37 ms CPU a minute on an idle stream, more than the budget for 100 checks). Process-wide, hence only
    in the agent process; returns False when this grpc version no longer has the knob."""
    import importlib

    common = importlib.import_module("grpc._common")
    if not isinstance(getattr(common, "MAXIMUM_WAIT_TIMEOUT", None), float):
        return False
    setattr(common, "MAXIMUM_WAIT_TIMEOUT", seconds)  # noqa: B010 (private knob, checked above)
    return True


def run_agent(config_path: Path) -> int:
    """`xunjian agent run`: 0 after a clean stop, 2 for invalid agent.yaml, 1 when the agent cannot run."""
    logging.basicConfig(stream=sys.stderr, level=os.environ.get("XUNJIAN_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_agent_config(config_path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        daemon = AgentDaemon(config)
    except (OSError, sqlite3.Error) as exc:
        print(f"{config_path}: spool.path: cannot open spool {config.spool_path}: {exc}", file=sys.stderr)
        return 1
    relax_grpc_wait_polling()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("got %s, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.start()
    while not stopping.wait(5.0):
        if daemon.error is not None:
            log.error("agent failed: %s", daemon.error)
            daemon.stop()
            return 1
    daemon.stop()
    return 0
