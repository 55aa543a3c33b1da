"""Reconciliation through the engine offline: each statement of a two-target check is checked against its own
target's allow-list when agent.yaml loads (file:line), a disabled check needs no exception; and the streamed HIS
side on a recorded Oracle connection (python-oracledb's NUMBER as float, DATE as datetime, fetchmany), including a
session left unsafe after the stream."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import oracledb
import pytest

from agent.config import load_agent_config
from checks.config_error import ConfigError
from checks.reconcile.payments import ReconcilePayments
from checks.result import Outcome, Status
from checks.sql.allow import SiteAllowance
from tests.unit.reconcile.bills import Txn, write_wechat
from tests.unit.sql_packs import recorded
from tests.unit.sql_packs.recorded import ORACLE_TARGET, Answer, run_recorded

MIGRATION_PACK = """\
pack: his-site
checks:
  - id: his.year.reconcile
    kind: migration.reconcile
    target: his_pg
    dest_target: {dest}
    disabled: {disabled}
    tables:
      - source: his.charge
        dest: his_{{year}}.charge
        date_column: charge_time
"""


def agent_yaml(tmp_path: Path, dest: str = "his_year", year_allow: str = "[\"his_20*.*\"]", disabled: str = "false") -> Path:
    (tmp_path / "site.yaml").write_text(MIGRATION_PACK.format(dest=dest, disabled=disabled))
    path = tmp_path / "agent.yaml"
    path.write_text(
        'collector: {addresses: ["c:9470"]}\n'
        "packs: [site.yaml]\n"
        "targets:\n"
        "  his_pg: {dialect: postgres, host: 127.0.0.1, database: his,\n"
        "           allow: {reviewed_by: DBA, relations: [his.charge]}}\n"
        "  his_year: {dialect: mysql, host: 127.0.0.1, database: year,\n"
        f"             allow: {{reviewed_by: DBA, relations: {year_allow}}}}}\n"
    )
    return path


def test_each_side_is_checked_against_its_own_target(tmp_path: Path) -> None:
    cfg = load_agent_config(agent_yaml(tmp_path))
    assert [s.id for s in cfg.checks.specs] == ["his.year.reconcile"]
    with pytest.raises(ConfigError) as err:
        load_agent_config(agent_yaml(tmp_path, year_allow="[his.charge]"))
    assert str(err.value).startswith(f"{tmp_path / 'site.yaml'}:3: tables[0].dest.mysql: check 'his.year.reconcile' "
                                     "on target his_year: not on the read-only allow-list: his_20")


def test_an_unknown_destination_target_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown target 'his_yr'; agent\.yaml defines: his_pg, his_year"):
        load_agent_config(agent_yaml(tmp_path, dest="his_yr"))


def test_a_disabled_check_needs_no_site_exception(tmp_path: Path) -> None:
    cfg = load_agent_config(agent_yaml(tmp_path, year_allow="[his.charge]", disabled="true"))
    assert cfg.checks.specs[0].disabled


DAY = dt.date(2025, 3, 9)
N, D, V = oracledb.DB_TYPE_NUMBER, oracledb.DB_TYPE_DATE, oracledb.DB_TYPE_VARCHAR


def oracle_payments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, his_rows: list[tuple[Any, ...]],
                    session: tuple[Any, ...] | None = None) -> Any:
    txns = [Txn(f"MZ{i}", "payment", 1230 + i, dt.datetime(2025, 3, 9, 9, i), f"42{i}") for i in range(3)]
    write_wechat(tmp_path / "20250309.csv", txns)
    spec = ReconcilePayments.model_validate({
        "id": "his.pay.wechat", "kind": "reconcile.payments", "target": ORACLE_TARGET,
        "statement": {"format": "wechat", "path": str(tmp_path / "{date:%Y%m%d}.csv")},
        "his": {"query": {"oracle": "SELECT out_trade_no, amount, pay_time, trade_no FROM his.pay_record"},
                "order_column": "out_trade_no", "amount_column": "amount", "time_column": "pay_time",
                "txn_column": "trade_no"}})
    answers = {"TRUNC(SYSDATE": Answer([("today", D)], [(dt.datetime(2025, 3, 10),)]),
               '"HIS"."PAY_RECORD"': Answer([("order_no", V), ("amount", N), ("at", D), ("txn_id", V)], his_rows)}
    original = recorded.RecordedConnection.answer_for

    def answer_for(self: recorded.RecordedConnection, sql: str) -> Answer | None:
        for marker, answer in answers.items():
            if marker in sql and "V$LOCK" not in sql.upper():
                return answer
        return original(self, sql)

    monkeypatch.setattr(recorded.RecordedConnection, "answer_for", answer_for)
    target = recorded.target_for("oracle").model_copy(
        update={"allow": SiteAllowance(reviewed_by="DBA", relations=("his.pay_record",))})
    monkeypatch.setattr(recorded, "target_for", lambda dialect: target)
    if session is not None:
        monkeypatch.setattr(recorded.RecordedConnection, "session", session, raising=False)
        original_init = recorded.RecordedConnection.__init__

        def init(self: recorded.RecordedConnection, *args: Any) -> None:
            original_init(self, *args)
            self.session = session

        monkeypatch.setattr(recorded.RecordedConnection, "__init__", init)
    [result], conn = run_recorded(monkeypatch, spec, "oracle", "19.3.0.0.0", None)
    return result, conn


def test_oracle_rows_stream_through_the_session_and_match(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows = [(f"MZ{i}", 12.30 + i / 100, dt.datetime(2025, 3, 9, 9, i, 3), f"42{i}") for i in range(3)]
    result, conn = oracle_payments(monkeypatch, tmp_path, rows)
    assert (result.status, result.value) == (Status.OK, 0.0), result.summary
    [wrapped] = [q for q in conn.queries if "PAY_RECORD" in q]
    assert "TO_DATE('2025-03-08', 'YYYY-MM-DD')" in wrapped and "TO_DATE('2025-03-11', 'YYYY-MM-DD')" in wrapped
    changed = [(f"MZ{i}", 12.31 + i / 100, dt.datetime(2025, 3, 9, 9, i, 3), f"42{i}") for i in range(3)]
    result, _ = oracle_payments(monkeypatch, tmp_path, changed)
    assert (result.value, {f.attributes["problem"] for f in result.findings}) == (3.0, {"amount_mismatch"})


def test_a_session_left_unsafe_after_the_stream_discards_the_result(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    rows = [(f"MZ{i}", 12.30 + i / 100, dt.datetime(2025, 3, 9, 9, i, 3), f"42{i}") for i in range(3)]
    result, _ = oracle_payments(monkeypatch, tmp_path, rows, session=(1, "XUNJIAN_MON", "XUNJIAN_MON"))
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.UNSAFE_SESSION), result.summary
