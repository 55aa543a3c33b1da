"""The collector process: store, then event loop, writer, gRPC ingest, timers and HTTP under one Supervisor.

`serve(config_path)` is what `xunjian collector serve` calls. Exit codes: 2 for a bad config, 1 when the
collector cannot start (one log line says why: an unwritable store directory, a port in use) or a part failed,
0 after SIGTERM or SIGINT. SIGHUP re-reads collector.yaml: timing rules apply at once, listen addresses and the
store need a restart (the log line says which).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from checks.config_error import ConfigError
from collector import deadlines, incidents
from collector.access import Actor
from collector.audit import AuditEntry
from collector.backends import open_store, store_location
from collector.config import CollectorConfig, is_loopback, load_config
from collector.desk import Desk
from collector.flapping import Thresholds
from collector.grpc_tls import (
    CertificateFiles,
    EnrollmentServicer,
    EnrollServer,
    ensure_server_certificate,
    open_authority,
    tls_files,
)
from collector.http import Api
from collector.identity import CertificateIdentity, Identify, insecure_identity
from collector.incidents import IncidentPolicy
from collector.ingest import IngestServer, IngestServicer, log_after_commit
from collector.loop import EventLoop
from collector.metrics import PatrolMetrics, build_registry
from collector.notify.config import receiver_secrets
from collector.notify.notifier import Notifier
from collector.notify.routing import first_route
from collector.pki import Authority, PkiError
from collector.silences import SilenceSet
from collector.state import AgentLiveness, Limits, StateEngine
from collector.store import Store, StoreTx
from collector.timers import Timers
from collector.trust import Trust
from collector.web import WebServer
from collector.workdays import WorkingCalendar
from collector.writer import Writer
from protos import patrol_pb2_grpc
from service.control import AlreadyRunning, PidFile, ReloadReporter
from service.lifecycle import (
    EXIT_FAILED,
    EXIT_INVALID,
    STOP_DEADLINE_S,
    Health,
    StartError,
    Supervisor,
    install_signals,
    run_until_stopped,
)
from service.logs import setup_logging
from service.version import version

T = TypeVar("T")
log = logging.getLogger("xunjian.collector")
HOUSEKEEPING_INTERVAL_S = 60.0
PURGE_CHUNK = 10_000
LOST_AGENTS = "lost-agent check"
LOST_CHECK_MAX_S = 4.0
HOUSEKEEPING = "housekeeping"
SERVER_CERTIFICATE = "server certificate"
SERVER_CERTIFICATE_CHECK_S = 3600.0
DEADLINES = "incident deadlines"
DEADLINES_INTERVAL_S = 5.0
"""How often breaches, escalations, repeats and the end of silences are looked for (seconds late at most)."""
CALENDAR = "calendar check"
CALENDAR_INTERVAL_S = 3600.0


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def control_files(config: CollectorConfig) -> tuple[Path, Path]:
    """The pid file and reload status file of the collector of `config`, next to its SQLite store."""
    db = store_location(config)
    return db.with_suffix(".pid"), db.with_suffix(".reload.json")


def _restart_only(old: CollectorConfig, new: CollectorConfig) -> list[str]:
    pairs = {
        "listen.grpc": (old.listen.grpc, new.listen.grpc),
        "listen.http": (old.listen.http, new.listen.http),
        "store.url": (old.store.url, new.store.url),
        "store.history": (old.store.history, new.store.history),
        "ingest.max_message_bytes": (old.ingest.max_message_bytes, new.ingest.max_message_bytes),
    }
    return [name for name, (a, b) in pairs.items() if a != b]


class Collector:
    """Every long-running part of the collector; start() returns once all of them run, stop() is clean."""

    def __init__(self, config: CollectorConfig, *, clock: Callable[[], float] = time.time,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = (), source: Path | None = None,
                 overrides: dict[str, str | None] | None = None) -> None:
        self.config = config
        self.source = source
        self.overrides = overrides or {}
        self.clock = clock
        self.interceptors = interceptors
        self.supervisor = Supervisor("collector", log)
        ingest = config.ingest
        self.engine = StateEngine(history_all=config.store.history == "all", limits=Limits(
            ingest.max_series_per_agent, ingest.max_seq_ahead, ingest.max_summary_chars))
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.servicer: IngestServicer | None = None
        self.loop: EventLoop | None = None
        self.timers: Timers | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.pid_file: PidFile | None = None
        self.reloads: ReloadReporter | None = None
        self.authority: Authority | None = None
        self.identity: CertificateIdentity | None = None
        self.trust: Trust | None = None
        self.api: Api | None = None
        self.enroll_port = 0
        self.silences: SilenceSet | None = None
        self.notifier: Notifier | None = None

    def start(self) -> None:
        """Open the store (one clear StartError if it cannot be written), then start every part in order."""
        cfg = self.config
        path = store_location(cfg)
        pid_path, status_path = control_files(cfg)
        policy = self.incident_policy(cfg)
        secrets = receiver_secrets(cfg.notifications, cfg.base_dir)
        self.engine.policy = policy
        self.silences = silences = policy.silences or SilenceSet(policy.calendar)
        try:
            self.pid_file = PidFile(pid_path, "collector")
            self.pid_file.create()
            self.store = store = open_store(cfg)
            self.engine.restore(store.load_snapshot(), self.clock())
            silences.replace(store.silences_in_force())
        except AlreadyRunning as exc:
            raise StartError("store", str(exc)) from exc
        except (OSError, sqlite3.Error) as exc:
            raise StartError("store", f"cannot open {path}: {exc} (store.url; its directory must exist or be "
                             "creatable and be writable by the collector's user)") from exc
        self.reloads = ReloadReporter(status_path)
        files = self._open_tls(store)
        self.loop = loop = self.supervisor.add(EventLoop())
        self.writer = writer = self.supervisor.add(Writer(store))
        ingest = cfg.ingest
        self.trust = trust = Trust(store, writer, self.clock, session_ttl=cfg.http.session_ttl,
                                   enroll_token_ttl=cfg.tls.enroll_token_ttl, agent_cert_ttl=cfg.tls.agent_cert_ttl,
                                   authority=self.authority, identity=self.identity, on_retire=self._end_agent)
        identify: Identify = self.identity if self.identity is not None else insecure_identity
        self.servicer = IngestServicer(self.engine, writer, store, max_batch_results=ingest.max_batch_results,
                                       collector_id=socket.gethostname(), clock=self.clock, identify=identify,
                                       hello_timeout=ingest.hello_timeout,
                                       max_streams_per_agent=ingest.max_streams_per_agent)
        services = []
        enroll_servicer = None
        if files is not None and self.identity is not None:
            ca = files.files.client_ca
            enroll_servicer = EnrollmentServicer(trust, self.identity, ca.read_bytes)
            services.append(lambda server: patrol_pb2_grpc.add_EnrollmentServicer_to_server(  # type: ignore[no-untyped-call]
                enroll_servicer, server))
        grpc_server = self.supervisor.add(IngestServer(
            loop, self.servicer, cfg.listen.grpc, max_message_bytes=ingest.max_message_bytes,
            interceptors=self.interceptors, services=services,
            credentials=(lambda: files.credentials(client_auth=True)) if files is not None else None))
        enroll = None
        if files is not None and enroll_servicer is not None and self.authority is not None:
            enroll = self.supervisor.add(EnrollServer(loop, enroll_servicer, cfg.listen.enroll, files))
        self.timers = timers = self.supervisor.add(Timers(loop, self.clock, store.is_unavailable))
        timers.every(LOST_AGENTS, self._lost_interval(), self.check_lost_agents)
        timers.every(HOUSEKEEPING, self._housekeeping_interval(), self.housekeeping)
        if self.authority is not None:
            timers.every(SERVER_CERTIFICATE, SERVER_CERTIFICATE_CHECK_S, self.renew_server_certificate)
        timers.every(DEADLINES, DEADLINES_INTERVAL_S, self.check_deadlines)
        timers.every(CALENDAR, CALENDAR_INTERVAL_S, self.check_calendar)
        self.notifier = notifier = self.supervisor.add(Notifier(
            store, writer, cfg.notifications, secrets, console_url=cfg.console_url(), tz=policy.calendar.tz,
            clock=self.clock))
        registry = build_registry(PatrolMetrics(self.engine, store, self.servicer.stats, writer.stats, self.clock,
                                                notifier=notifier))
        desk = Desk(self.engine, store, writer, silences, self.clock, self._on_loop)
        host, port = _split(cfg.listen.http)
        self.api = api = Api(self.engine, store, writer, registry, self.clock, self.health, trust,
                             auth_required=cfg.http.auth == "tokens", desk=desk)
        http = self.supervisor.add(WebServer(api, cfg.http, host, port,
                                             trust=trust if cfg.http.auth == "tokens" else None))
        self.supervisor.start()
        self.grpc_port, self.http_port = grpc_server.port, http.port
        self.enroll_port = enroll.port if enroll is not None else 0
        self._warn_unauthenticated()
        newest = store.list_audit(limit=1, newest_first=True)
        if newest:
            log.info("audit trail head: entry %d, hash %s", newest[0]["id"], newest[0]["hash"],
                     extra={"event": "audit.head", "entry": newest[0]["id"], "hash": newest[0]["hash"]})
        log.info("collector started: xunjian %s, config %s, grpc %s (port %d), http %s (port %d), store %s "
                 "(history %s, %d agents known), agents lost after %gs", version(), self.source or "(defaults)",
                 cfg.listen.grpc, self.grpc_port, cfg.listen.http, self.http_port, path, cfg.store.history,
                 len(self.engine.agents), cfg.agents.lost_after,
                 extra={"event": "start", "grpc_port": self.grpc_port, "http_port": self.http_port})
        log.info("incidents: %s; %d receivers, %d routes; %d silences in force", policy.calendar.describe(),
                 len(cfg.notifications.receivers), len(cfg.notifications.routes), len(silences.items),
                 extra={"event": "incidents.config"})

    def _open_tls(self, store: Store) -> CertificateFiles | None:
        """The CA (own PKI: none), a current server certificate, and the denylist; StartError when unsafe."""
        cfg = self.config
        if cfg.tls.mode != "mtls":
            return None
        try:
            self.authority = open_authority(cfg)
            if self.authority is not None:
                ensure_server_certificate(self.authority, cfg, self.clock())
            files = CertificateFiles(tls_files(cfg))
            files.check()
        except PkiError as exc:
            raise StartError("tls", str(exc)) from exc
        self.identity = CertificateIdentity(cfg.tls.agent_id_from, revoked=store.revoked_serials(self.clock()),
                                            retired=store.retired_agents())
        return files

    def _warn_unauthenticated(self) -> None:
        cfg = self.config
        if cfg.tls.mode == "insecure" and not is_loopback(cfg.listen.grpc):
            log.warning("gRPC ingest on %s is NOT authenticated (tls.mode: insecure): anyone who reaches it can pose "
                        "as any agent. Use tls.mode: mtls (docs/security.md)", cfg.listen.grpc,
                        extra={"event": "insecure", "listener": "grpc"})
        if cfg.http.auth == "none" and not is_loopback(cfg.listen.http):
            log.warning("HTTP on %s is NOT authenticated (http.auth: none): anyone who reaches it is admin. Use "
                        "http.auth: tokens (docs/security.md)", cfg.listen.http,
                        extra={"event": "insecure", "listener": "http"})

    def _end_agent(self, agent_id: str) -> None:
        """A retired agent's streams end and its memory goes (from any thread)."""
        servicer, loop = self.servicer, self.loop
        if servicer is None or loop is None:
            return

        async def end() -> None:
            servicer.end_agent(agent_id)

        loop.submit(end())

    async def renew_server_certificate(self) -> None:
        """The collector's CA renews the server certificate at 2/3 of its life; handshakes take it at once."""
        if self.authority is not None:
            await asyncio.to_thread(ensure_server_certificate, self.authority, self.config, self.clock())


    @staticmethod
    def incident_policy(cfg: CollectorConfig) -> IncidentPolicy:
        """The incident rules of `cfg` (raises ConfigError for a bad calendar file or time zone)."""
        calendar = WorkingCalendar.load(cfg.calendar_files(), cfg.calendar.timezone)
        inc = cfg.incidents
        return IncidentPolicy(
            calendar, response_s=inc.response.model_dump(), resolution_days=inc.resolution_days.model_dump(),
            reopen_within=inc.reopen_within, flapping=Thresholds(inc.flapping.high, inc.flapping.low,
                                                                 inc.flapping.enabled),
            silences=SilenceSet(calendar))

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Run a state-engine change on the event loop that owns the engine (from an HTTP thread)."""
        assert self.loop is not None
        self.loop.loop.call_soon_threadsafe(fn)
    def health(self) -> dict[str, Health]:
        return self.supervisor.health()

    def _housekeeping_interval(self) -> float:
        """Often enough that a finding is marked fixed within a quarter of fixed_after of going stale."""
        return min(max(self.config.findings.fixed_after / 4, 0.5), HOUSEKEEPING_INTERVAL_S)

    def _lost_interval(self) -> float:
        """Often enough that an agent is lost within lost_after + 5 s of its last frame (the check and its commit
        take milliseconds: it costs what went silent, not the fleet)."""
        return min(max(self.config.agents.lost_after / 6, 0.5), LOST_CHECK_MAX_S)

    def on_loop(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run `coro` on the collector's event loop and await it from any other loop (tests drive timers so)."""
        assert self.loop is not None
        return asyncio.wrap_future(self.loop.submit(coro))

    async def check_lost_agents(self) -> None:
        """Open 'agent lost' for agents silent longer than agents.lost_after at every collector of the store."""
        assert self.writer is not None and self.store is not None
        now, lost_after = self.clock(), self.config.agents.lost_after
        rows = await asyncio.to_thread(self.store.agent_liveness, now - lost_after)
        actions = self.engine.lost_agents(now, lost_after, [AgentLiveness(*row) for row in rows])
        if actions:
            fut = self.writer.submit(lambda tx: tx.write_incident_actions(actions))
            log_after_commit(fut, actions)
            await asyncio.wrap_future(fut)

    async def check_deadlines(self) -> int:
        """Breaches, escalations, repeats and silences that are over (collector/deadlines.py); returns the actions."""
        assert self.writer is not None and self.store is not None and self.silences is not None
        now = self.clock()
        routes = self.config.notifications.routes
        intervals = [r.repeat_interval for r in routes if r.repeat_interval > 0]
        active = await asyncio.to_thread(self.store.due_incidents, now, now - min(intervals) if intervals else None)
        actions = deadlines.due(active, now, lambda labels: first_route(labels, routes), self.silences)
        carried = {i.silence_id for i in active if i.silence_id is not None}
        finished = deadlines.finished_silences(self.silences.items, carried, now)

        def job(tx: StoreTx) -> None:
            tx.apply_deadline_actions(actions)
            for silence_id, why in finished:
                tx.remove_silence(silence_id, "", why, now)

        if actions or finished:
            await asyncio.wrap_future(self.writer.submit(job))
            for silence_id, _why in finished:
                self.silences.drop(silence_id)
            for a in actions:
                if a.kind in ("response_breached", "resolution_breached", "escalated"):
                    log.warning("incident %d: %s%s", a.incident_id, a.kind.replace("_", " "),
                                f" (level {a.level})" if a.level else "",
                                extra={"event": f"incident.{a.kind}", "incident": a.incident_id})
            if self.notifier is not None:
                self.notifier.wake()
        return len(actions)

    async def check_calendar(self) -> list[int]:
        """Open a warning incident for each year the working-day calendar needs and lacks; resolve loaded ones."""
        assert self.writer is not None
        policy = self.engine.policy
        now = self.clock()
        missing = policy.calendar.missing_years(now)
        year = policy.calendar.local(now).year
        actions: list[Any] = [incidents.calendar_incident(y, policy.calendar, now, policy) for y in missing]
        actions += [incidents.calendar_loaded(y, now) for y in (year, year + 1) if y not in missing]
        fut = self.writer.submit(lambda tx: tx.write_incident_actions(actions))
        await asyncio.wrap_future(fut)
        for y in missing:
            log.warning("the working-day calendar has no table for %d: add the year's holiday arrangement as a file "
                        "in calendar.files and reload", y, extra={"event": "calendar.missing", "year": y})
        return missing

    async def housekeeping(self) -> tuple[int, int]:
        """Mark findings not seen within findings.fixed_after as fixed; purge history past its retention."""
        assert self.writer is not None
        now = self.clock()
        fixed_before = now - self.config.findings.fixed_after
        purge_before = now - self.config.store.history_retention
        writer = self.writer
        fixed = await asyncio.wrap_future(writer.submit(lambda tx: tx.fix_stale_findings(fixed_before, now)))
        purged = 0
        while True:  # in chunks, so ingest commits interleave with a long purge
            chunk = await asyncio.wrap_future(writer.submit(lambda tx: tx.purge_history(purge_before, PURGE_CHUNK)))
            purged += chunk
            if chunk < PURGE_CHUNK:
                if fixed or purged:
                    log.info("housekeeping: %d findings marked fixed, %d history rows purged", fixed, purged,
                             extra={"event": "housekeeping", "fixed": fixed, "purged": purged})
                return fixed, purged

    def stop(self, deadline: float = STOP_DEADLINE_S) -> bool:
        """Stop every part (HTTP first, the store writer after ingest, the event loop last), then close the store."""
        in_time = self.supervisor.stop(deadline)
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.pid_file is not None:
            self.pid_file.remove()
        self.supervisor.close()
        return in_time

    # reload

    def reload(self) -> tuple[bool, str]:
        """Re-read collector.yaml; apply the timing rules, keep what needs a restart, or keep all if it is bad."""
        if self.source is None:
            message = "reload ignored: this collector was started without a collector.yaml"
            log.warning("%s", message, extra={"event": "reload", "ok": False})
            return False, message
        old = self.config
        try:
            new = with_overrides(load_config(self.source), **self.overrides)
            policy = self.incident_policy(new)
            secrets = receiver_secrets(new.notifications, new.base_dir)
        except (ConfigError, ValueError) as exc:
            log.error("reload refused, still running the previous configuration:\n%s", exc,
                      extra={"event": "reload", "ok": False})
            self._audit_reload(False, str(exc))
            return False, str(exc)
        kept = _restart_only(old, new)
        merged = new.model_copy(update={
            "listen": old.listen,
            "store": new.store.model_copy(update={"url": old.store.url, "history": old.store.history}),
            "ingest": new.ingest.model_copy(update={"max_message_bytes": old.ingest.max_message_bytes}),
        }).at(old.base_dir)
        self.config = merged
        if self.silences is not None:
            self.silences.calendar = policy.calendar
            policy.silences = self.silences
        self.engine.policy = policy
        if self.notifier is not None:
            self.notifier.configure(merged.notifications, secrets, merged.console_url())
        if self.servicer is not None:
            self.servicer.max_batch_results = merged.ingest.max_batch_results
        if self.timers is not None and self.loop is not None:
            self.loop.call(self._reschedule(), timeout=10)
            self.loop.call(self.check_calendar(), timeout=10)  # a year file may have been added or edited
        changed = [name for name in ("agents.lost_after", "findings.fixed_after", "store.history_retention",
                                     "ingest.max_batch_results") if _field(old, name) != _field(merged, name)]
        self._audit_reload(True, "")
        sections = [name for name in ("incidents", "calendar", "notifications")
                    if getattr(old, name) != getattr(merged, name)]
        parts = [f"{n} {_show(old, n)} -> {_show(merged, n)}" for n in changed] + [f"{n} changed" for n in sections]
        message = "reload applied: " + (", ".join(parts) or "nothing changed")
        if kept:
            message += f"; not applied until the collector restarts: {', '.join(kept)}"
        log.info("%s", message, extra={"event": "reload", "ok": True})
        return True, message

    def _audit_reload(self, ok: bool, error: str) -> None:
        """A reload is asked for by whoever may signal the collector's process (its user or root)."""
        if self.writer is None:
            return
        actor = Actor("local", "admin", "signal:SIGHUP")
        entry = AuditEntry.of(actor, "collector.reload", str(self.source or "collector"), self.clock(), ok=ok,
                              **({"error": error[:500]} if error else {}))
        self.writer.submit(lambda tx: tx.audit(entry))

    async def _reschedule(self) -> None:
        assert self.timers is not None
        for name, every in ((LOST_AGENTS, self._lost_interval()), (HOUSEKEEPING, self._housekeeping_interval())):
            timer = self.timers.find(name)
            if timer is not None and timer.every != every:
                self.timers.reschedule(timer, every)

    def reload_and_report(self) -> None:
        ok, message = self.reload()
        if self.reloads is not None:
            self.reloads.report(ok, message)


