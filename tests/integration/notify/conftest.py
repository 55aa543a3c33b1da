"""A store with incidents made by the real state engine, its writer, and notifiers on an injected clock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.events import AgentHello, CheckRule
from collector.incidents import IncidentPolicy
from collector.notify.config import NotificationsConfig, receiver_secrets
from collector.notify.notifier import Notifier
from collector.sqlite import open_sqlite
from collector.sqlstore import SqlStore
from collector.state import StateEngine
from collector.workdays import WorkingCalendar
from collector.writer import Writer
from protos import patrol_pb2
from tests.unit.incidents.test_workdays import at

T0 = at("2026-12-02 10:00")
CONSOLE = "http://xunjian.hospital.local:9471"


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    store: SqlStore
    writer: Writer
    clock: Clock
    base_dir: Path
    engine: StateEngine = field(default_factory=lambda: StateEngine(policy=IncidentPolicy(WorkingCalendar.load())))
    seq: int = 0
    notifiers: list[Notifier] = field(default_factory=list)

    def agent(self, rules: Sequence[CheckRule], agent_id: str = "his-db-01", labels: dict[str, str] | None = None) -> None:
        hello = AgentHello(agent_id, f"{agent_id}.hospital.local", labels or {"system": "HIS"}, [], "", "", 0,
                           list(rules), self.clock())
        self.engine.hello(hello)
        self.writer.submit(lambda tx: tx.write_hello(hello)).result()

    def send(self, *results: tuple[str, int, str], agent_id: str = "his-db-01", target: str = "") -> None:
        batch = []
        for check, status, summary in results:
            self.seq += 1
            batch.append(patrol_pb2.Result(seq=self.seq, check_id=check, target=target, status=status,  # type: ignore[arg-type]
                                           summary=summary, started_unix_ms=int(self.clock() * 1000)))
        effects = self.engine.apply_batch(agent_id, batch, self.clock())
        self.writer.submit(lambda tx: tx.write_batch(effects)).result()

    def notifier(self, config: dict[str, Any], language: str = "zh") -> Notifier:
        cfg = NotificationsConfig.model_validate({"language": language, "group_wait": "30s", **config})
        n = Notifier(self.store, self.writer, cfg, receiver_secrets(cfg, self.base_dir), console_url=CONSOLE,
                     tz=ZoneInfo("Asia/Shanghai"), clock=self.clock)
        self.notifiers.append(n)
        return n


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    store = open_sqlite(tmp_path / "c.db")
    writer = Writer(store)
    writer.start()
    r = Rig(store, writer, Clock(), tmp_path)
    try:
        yield r
    finally:
        writer.stop()
        store.close()
