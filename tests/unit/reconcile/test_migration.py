"""migration.reconcile offline: canonical forms, the per-day comparison, the statements in every dialect, and
the whole kind through recorded Oracle and SQL Server sessions (rows as python-oracledb and pyodbc return them)."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import oracledb
import pytest
from pydantic import ValidationError

from checks.reconcile import canonical
from checks.reconcile.migration import DayAggregate, MigratedTable, MigrationReconcile, aggregate_query, compare
from checks.result import Outcome, Status
from checks.sql.allow import SiteAllowance, prepare
from checks.sql.guard import GuardError
from tests.unit.sql_packs.recorded import ORACLE_TARGET, Answer, output_columns, run_recorded

D = decimal.Decimal
CHARGE = MigratedTable(source="his.outpatient_charge", dest="his_{year}.outpatient_charge", date_column="charge_time",
                       amount_columns=["amount", "insurance_amount"], key_column="charge_id")


@pytest.mark.parametrize("value, scale, text", [
    (D("12.3"), 2, "12.30"), (12.3 + 1e-9, 2, "12.30"), (".5", 2, "0.50"), ("-.5", 2, "-0.50"), (D("-0.001"), 2, "0.00"),
    (None, 2, "NULL"), (12, 0, "12"), ("1,234.5", 2, "1234.50"), ("￥88.00", 2, "88.00"), (D("1E+3"), 2, "1000.00"),
    (D("2.345"), 2, "2.35"),
])
def test_amounts_in_one_form_whatever_the_engine_returned(value: Any, scale: int, text: str) -> None:
    assert canonical.amount(value, scale) == text


@pytest.mark.parametrize("value, text", [
    (dt.date(2025, 3, 1), "2025-03-01"), (dt.datetime(2025, 3, 1, 0, 0), "2025-03-01"), ("2025-03-01 00:00:00", "2025-03-01"),
])
def test_days_in_one_form(value: Any, text: str) -> None:
    assert canonical.day(value) == text


@pytest.mark.parametrize("value, text", [(1001, "1001"), (D("1001"), "1001"), (1001.0, "1001"), ("C1001   ", "C1001"),
                                         (None, "NULL"), (D("10.50"), "10.5")])
def test_keys_in_one_form(value: Any, text: str) -> None:
    assert canonical.key(value) == text


def test_cents_of_plain_text_agree_with_the_decimal_reading() -> None:
    import random

    rng = random.Random(7)
    for _ in range(2000):
        text = f"{rng.choice(['', '-'])}{rng.randint(0, 10**8)}" + rng.choice(["", f".{rng.randint(0, 9)}",
                                                                                 f".{rng.randint(0, 99):02d}"])
        assert canonical.cents(text) == canonical.cents(D(text)), text


def test_bad_values_are_named() -> None:
    with pytest.raises(canonical.CanonicalError, match="expected a number"):
        canonical.amount("twelve", 2)
    with pytest.raises(canonical.CanonicalError, match="expected a date"):
        canonical.day("yesterday")


DAYS = [dt.date(2025, 3, d) for d in range(1, 6)]


def agg(rows: int, amount: str = "100.00", ins: str = "50.00", lo: str = "1", hi: str = "9") -> DayAggregate:
    return DayAggregate(rows, (amount, ins), lo, hi)


def test_a_clean_range_has_no_discrepancy() -> None:
    same = {d.isoformat(): agg(10) for d in DAYS}
    assert compare(CHARGE, DAYS, same, dict(same), None, False) == []


def test_each_problem_is_found_and_named_with_its_size() -> None:
    source = {d.isoformat(): agg(10) for d in DAYS}
    dest = dict(source)
    del dest["2025-03-02"]
    dest["2025-03-03"] = agg(7, "70.00", "35.00")
    dest["2025-03-04"] = agg(10, "99.50")
    dest["2025-03-05"] = agg(10, lo="2")
    found = compare(CHARGE, DAYS, source, dest, None, False)
    assert [(f.day, f.problem) for f in found] == [("2025-03-02", "missing_day"), ("2025-03-03", "short"),
                                                   ("2025-03-04", "amount_mismatch"), ("2025-03-05", "key_mismatch")]
    missing, short, amount, keys = found
    assert missing.text == "never moved: 10 rows in the running DB, none in the destination"
    assert short.text == "3 rows missing in the destination (running DB 10, destination 7)"
    assert short.evidence["row_difference"] == -3 and short.attributes["difference_amount"] == "-30.00"
    assert amount.text == "same 10 rows but amounts differ (amount: running DB 100.00, destination 99.50)"
    assert amount.evidence["difference_amount"] == -0.5
    assert keys.text == "key range differs: running DB 1..9, destination 2..9"


def test_extra_rows_empty_days_and_days_moved_away() -> None:
    source = {"2025-03-01": agg(10)}
    dest = {"2025-03-01": agg(12), "2025-03-02": agg(5), "2025-03-04": agg(5)}
    found = compare(CHARGE, DAYS, source, dest, dt.date(2025, 3, 3), True)
    assert [(f.day, f.problem) for f in found] == [("2025-03-01", "extra"), ("2025-03-03", "empty_day"),
                                                   ("2025-03-04", "extra"), ("2025-03-05", "empty_day")]
    assert "2025-03-02" not in {f.day for f in found}, "before the cutoff the running DB no longer has the day"


def test_per_year_destination_and_range_options() -> None:
    assert CHARGE.dest_name(2024) == "his_2024.outpatient_charge" and CHARGE.per_year
    with pytest.raises(ValidationError, match=r"only placeholder.*\{year\}"):
        MigratedTable(source="a.b", dest="a_{month}.b", date_column="d")
    base = {"id": "m", "kind": "migration.reconcile", "target": "run", "tables": [CHARGE.model_dump()]}
    with pytest.raises(ValidationError, match="give both first_day and last_day"):
        MigrationReconcile.model_validate({**base, "first_day": "2025-01-01"})
    with pytest.raises(ValidationError, match="either days or first_day"):
        MigrationReconcile.model_validate({**base, "days": 3, "first_day": "2025-01-01", "last_day": "2025-01-02"})
    with pytest.raises(ValidationError, match="more than 731 days"):
        MigrationReconcile.model_validate({**base, "first_day": "2020-01-01", "last_day": "2025-01-02"})
    spec = MigrationReconcile.model_validate({**base, "days": 3, "lag_days": 2})
    assert spec.day_range(dt.date(2025, 3, 10)) == [dt.date(2025, 3, 6), dt.date(2025, 3, 7), dt.date(2025, 3, 8)]
    assert spec.dest == "run"


@pytest.mark.parametrize("name", ["his.charge; DROP TABLE x", "a.b.c.d", "his.*", "his.`x"])
def test_names_that_are_not_names_are_config_errors(name: str) -> None:
    with pytest.raises(ValidationError):
        MigrationReconcile.model_validate({"id": "m", "kind": "migration.reconcile", "target": "run",
                                           "tables": [{"source": name, "date_column": "d"}]})


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "oracle", "mssql"])
def test_aggregate_statements_pass_the_guard_with_the_tables_as_site_exceptions(dialect: str) -> None:
    query = aggregate_query(CHARGE, CHARGE.dest_name(2025), dialect, dt.date(2025, 1, 1), dt.date(2025, 2, 1))
    [(key, _, variant)] = query.variants()
    sql = variant.sql or ""
    with pytest.raises(GuardError, match="not on the read-only allow-list"):
        prepare(sql, key, None)
    prepare(sql, key, SiteAllowance(reviewed_by="DBA", relations=("his_20*.*",)))
    assert output_columns(sql, key) == ["business_day", "row_count", "sum_0", "sum_1", "min_key", "max_key"]


def test_the_whole_kind_on_oracle_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sides on one recorded Oracle target: the server's date, then the two GROUP BYs (TRUNC gives datetime,
    TO_CHAR(SUM) text, NUMBER keys int)."""
    spec = MigrationReconcile.model_validate({
        "id": "his.migration.reconcile", "kind": "migration.reconcile", "target": ORACLE_TARGET, "days": 2,
        "tables": [{"source": "his.charge", "dest": "his_{year}.charge", "date_column": "charge_time",
                    "amount_columns": ["amount"], "key_column": "charge_id"}]})
    n, v, t = oracledb.DB_TYPE_NUMBER, oracledb.DB_TYPE_VARCHAR, oracledb.DB_TYPE_DATE
    answers = {
        "SYSDATE": Answer([("today", t)], [(dt.datetime(2025, 3, 10),)]),
        '"HIS"."CHARGE"': Answer([("business_day", t), ("row_count", n), ("sum_0", v), ("min_key", n), ("max_key", n)],
                                 [(dt.datetime(2025, 3, 8), 3, "30.5", 1, 3), (dt.datetime(2025, 3, 9), 2, "20", 4, 5)]),
        '"HIS_2025"."CHARGE"': Answer([("business_day", t), ("row_count", n), ("sum_0", v), ("min_key", n),
                                       ("max_key", n)], [(dt.datetime(2025, 3, 8), 3, "30.50", 1, 3)]),
    }
    from tests.unit.sql_packs import recorded

    original = recorded.RecordedConnection.answer_for

    def answer_for(self: recorded.RecordedConnection, sql: str) -> Answer | None:
        for marker, answer in answers.items():
            if marker in sql and sql.lstrip().upper().startswith("SELECT") and "V$LOCK" not in sql.upper():
                return answer
        return original(self, sql)

    monkeypatch.setattr(recorded.RecordedConnection, "answer_for", answer_for)
    target = recorded.target_for("oracle").model_copy(
        update={"allow": SiteAllowance(reviewed_by="DBA", relations=("his.charge", "his_2025.charge"))})
    monkeypatch.setattr(recorded, "target_for", lambda dialect: target)
    [result], conn = run_recorded(monkeypatch, spec, "oracle", "19.3.0.0.0", None)
    assert (result.status, result.outcome, result.key, result.value) == (Status.CRITICAL, Outcome.OK, "his.charge", 1.0)
    assert result.summary.endswith("1 problem(s) in 2 days 2025-03-08..2025-03-09: 2025-03-09 never moved: 2 rows in "
                                   "the running DB, none in the destination")
    [finding] = result.findings
    assert (finding.category, finding.fingerprint) == ("migration", "his.migration.reconcile:his.charge:2025-03-09:missing_day")
    assert finding.attributes["dest_table"] == "his_2025.charge"
    assert any("TO_DATE('2025-03-08', 'YYYY-MM-DD')" in q for q in conn.queries)
