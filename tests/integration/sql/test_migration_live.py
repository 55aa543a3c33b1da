"""migration.reconcile against live servers with synthetic outpatient charges: a running DB and per-year
destination schemas on PostgreSQL, on MariaDB, and across engines (PostgreSQL running DB, MariaDB year DB).

The rows are dated relative to each server's own today, so the compared range holds whatever day the suite runs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.reconcile.migration import MigrationReconcile
from checks.result import Outcome, Result, Status
from checks.sql.target import Target
from tests.integration.sql.conftest import my_target, pg_target

pytestmark = pytest.mark.integration

DAYS = 6
PER_DAY = 40
COLUMNS = "charge_id, patient_ref, item_code, charge_time, amount, insurance_amount"


def charges(today: dt.date, first_id: int = 1) -> list[tuple[Any, ...]]:
    """PER_DAY charges on each of the DAYS days before `today` (yesterday back), amounts in fen-exact decimals."""
    rows = []
    charge_id = first_id
    for back in range(DAYS, 0, -1):
        day = today - dt.timedelta(days=back)
        for i in range(PER_DAY):
            at = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=7 * i)
            amount = decimal.Decimal(1000 + 37 * i) / 100
            rows.append((charge_id, f"P{charge_id % 97:05d}", f"ITEM{i % 13:03d}", at, amount, amount * 7 / 10))
            charge_id += 1
    return rows


def day_of(today: dt.date, back: int) -> dt.date:
    return today - dt.timedelta(days=back)


@dataclass
class Side:
    """One server's running DB and year DB: their table names and an admin connection to change them."""

    running: str
    year_template: str
    today: dt.date
    execute: Any

    def year_table(self, day: dt.date) -> str:
        return self.year_template.replace("{year}", str(day.year))


def spec(target: str, dest_target: str, running: str, year_template: str, **table: Any) -> MigrationReconcile:
    return MigrationReconcile.model_validate({
        "id": "his.migration.year_db", "kind": "migration.reconcile", "target": target, "dest_target": dest_target,
        "days": DAYS, "timeout": "60s",
        "tables": [{"source": running, "dest": year_template, "date_column": "charge_time",
                    "amount_columns": ["amount", "insurance_amount"], "key_column": "charge_id", **table}]})


def check(ctx: RunContext, targets: list[Target], s: MigrationReconcile) -> Result:
    ctx.targets = {t.name: t for t in targets}
    [result] = s.probe(ctx)
    return result


