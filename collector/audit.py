"""The audit trail: every human action (reviews, incident actions, tokens, enrollment, reloads), append-only and
tamper-evident.

Each entry carries the hash of the one before it, so editing, deleting or reordering a stored entry breaks the
chain from that entry on, and `xunjian audit verify` names the first entry that no longer fits. An entry is
written in the same transaction as the change it records: there is no action without its entry, nor an entry
for an action that was rolled back. The chain's head is logged at start, so a copy kept outside the store (the
journal) can show that a rewrite of the whole chain happened.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.access import Actor

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""


@dataclass(frozen=True)
class AuditEntry:
    """What one action was, by whom, from where, on what."""

    at: float
    actor: str
    role: str
    via: str
    remote: str
    action: str
    """Dotted verb: finding.accept, incident.ack, token.create, agent.retire, collector.reload..."""
    object: str
    """What it acted on: "finding 12", "incident 7", "token ops-wall", "agent his-app-01"."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """JSON-able particulars (the note, the new assignee); never a secret."""

    @staticmethod
    def of(actor: Actor, action: str, obj: str, at: float, **detail: Any) -> AuditEntry:
        return AuditEntry(at, actor.name, actor.role, actor.via, actor.remote, action, obj, detail)

    def canonical(self) -> str:
        """The text the hash covers: every field, in a fixed order and spelling."""
        return json.dumps([repr(float(self.at)), self.actor, self.role, self.via, self.remote, self.action, self.object,
                           dict(self.detail)], sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256((prev_hash + "\n" + entry.canonical()).encode()).hexdigest()


def entry_of(row: Mapping[str, Any]) -> AuditEntry:
    detail = row["detail"]
    if isinstance(detail, str):
        detail = json.loads(detail)
    return AuditEntry(float(row["at"]), str(row["actor"]), str(row["role"]), str(row["via"]), str(row["remote"]),
                      str(row["action"]), str(row["object"]), detail)


@dataclass
class Verification:
    entries: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(rows: Iterable[Mapping[str, Any]], start: Verification | None = None) -> Verification:
    """Walk stored rows in id order; each must name the previous hash and hash to what it stores.

    `start` continues a walk done in chunks (the store reads the trail a page at a time).
    """
    state = start or Verification()
    for row in rows:
        state.entries += 1
        where = f"entry {row['id']}"
        if row["prev_hash"] != state.head:
            state.problems.append(f"{where}: does not follow the entry before it (an entry was removed, inserted or "
                                  "reordered)")
        try:
            expected = chain_hash(str(row["prev_hash"]), entry_of(row))
        except (ValueError, KeyError, TypeError) as exc:
            state.problems.append(f"{where}: unreadable ({exc})")
            expected = ""
        if row["hash"] != expected:
            state.problems.append(f"{where}: its content does not match its hash (the entry was edited)")
        state.head = str(row["hash"])
    return state
