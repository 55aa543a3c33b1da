"""The agent process: spool, then transport and scheduler as components of one Supervisor; reload on SIGHUP.

A reload re-reads agent.yaml and its packs, and applies nothing unless all of it is valid. The scheduler takes
the new checks (added, changed, removed), and the transport renews its stream so the collector gets the new
catalogue in a Hello and ends the series of removed checks. The spool is the same before and after, so seq
numbers continue and nothing waiting in it is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from agent.config import AgentConfig, CollectorSection, load_agent_config
from agent.credentials import Credentials
from agent.scheduler import ScheduleChange, Scheduler
from agent.spool import Spool, SpoolClosed
from agent.transport import StreamClient
from agent.wire import build_hello
from checks.config_error import ConfigError
from checks.result import Result
from protos import patrol_pb2
from service.control import AlreadyRunning, PidFile, ReloadReporter
from service.lifecycle import (
    EXIT_FAILED,
    EXIT_INVALID,
    STOP_DEADLINE_S,
    StartError,
    Supervisor,
    install_signals,
    run_until_stopped,
)
from service.logs import setup_logging
from service.version import version

log = logging.getLogger("xunjian.agent")
_LISTED = 8


def control_files(spool_path: Path) -> tuple[Path, Path]:
    """The pid file and the reload status file of the agent whose spool is `spool_path` (spool.db: spool.pid and
    spool.reload.json): one agent per spool, whatever else shares the directory."""
    return spool_path.with_suffix(".pid"), spool_path.with_suffix(".reload.json")


def _restart_only(old: AgentConfig, new: AgentConfig) -> list[str]:
    """agent.yaml fields that changed but a reload cannot apply: the agent keeps the old value and says so."""
    pairs = {
        "agent.id": (old.agent.id, new.agent.id),
        "spool.path": (old.spool_path, new.spool_path),
        "spool.max_bytes": (old.spool_max_bytes, new.spool_max_bytes),
        "state_dir": (old.state_dir, new.state_dir),
        "concurrency": (old.concurrency, new.concurrency),
        "collector.tls": (old.collector.tls, new.collector.tls),
    }
    return [name for name, (a, b) in pairs.items() if a != b]


def _ids(keys: Sequence[tuple[str, str]]) -> str:
    names = [f"{cid}@{target}" if target else cid for cid, target in keys]
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more


def describe_change(change: ScheduleChange) -> str:
    parts = []
    for sign, what, keys in (("+", "added", change.added), ("~", "changed", change.changed),
                             ("-", "removed", change.removed)):
        if keys:
            parts.append(f"{sign}{len(keys)} {what}: {_ids(keys)}")
    return "; ".join(parts) if parts else "no check changed"


class AgentDaemon:
    """Runs the checks of one agent.yaml and streams their results; start() returns at once, stop() is clean."""

    def __init__(self, config: AgentConfig, supervisor: Supervisor | None = None) -> None:
        self.config = config
        self.specs = config.checks.enabled()
        self.supervisor = supervisor or Supervisor(f"agent {config.agent.id}", log)
        pid_path, status_path = control_files(config.spool_path)
        self.pid_file = PidFile(pid_path, "agent")
        self.reloads = ReloadReporter(status_path)
        self._resources: dict[str, object] = {}
        self.spool: Spool | None = None
        self.scheduler: Scheduler | None = None
        self.transport: StreamClient | None = None
        self.credentials = Credentials(config.collector.tls, base_dir=config.source.resolve().parent,
                                       spool_dir=config.spool_path.parent, agent_id=config.agent.id,
                                       addresses=config.collector.addresses)

    def _hello(self, last_seq: int) -> patrol_pb2.Hello:
        c = self.config
        return build_hello(agent_id=c.agent.id, labels=c.agent.labels, roles=c.agent.roles, specs=self.specs,
                           targets=c.targets, last_seq=last_seq,
                           incarnation=self.spool.incarnation if self.spool is not None else "")

    def _on_results(self, results: list[Result]) -> None:
        """Results are on disk (fsync'd, numbered) before the transport is told about them."""
        assert self.spool is not None and self.transport is not None
        try:
            last_seq = self.spool.append(results)
        except SpoolClosed:
            log.info("agent stopping: %d results of a run that ended during shutdown not stored", len(results))
            return
        self.transport.notify(results, last_seq)

    def start(self) -> None:
        """Open the state directory and spool (one clear StartError if they cannot be written), start the parts."""
        c = self.config
        try:
            c.state_dir.mkdir(parents=True, exist_ok=True)
            self.pid_file.create()
            self.spool = Spool(c.spool_path, c.spool_max_bytes)
        except AlreadyRunning as exc:
            raise StartError("spool", str(exc)) from exc
        except (OSError, sqlite3.Error) as exc:
            where = c.state_dir if not c.state_dir.is_dir() else c.spool_path
            raise StartError("spool", f"cannot write {where}: {exc} (spool.path / state_dir in {c.source}; the "
                             "directory must exist or be creatable and be writable by the agent's user)") from exc
        self._resources["spool"] = self.spool
        self.supervisor.add(self.credentials)
        self.transport = self.supervisor.add(StreamClient(c.collector, self.spool, self._hello,
                                                          channel=self.credentials.channel))
        self.scheduler = self.supervisor.add(Scheduler(self.specs, c.run_context(resources=self._resources),
                                                       self._on_results, concurrency=c.concurrency))
        self.supervisor.start()
        st = self.spool.stats()
        log.info("agent %s started: xunjian %s, config %s, %d checks from %d packs, %d targets, spool %s "
                 "(%d results waiting, last seq %d), collectors %s", c.agent.id, version(), c.source,
                 len(self.specs), len(c.checks.packs), len(c.targets), self.spool.path, st.depth, st.last_seq,
                 ", ".join(c.collector.addresses),
                 extra={"event": "start", "agent": c.agent.id, "checks": len(self.specs)})

    def stop(self, deadline: float = STOP_DEADLINE_S) -> bool:
        """Stop the parts (scheduler first), then close the spool, database sessions and pid file."""
        in_time = self.supervisor.stop(deadline)
        if self.spool is not None:
            self.spool.close()
        self._close_sessions()
        self.pid_file.remove()
        self.supervisor.close()
        return in_time

    def _close_sessions(self, keep: frozenset[str] | None = None) -> None:
        """Database sessions the sql kinds keep in ctx.resources are closed politely, not dropped at exit."""
        if any(isinstance(k, str) and k.startswith("sql") for k in self._resources):
            from checks.sql.session import close_sessions

            close_sessions(self._resources, keep=keep)

    @property
    def error(self) -> str | None:
        """Why a part failed, if one did."""
        failure = self.supervisor.failure
        return None if failure is None else f"{failure[0]}: {failure[1]}"

    # reload

    def reload(self) -> tuple[bool, str]:
        """Re-read agent.yaml and its packs; apply the difference, or keep everything as it is if any of it is bad."""
        old = self.config
        try:
            new = load_agent_config(old.source)
        except ConfigError as exc:
            message = f"reload refused, still running the previous configuration:\n{exc}"
            log.error("%s", message, extra={"event": "reload", "ok": False})
            return False, str(exc)
        assert self.scheduler is not None and self.transport is not None
        kept = _restart_only(old, new)
        new = dataclasses.replace(new, agent=new.agent.model_copy(update={"id": old.agent.id}),
                                  collector=new.collector.model_copy(update={"tls": old.collector.tls}),
                                  spool_path=old.spool_path, spool_max_bytes=old.spool_max_bytes,
                                  state_dir=old.state_dir, concurrency=old.concurrency)
        specs = new.checks.enabled()
        change = self.scheduler.replace(specs, new.run_context(resources=self._resources))
        self.config, self.specs = new, specs
        self._close_sessions(keep=frozenset(new.targets))
        hello_changed = bool(change) or (old.agent.labels, old.agent.roles, old.targets) != (
            new.agent.labels, new.agent.roles, new.targets)
        settings: CollectorSection | None = new.collector if new.collector != old.collector else None
        if hello_changed or settings is not None:
            self.transport.announce(settings)
        message = (f"reload applied: {len(specs)} checks from {len(new.checks.packs)} packs "
                   f"({describe_change(change)})")
        if kept:
            message += f"; not applied until the agent restarts: {', '.join(kept)}"
        log.info("%s", message, extra={"event": "reload", "ok": True, "added": len(change.added),
                                       "changed": len(change.changed), "removed": len(change.removed)})
        return True, message

    def reload_and_report(self) -> None:
        ok, message = self.reload()
        self.reloads.report(ok, message)


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


def run_agent(config_path: Path, *, log_format: str = "text", log_level: str | None = None) -> int:
    """`xunjian agent run`: 0 after a clean stop, 2 for invalid agent.yaml, 1 when the agent cannot run or a part
    failed. SIGTERM/SIGINT stop it, SIGHUP reloads agent.yaml and its packs."""
    setup_logging(log_format, log_level)
    try:
        config = load_agent_config(config_path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    relax_grpc_wait_polling()
    daemon = AgentDaemon(config)
    install_signals(daemon.supervisor)
    try:
        daemon.start()
    except StartError as exc:
        log.error("agent cannot start: %s", exc, extra={"event": "start.failed"})
        daemon.stop()
        return EXIT_FAILED
    return run_until_stopped(daemon.supervisor, daemon.reload_and_report, daemon.stop)