@pytest.fixture
def pg_side(pg_admin: psycopg.Connection[Any]) -> Iterator[Side]:
    base = f"xj_test_{secrets.token_hex(4)}"
    today = pg_admin.execute("SELECT CURRENT_DATE").fetchone()[0]  # type: ignore[index]
    rows = charges(today)
    years = sorted({r[3].year for r in rows})
    ddl = ("(charge_id bigint PRIMARY KEY, patient_ref text, item_code text, charge_time timestamp NOT NULL, "
           "amount numeric(12,2), insurance_amount numeric(12,2))")
    schemas = [base, *(f"{base}_y{y}" for y in years)]
    for schema in schemas:
        pg_admin.execute(f"CREATE SCHEMA {schema}")
        pg_admin.execute(f"CREATE TABLE {schema}.outpatient_charge {ddl}")
        pg_admin.execute(f"CREATE INDEX ON {schema}.outpatient_charge (charge_time)")
    with pg_admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {base}.outpatient_charge ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)", rows)
        for y in years:
            cur.executemany(f"INSERT INTO {base}_y{y}.outpatient_charge ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                            [r for r in rows if r[3].year == y])
    try:
        yield Side(f"{base}.outpatient_charge", f"{base}_y{{year}}.outpatient_charge", today, pg_admin.execute)
    finally:
        for schema in schemas:
            pg_admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def my_side(my_admin: pymysql.connections.Connection) -> Iterator[Side]:
    base = f"xj_test_{secrets.token_hex(4)}"
    cur = my_admin.cursor()
    cur.execute("SELECT CURRENT_DATE")
    today = cur.fetchone()[0]
    rows = charges(today)
    years = sorted({r[3].year for r in rows})
    ddl = ("(charge_id bigint PRIMARY KEY, patient_ref varchar(20), item_code varchar(20), charge_time datetime NOT NULL, "
           "amount decimal(12,2), insurance_amount decimal(12,2), KEY (charge_time))")
    databases = [base, *(f"{base}_y{y}" for y in years)]
    for db in databases:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.outpatient_charge {ddl}")
    cur.executemany(f"INSERT INTO {base}.outpatient_charge ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)", rows)
    for y in years:
        cur.executemany(f"INSERT INTO {base}_y{y}.outpatient_charge ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                        [r for r in rows if r[3].year == y])

    def execute(sql: str, params: Any = None) -> None:
        cur.execute(sql, params)

    try:
        yield Side(f"{base}.outpatient_charge", f"{base}_y{{year}}.outpatient_charge", today, execute)
    finally:
        for db in databases:
            cur.execute(f"DROP DATABASE {db}")
        cur.close()


def schema_of(name: str) -> str:
    return name.split(".")[0]


def break_the_year_db(side: Side) -> dict[str, str]:
    """Rows deleted from one day, a day never moved, an amount changed on another: the days, by problem."""
    short, missing, changed = (day_of(side.today, b) for b in (5, 3, 2))
    side.execute(f"DELETE FROM {side.year_table(short)} WHERE charge_time >= %s AND charge_time < %s AND MOD(charge_id, 10) = 0",
                 (short, short + dt.timedelta(days=1)))
    side.execute(f"DELETE FROM {side.year_table(missing)} WHERE charge_time >= %s AND charge_time < %s",
                 (missing, missing + dt.timedelta(days=1)))
    side.execute(f"UPDATE {side.year_table(changed)} SET amount = amount + 0.01 WHERE charge_id = "
                 f"(SELECT m FROM (SELECT MIN(charge_id) AS m FROM {side.year_table(changed)} WHERE charge_time >= %s) x)",
                 (changed,))
    return {"short": short.isoformat(), "missing_day": missing.isoformat(), "amount_mismatch": changed.isoformat()}


def assert_found(result: Result, broken: dict[str, str]) -> None:
    assert (result.status, result.outcome, result.value) == (Status.CRITICAL, Outcome.OK, 3.0), result.summary
    by_problem = {f.attributes["problem"]: f for f in result.findings}
    assert {p: f.attributes["day"] for p, f in by_problem.items()} == broken
    assert "4 rows missing in the destination (running DB 40, destination 36)" in by_problem["short"].recommendation
    assert by_problem["missing_day"].evidence["source_rows"] == 40
    assert by_problem["amount_mismatch"].attributes["difference_amount"] == "0.01"
    assert {f.category for f in result.findings} == {"migration"}
    assert result.metrics["rows_missing"] == 44


def test_postgres_clean_then_broken(pg_side: Side, driver: str, ctx: RunContext) -> None:
    target = pg_target(driver, allow={"reviewed_by": "test", "relations": [f"{schema_of(pg_side.running)}*.*"]})
    s = spec(target.name, target.name, pg_side.running, pg_side.year_template)
    clean = check(ctx, [target], s)
    assert (clean.status, clean.value, clean.findings) == (Status.OK, 0.0, []), clean.summary
    assert clean.summary.endswith(f"{DAYS} days {day_of(pg_side.today, DAYS)}..{day_of(pg_side.today, 1)} agree "
                                  f"({DAYS * PER_DAY} rows)")
    broken = break_the_year_db(pg_side)
    assert_found(check(ctx, [target], s), broken)


def test_mariadb_clean_then_broken(my_side: Side, driver: str, ctx: RunContext) -> None:
    target = my_target(driver, allow={"reviewed_by": "test", "relations": [f"{schema_of(my_side.running)}*.*"]})
    s = spec(target.name, target.name, my_side.running, my_side.year_template)
    assert check(ctx, [target], s).status == Status.OK
    broken = break_the_year_db(my_side)
    assert_found(check(ctx, [target], s), broken)


def test_cross_engine_postgres_running_db_and_mariadb_year_db(pg_side: Side, my_side: Side, ctx: RunContext) -> None:
    """The PostgreSQL running DB against the MariaDB year tables, which the fixtures filled with the same rows."""
    pg = pg_target("native", name="his_running", allow={"reviewed_by": "test",
                                                         "relations": [f"{schema_of(pg_side.running)}*.*"]})
    my = my_target("native", name="his_year", allow={"reviewed_by": "test",
                                                     "relations": [f"{schema_of(my_side.running)}*.*"]})
    s = spec("his_running", "his_year", pg_side.running, my_side.year_template)
    clean = check(ctx, [pg, my], s)
    assert (clean.status, clean.value) == (Status.OK, 0.0), clean.summary
    broken = break_the_year_db(my_side)
    assert_found(check(ctx, [pg, my], s), broken)


def test_rows_that_should_have_left_the_running_db(pg_side: Side, ctx: RunContext) -> None:
    target = pg_target("native", allow={"reviewed_by": "test", "relations": [f"{schema_of(pg_side.running)}*.*"]})
    s = spec(target.name, target.name, pg_side.running, pg_side.year_template, keep_days=4)
    result = check(ctx, [target], s)
    [kept] = [f for f in result.findings if f.attributes["problem"] == "still_in_source"]
    assert kept.evidence["source_rows"] == 2 * PER_DAY
    assert kept.attributes["oldest_day"] == day_of(pg_side.today, 6).isoformat()
    old = day_of(pg_side.today, 5)
    pg_side.execute(f"DELETE FROM {pg_side.running} WHERE charge_time < %s", (pg_side.today - dt.timedelta(days=4),))
    after = check(ctx, [target], s)
    assert (after.status, after.findings) == (Status.OK, []), f"moved then deleted before {old}: {after.summary}"


def test_a_missing_year_table_is_unknown_not_found(pg_side: Side, ctx: RunContext) -> None:
    target = pg_target("native", allow={"reviewed_by": "test", "relations": [f"{schema_of(pg_side.running)}*.*"]})
    s = spec(target.name, target.name, pg_side.running, f"{schema_of(pg_side.running)}.no_such_{{year}}")
    result = check(ctx, [target], s)
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND), result.summary
    assert "destination" in result.summary
