"""The audit trail's hash chain and the roles of the API: what each stops, without a network."""

from __future__ import annotations

import sqlite3
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from collector.access import ROLES, Actor, local_operator
from collector.audit import GENESIS, AuditEntry, chain_hash, verify_chain
from collector.http import Api
from collector.sqlite import open_sqlite


def entry(n: int) -> AuditEntry:
    return AuditEntry(1_700_000_000.0 + n, "dba.wang", "dba", "token:wang", "10.0.0.5:50000", "finding.accept",
                      f"finding {n}", {"note": f"note {n}", "state": "accepted"})


def chain(n: int) -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for i in range(1, n + 1):
        e = entry(i)
        digest = chain_hash(prev, e)
        rows.append({"id": i, "at": e.at, "actor": e.actor, "role": e.role, "via": e.via, "remote": e.remote,
                     "action": e.action, "object": e.object, "detail": dict(e.detail), "prev_hash": prev,
                     "hash": digest})
        prev = digest
    return rows


def test_an_intact_chain_verifies_and_names_its_head() -> None:
    rows = chain(5)
    result = verify_chain(rows)
    assert (result.ok, result.entries, result.head) == (True, 5, rows[-1]["hash"])


@pytest.mark.parametrize("field", ["actor", "action", "object", "remote", "role", "via"])
def test_an_edited_field_breaks_that_entry(field: str) -> None:
    rows = chain(4)
    rows[1][field] = "someone else"
    assert verify_chain(rows).problems == ["entry 2: its content does not match its hash (the entry was edited)"]


def test_an_edited_detail_or_time_breaks_that_entry() -> None:
    rows = chain(3)
    rows[2]["detail"] = {"note": "nothing to see", "state": "accepted"}
    rows[0]["at"] = rows[0]["at"] + 1
    assert verify_chain(rows).problems == ["entry 1: its content does not match its hash (the entry was edited)",
                                           "entry 3: its content does not match its hash (the entry was edited)"]


def test_a_removed_or_reordered_entry_breaks_the_next_link() -> None:
    rows = chain(4)
    removed = verify_chain([rows[0], rows[2], rows[3]])
    assert removed.problems == ["entry 3: does not follow the entry before it (an entry was removed, inserted or "
                                "reordered)"]
    swapped = verify_chain([rows[0], rows[2], rows[1], rows[3]])
    assert len(swapped.problems) == 3


def test_roles_include_the_ones_before_them() -> None:
    assert ROLES == ("viewer", "operator", "dba", "admin")
    dba = Actor("wang", "dba", "token:wang")
    assert (dba.may("viewer"), dba.may("operator"), dba.may("dba"), dba.may("admin")) == (True, True, True, False)
    with pytest.raises(ValueError, match="unknown role 'root'"):
        Actor("x", "root", "token:x")


def test_an_authenticated_caller_is_recorded_as_who_they_are() -> None:
    assert Actor("wang", "dba", "token:wang").acting_as("someone else") == "wang"
    assert local_operator().acting_as("dba.li") == "dba.li"
    assert local_operator().acting_as("  ") == "local"


def api(tmp_path: Path) -> Api:
    from collector.writer import Writer
    from service.lifecycle import LoggingHost

    store = open_sqlite(tmp_path / "c.db")
    writer = Writer(store)
    writer.start(LoggingHost())
    none: Any = None
    return Api(none, store, writer, none, lambda: 1_700_000_000.0, dict)


def test_a_route_refuses_a_caller_without_its_role(tmp_path: Path) -> None:
    a = api(tmp_path)
    viewer = Actor("wall", "viewer", "token:wall")
    refused = a.handle("POST", "/api/v1/findings/1/accept", {}, b'{"note": "x"}', viewer)
    assert refused.status == HTTPStatus.FORBIDDEN
    assert b"POST /api/v1/findings/{id}/accept needs the dba role; wall has viewer" in refused.body
    assert a.handle("GET", "/api/v1/audit", {}, b"", Actor("dba", "dba", "token:dba")).status == HTTPStatus.FORBIDDEN
    assert a.handle("GET", "/api/v1/audit", {}, b"", Actor("root", "admin", "token:root")).status == HTTPStatus.OK


def test_a_review_is_audited_in_its_transaction_and_an_edit_is_detected(tmp_path: Path) -> None:
    a = api(tmp_path)
    with a.store.transaction() as tx:  # a finding to review
        cur: Any = tx._cur  # type: ignore[attr-defined]
        cur.execute("INSERT INTO findings (agent_id, target, fingerprint, check_id, first_seen, last_seen) "
                    "VALUES ('a', 't', 'f', 'c', 1, 1)")
    wang = Actor("wang", "dba", "token:wang", "10.0.0.5:4000")
    done = a.handle("POST", "/api/v1/findings/1/accept", {}, b'{"note": "planned", "reviewer": "ignored"}', wang)
    assert done.status == HTTPStatus.OK
    missing = a.handle("POST", "/api/v1/findings/99/accept", {}, b'{"note": "x"}', wang)
    assert missing.status == HTTPStatus.NOT_FOUND
    (row,) = a.store.list_audit()
    assert (row["actor"], row["role"], row["via"], row["remote"], row["action"], row["object"], row["detail"]) == (
        "wang", "dba", "token:wang", "10.0.0.5:4000", "finding.accept", "finding 1",
        {"note": "planned", "state": "accepted"})
    assert a.store.verify_audit().ok
    db = sqlite3.connect(tmp_path / "c.db")
    db.execute("UPDATE audit SET detail = '{\"note\": \"other\", \"state\": \"accepted\"}' WHERE id = 1")
    db.commit()
    db.close()
    assert a.store.verify_audit().problems == ["entry 1: its content does not match its hash (the entry was edited)"]
