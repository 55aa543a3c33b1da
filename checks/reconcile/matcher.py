"""Row-level matching of HIS transactions against a channel's, in bounded memory.

Both sides are spilled into a temporary SQLite file on the agent as they stream in (the database's rows in
batches, the statement files line by line), then read back grouped by order number in key order: at any time
only one order's records are in Python. Each order's payments, refunds and revocations are summed per side and
compared: a kind only one side has is a 单边账 (his_only / channel_only), the same kind with different sums an
amount mismatch, a kind each side has but the other does not (HIS refund, channel payment) a status mismatch.

Records outside the reconciled day (the neighbouring days, read so that a payment at 23:59:59 that HIS booked at
00:00:02 still matches) only ever match; an order is reported only when one of its records is on the day.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Side = Literal["his", "channel"]
Problem = Literal["his_only", "channel_only", "amount_mismatch", "status_mismatch"]
_SIDES = {"his": 0, "channel": 1}


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    """What the two sides are matched on: the merchant order number (or the channel transaction id)."""
    kind: str
    cents: int
    at: str
    txn_id: str
    refund_no: str
    reported: bool
    """On the reconciled day (rather than a neighbouring day read only to match)."""


@dataclass
class Group:
    """One side's records of one kind for one key, summed."""

    cents: int
    count: int
    at: str
    txn_ids: str
    refund_nos: str
    reported: bool


@dataclass
class Discrepancy:
    problem: Problem
    key: str
    his: dict[str, Group] = field(default_factory=dict)
    channel: dict[str, Group] = field(default_factory=dict)
    kinds: tuple[str, ...] = ()
    """The kinds concerned: one for a 单边账 or an amount mismatch; HIS's then the channel's for a status mismatch."""


@dataclass
class Totals:
    """The reconciled day's records per side: how many, and payments and refunds in cents."""

    count: int = 0
    payments: int = 0
    refunds: int = 0
    revoked: int = 0

    @property
    def net(self) -> int:
        return self.payments - self.refunds


class Ledger:
    """The temporary SQLite file both sides are spilled into; removed on close."""

    def __init__(self, directory: Path | None = None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="xunjian-reconcile-", dir=directory)
        self.path = Path(self._dir.name) / "ledger.db"
        self.db = sqlite3.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -8192", "temp_store = FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE rec (side INTEGER, key TEXT, kind TEXT, cents INTEGER, at TEXT, txn_id TEXT, "
                        "refund_no TEXT, reported INTEGER)")
        self.counts = {"his": 0, "channel": 0}

    def add(self, side: Side, records: Iterable[Record]) -> int:
        """Store a batch of one side's records; returns how many."""
        code = _SIDES[side]
        self.db.execute("BEGIN")
        cur = self.db.executemany("INSERT INTO rec VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                  ((code, r.key, r.kind, r.cents, r.at, r.txn_id, r.refund_no, int(r.reported))
                                   for r in records))
        self.db.execute("COMMIT")
        added = max(cur.rowcount, 0)
        self.counts[side] += added
        return added

    def totals(self) -> dict[Side, Totals]:
        out: dict[Side, Totals] = {"his": Totals(), "channel": Totals()}
        for side, kind, count, cents in self.db.execute(
                "SELECT side, kind, COUNT(*), SUM(cents) FROM rec WHERE reported = 1 GROUP BY side, kind"):
            t = out["his" if side == 0 else "channel"]
            t.count += count
            if kind == "payment":
                t.payments += cents
            elif kind == "refund":
                t.refunds += cents
            else:
                t.revoked += cents
        return out

    def discrepancies(self) -> Iterator[Discrepancy]:
        """Every reported order whose two sides disagree, in key order, streamed from SQLite."""
        self.db.execute("CREATE INDEX rec_key ON rec (key, side, kind)")
        rows = self.db.execute(
            "SELECT key, side, kind, SUM(cents), COUNT(*), MIN(at), GROUP_CONCAT(DISTINCT txn_id), "
            "GROUP_CONCAT(DISTINCT refund_no), MAX(reported) FROM rec GROUP BY key, side, kind ORDER BY key, side, kind")
        current: str | None = None
        sides: tuple[dict[str, Group], dict[str, Group]] = ({}, {})
        for key, side, kind, cents, count, at, txn_ids, refund_nos, reported in rows:
            if key != current:
                if current is not None:
                    yield from _classify(current, *sides)
                current, sides = key, ({}, {})
            sides[side][kind] = Group(cents, count, at or "", _ids(txn_ids), _ids(refund_nos), bool(reported))
        if current is not None:
            yield from _classify(current, *sides)

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ids(concatenated: str | None) -> str:
    if not concatenated or "," not in concatenated:
        return concatenated or ""
    values = [v for v in (concatenated or "").split(",") if v]
    return ",".join(values[:10]) + (f",...(+{len(values) - 10})" if len(values) > 10 else "")


def _classify(key: str, his: dict[str, Group], channel: dict[str, Group]) -> Iterator[Discrepancy]:
    if not any(g.reported for g in (*his.values(), *channel.values())):
        return
    for kind in sorted(his.keys() & channel.keys()):
        if his[kind].cents != channel[kind].cents:
            yield Discrepancy("amount_mismatch", key, his, channel, (kind,))
    his_only = sorted(his.keys() - channel.keys())
    channel_only = sorted(channel.keys() - his.keys())
    if his_only and channel_only:
        yield Discrepancy("status_mismatch", key, his, channel, (",".join(his_only), ",".join(channel_only)))
        return
    for kind in his_only:
        yield Discrepancy("his_only", key, his, channel, (kind,))
    for kind in channel_only:
        yield Discrepancy("channel_only", key, his, channel, (kind,))