def _field(cfg: CollectorConfig, dotted: str) -> Any:
    section, name = dotted.split(".")
    return getattr(getattr(cfg, section), name)


def _show(cfg: CollectorConfig, dotted: str) -> str:
    value = _field(cfg, dotted)
    return f"{value:g}s" if isinstance(value, float) else str(value)


def with_overrides(cfg: CollectorConfig, *, grpc_listen: str | None = None, http_listen: str | None = None,
                   store_url: str | None = None) -> CollectorConfig:
    """Command-line overrides (`--listen`, `--http`, `--store`), validated like the file."""
    data = cfg.model_dump()
    if grpc_listen is not None:
        data["listen"]["grpc"] = grpc_listen
    if http_listen is not None:
        data["listen"]["http"] = http_listen
    if store_url is not None:
        data["store"]["url"] = store_url
    return CollectorConfig.model_validate(data).at(cfg.base_dir)


GIL_SWITCH_INTERVAL_S = 0.001
"""The writer thread and the event loop share the GIL; the default 5 ms hand-over shows up in ack latency."""


def serve_config(cfg: CollectorConfig, *, source: Path | None = None,
                 overrides: dict[str, str | None] | None = None) -> int:
    """Run a collector from a config object until SIGTERM/SIGINT or a failure; the exit code."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    collector = Collector(cfg, source=source, overrides=overrides)
    install_signals(collector.supervisor)
    try:
        collector.start()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        collector.stop()
        return EXIT_INVALID
    except StartError as exc:
        log.error("collector cannot start: %s", exc, extra={"event": "start.failed", "component": exc.component})
        collector.stop()
        return EXIT_FAILED
    return run_until_stopped(collector.supervisor, collector.reload_and_report, collector.stop)


def serve(config_path: Path | None, *, grpc_listen: str | None = None, http_listen: str | None = None,
          store_url: str | None = None, data_dir: Path | None = None, log_format: str = "text",
          log_level: str | None = None) -> int:
    """Run the collector of `config_path` (or defaults in `data_dir`/cwd when None); 2 on a bad config."""
    setup_logging(log_format, log_level)
    overrides = {"grpc_listen": grpc_listen, "http_listen": http_listen, "store_url": store_url}
    try:
        cfg = load_config(config_path) if config_path is not None else CollectorConfig.for_data_dir(
            data_dir or Path.cwd())
        cfg = with_overrides(cfg, **overrides)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    except ValueError as exc:  # a bad override: pydantic's message names the field
        print(f"xunjian collector: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return serve_config(cfg, source=config_path, overrides=overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m collector.server [collector.yaml]`, for benchmarks and service units."""
    import argparse

    from service.logs import LOG_FORMATS

    parser = argparse.ArgumentParser(prog="python -m collector.server", description="Run the Xunjian collector.")
    parser.add_argument("config", nargs="?", type=Path, help="collector.yaml (defaults otherwise)")
    parser.add_argument("--listen", help="gRPC host:port (overrides listen.grpc)")
    parser.add_argument("--http", help="HTTP host:port (overrides listen.http)")
    parser.add_argument("--store", help="store URL (overrides store.url)")
    parser.add_argument("--data-dir", type=Path, help="where the default SQLite store lives without a config")
    parser.add_argument("--log-format", choices=LOG_FORMATS, default="text")
    args = parser.parse_args(argv)
    return serve(args.config, grpc_listen=args.listen, http_listen=args.http, store_url=args.store,
                 data_dir=args.data_dir, log_format=args.log_format)


if __name__ == "__main__":
    sys.exit(main())
