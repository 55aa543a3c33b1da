"""The collector process: one lifecycle for store, writer, gRPC ingest, timers and HTTP.

`serve(config_path)` is what `xunjian collector` calls; `serve_config(cfg)` is for `xunjian up`, which
builds the config from a data directory. Both return an exit code: 2 for a bad config, 0 on a clean
stop (SIGTERM or SIGINT), 1 when a part failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from checks.config_error import ConfigError
from collector.config import CollectorConfig, load_config
from collector.http import Api, HttpServer
from collector.ingest import IngestServicer, build_grpc_server, mark_serving
from collector.metrics import PatrolMetrics, build_registry
from collector.state import AgentLiveness, StateEngine
from collector.store import Store, open_store
from collector.writer import Writer

log = logging.getLogger(__name__)
HOUSEKEEPING_INTERVAL_S = 60.0
PURGE_CHUNK = 10_000


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Collector:
    """Start/stop of every long-running part; `error` says why it stopped when it was not asked to."""

    def __init__(self, config: CollectorConfig, *, clock: Callable[[], float] = time.time,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> None:
        self.config = config
        self.clock = clock
        self.interceptors = interceptors
        self.engine = StateEngine(history_all=config.store.history == "all")
        self.store: Store | None = None
        self.writer: Writer | None = None
        self.servicer: IngestServicer | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.error: BaseException | None = None
        self._grpc: grpc.aio.Server | None = None
        self._http: HttpServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopped = asyncio.Event()

    async def start(self) -> None:
        path = self.config.sqlite_path()
        if path is None:
            raise ConfigError("only SQLite stores are available in this version", field="store.url")
        self.store = store = await asyncio.to_thread(open_store, path, history=self.config.store.history)
        self.engine.restore(await asyncio.to_thread(store.load_snapshot), self.clock())
        self.writer = writer = Writer(store)
        writer.start()
        ingest = self.config.ingest
        self.servicer = IngestServicer(self.engine, writer, store, max_batch_results=ingest.max_batch_results,
                                       collector_id=socket.gethostname(), clock=self.clock)
        self._grpc, health = build_grpc_server(self.servicer, max_message_bytes=ingest.max_message_bytes,
                                               interceptors=self.interceptors)
        self.grpc_port = self._grpc.add_insecure_port(self.config.listen.grpc)
        if self.grpc_port == 0:
            raise OSError(f"cannot listen on {self.config.listen.grpc} (listen.grpc)")
        await self._grpc.start()
        await mark_serving(health, True)
        registry = build_registry(PatrolMetrics(self.engine, store, self.servicer.stats, writer.stats, self.clock))
        host, port = _split(self.config.listen.http)
        self._http = HttpServer(Api(self.engine, store, writer, registry, self.clock), host, port)
        self.http_port = self._http.port
        self._http.start()
        self._tasks = [asyncio.ensure_future(self._every(self._lost_interval(), self.check_lost_agents)),
                       asyncio.ensure_future(self._every(self._housekeeping_interval(), self.housekeeping))]
        log.info("collector listening: grpc %s (port %d), http %s (port %d), store %s", self.config.listen.grpc,
                 self.grpc_port, self.config.listen.http, self.http_port, path)

    def _housekeeping_interval(self) -> float:
        """Often enough that a finding is marked fixed within a quarter of fixed_after of going stale."""
        return min(max(self.config.findings.fixed_after / 4, 0.5), HOUSEKEEPING_INTERVAL_S)

    def _lost_interval(self) -> float:
        return min(max(self.config.agents.lost_after / 6, 0.5), 10.0)

    async def _every(self, seconds: float, job: Callable[[], Any]) -> None:
        while True:
            try:
                outcome = job()
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception as exc:
                log.exception("periodic job failed")
                self.error = exc
                self._stopped.set()
                return
            await asyncio.sleep(seconds)

    async def check_lost_agents(self) -> None:
        """Open 'agent lost' for agents silent longer than agents.lost_after at every collector of the store."""
        assert self.writer is not None and self.store is not None
        stored = [AgentLiveness(*row) for row in await asyncio.to_thread(self.store.agent_liveness)]
        actions = self.engine.lost_agents(self.clock(), self.config.agents.lost_after, stored)
        if actions:
            await asyncio.wrap_future(self.writer.submit(lambda tx: tx.write_incident_actions(actions)))

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
                return fixed, purged

    async def wait(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        self._stopped.set()

    async def stop(self, grace: float = 2.0) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._grpc is not None:
            await self._grpc.stop(grace)
        if self._http is not None:
            await asyncio.to_thread(self._http.stop)
        if self.writer is not None:
            await asyncio.to_thread(self.writer.stop)
            if self.writer.error is not None and self.error is None:
                self.error = self.writer.error
        if self.store is not None:
            self.store.close()
        self._stopped.set()


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


async def _run(cfg: CollectorConfig) -> int:
    collector = Collector(cfg)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, collector.request_stop)
    try:
        await collector.start()
    except (OSError, ConfigError) as exc:
        print(f"xunjian collector: {exc}", file=sys.stderr)
        await collector.stop(0)
        return 2 if isinstance(exc, ConfigError) else 1
    await collector.wait()
    await collector.stop()
    if collector.error is not None:
        print(f"xunjian collector: stopped on error: {collector.error}", file=sys.stderr)
        return 1
    return 0


GIL_SWITCH_INTERVAL_S = 0.001
"""The writer thread and the event loop share the GIL; the default 5 ms hand-over shows up in ack latency."""


def serve_config(cfg: CollectorConfig) -> int:
    """Run a collector from a config object until SIGTERM/SIGINT; the exit code."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return asyncio.run(_run(cfg))


def serve(config_path: Path | None, *, grpc_listen: str | None = None, http_listen: str | None = None,
          store_url: str | None = None, data_dir: Path | None = None) -> int:
    """Run the collector of `config_path` (or defaults in `data_dir`/cwd when None); 2 on a bad config."""
    try:
        cfg = load_config(config_path) if config_path is not None else CollectorConfig.for_data_dir(
            data_dir or Path.cwd())
        cfg = with_overrides(cfg, grpc_listen=grpc_listen, http_listen=http_listen, store_url=store_url)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except ValueError as exc:  # a bad override: pydantic's message names the field
        print(f"xunjian collector: {exc}", file=sys.stderr)
        return 2
    return serve_config(cfg)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m collector.server [collector.yaml]`, for benchmarks and service units."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m collector.server", description="Run the Xunjian collector.")
    parser.add_argument("config", nargs="?", type=Path, help="collector.yaml (defaults otherwise)")
    parser.add_argument("--listen", help="gRPC host:port (overrides listen.grpc)")
    parser.add_argument("--http", help="HTTP host:port (overrides listen.http)")
    parser.add_argument("--store", help="store URL (overrides store.url)")
    parser.add_argument("--data-dir", type=Path, help="where the default SQLite store lives without a config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return serve(args.config, grpc_listen=args.listen, http_listen=args.http, store_url=args.store,
                 data_dir=args.data_dir)


if __name__ == "__main__":
    sys.exit(main())
