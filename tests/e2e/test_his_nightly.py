"""The his-nightly pack end to end: a real agent runs builtin:his-nightly (bound to the HIS running DB on
PostgreSQL, its year DB on MariaDB, statement files on disk) and streams to a real collector; the findings arrive
with their categories; an engineer lists the 单边账 and settles one with the CLI. A settled payment discrepancy is
never "fixed" by not being seen again, while a migration finding is, once the year DB is repaired.
`xunjian check run builtin:his-nightly --config` prints the same checks as JSON lines."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require
from tests.e2e.harness import Collector, Fleet, wait_for
from tests.unit.reconcile.bills import Txn, write_alipay, write_wechat

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}


@dataclass
class Site:
    schema: str
    year_db: str
    today: dt.date
    now: dt.datetime
    bills: Path
    pg: Any
    my: Any


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    psycopg = pytest.importorskip("psycopg")
    pymysql = pytest.importorskip("pymysql")
    try:
        pg = psycopg.connect(**PG, autocommit=True, connect_timeout=5)
        my = pymysql.connect(**MY, autocommit=True, connect_timeout=5)
    except Exception as exc:
        require(False, f"PostgreSQL on 5432 and MariaDB on 3306 ({exc})")
    schema = f"xj_e2e_{secrets.token_hex(4)}"
    today, now = pg.execute("SELECT CURRENT_DATE, LOCALTIMESTAMP").fetchone()
    yesterday = today - dt.timedelta(days=1)
    year_db = f"{schema}_y{yesterday.year}"
    pg.execute(f"CREATE SCHEMA {schema}")
    pg.execute(f"CREATE TABLE {schema}.job_log (job_name text, start_time timestamp, end_time timestamp, status text)")
    pg.execute(f"CREATE TABLE {schema}.outpatient_charge (charge_id bigint, charge_time timestamp, amount numeric(12,2), "
               "insurance_amount numeric(12,2), patient_ref text)")
    pg.execute(f"CREATE TABLE {schema}.pay_record (out_trade_no text, channel text, pay_type text, amount numeric(12,2), "
               "pay_time timestamp, trade_no text, refund_no text, patient_ref text)")
    start = now.replace(second=0, microsecond=0) - dt.timedelta(hours=3)
    pg.execute(f"INSERT INTO {schema}.job_log VALUES ('HIS_YEAR_DB_MIGRATION', %s, %s, 'SUCCESS')",
               (start + dt.timedelta(minutes=5), start + dt.timedelta(minutes=40)))
    charges = [(i, dt.datetime.combine(yesterday, dt.time(8)) + dt.timedelta(minutes=i), decimal.Decimal(i) + 1,
                decimal.Decimal(i) / 2, f"P{i}") for i in range(100)]
    with pg.cursor() as cur:
        cur.executemany(f"INSERT INTO {schema}.outpatient_charge VALUES (%s, %s, %s, %s, %s)", charges)
    c = my.cursor()
    c.execute(f"CREATE DATABASE {year_db}")
    c.execute(f"CREATE TABLE {year_db}.outpatient_charge (charge_id bigint, charge_time datetime, amount decimal(12,2), "
              "insurance_amount decimal(12,2), patient_ref varchar(20))")
    c.executemany(f"INSERT INTO {year_db}.outpatient_charge VALUES (%s, %s, %s, %s, %s)", charges[:90])  # 10 rows lost
    bills = tmp_path / "bills"
    bills.mkdir()
    paid = [Txn(f"MZ{i:05d}", "payment", 1000 + i, dt.datetime.combine(yesterday, dt.time(9)) + dt.timedelta(minutes=i),
                f"4200{i:08d}") for i in range(50)]
    write_wechat(bills / f"wx_{yesterday:%Y%m%d}.csv", [*paid, Txn("MZ_CHANNEL_ONLY", "payment", 3300,
                                                                    dt.datetime.combine(yesterday, dt.time(15)), "4200CO")])
    write_alipay(bills / f"2088_{yesterday:%Y%m%d}_业务明细.csv", paid[:10], yesterday)
    with pg.cursor() as cur:
        cur.executemany(f"INSERT INTO {schema}.pay_record VALUES (%s, %s, 'PAY', %s, %s, %s, NULL, 'P1')",
                        [(t.order_no, ch, decimal.Decimal(t.cents) / 100, t.at, t.txn_id)
                         for ch, txns in (("WECHAT", paid), ("ALIPAY", paid[:10])) for t in txns])
    try:
        yield Site(schema, year_db, today, now, bills, pg, my)
    finally:
        pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        c.execute(f"DROP DATABASE IF EXISTS {year_db}")
        pg.close()
        my.close()


def agent_extra(s: Site, interval: str = "2s") -> str:
    start = s.now.replace(second=0, microsecond=0) - dt.timedelta(hours=3)
    pay = {"query": {"postgres": f"SELECT out_trade_no, amount, pay_time, pay_type, trade_no, refund_no FROM "
                                f"{s.schema}.pay_record WHERE channel = 'WECHAT'"}}
    overrides = {
        "his.nightly.migration_job": {
            "interval": interval, "log": {"table": f"{s.schema}.job_log", "job_column": "job_name",
                                          "start_column": "start_time", "end_column": "end_time",
                                          "status_column": "status"},
            "window": {"start": f"{start:%H:%M}", "end": f"{start + dt.timedelta(hours=1):%H:%M}",
                       "finish_by": f"{start + dt.timedelta(hours=2):%H:%M}"}},
        "his.nightly.migration_reconcile": {
            "interval": interval, "days": 3,
            "tables": [{"source": f"{s.schema}.outpatient_charge", "dest": f"{s.schema}_y{{year}}.outpatient_charge",
                        "date_column": "charge_time", "amount_columns": ["amount", "insurance_amount"],
                        "key_column": "charge_id"}]},
        "his.nightly.pay.wechat": {
            "interval": interval, "statement": {"format": "wechat", "path": str(s.bills / "wx_{date:%Y%m%d}.csv")},
            "his": {**pay, "order_column": "out_trade_no", "amount_column": "amount", "time_column": "pay_time",
                    "kind_column": "pay_type", "txn_column": "trade_no", "refund_no_column": "refund_no"}},
        "his.nightly.pay.alipay": {"disabled": True},
        "his.monthly.insurance_totals": {"disabled": True},
    }
    targets = {
        "his_db": {"dialect": "postgres", "host": "127.0.0.1", "port": 5432, "database": "test", "user": "postgres",
                   "allow": {"reviewed_by": "e2e", "relations": [f"{s.schema}.*"]}},
        "his_year": {"dialect": "mysql", "host": "127.0.0.1", "port": 3306, "database": "test", "user": "root",
                     "allow": {"reviewed_by": "e2e", "relations": [f"{s.year_db}.*"]}},
    }
    return f"targets: {json.dumps(targets)}\noverrides: {json.dumps(overrides)}\n"


def xunjian(c: Collector | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, **({"XUNJIAN_URL": f"http://{c.http}"} if c is not None else {}))
    return subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


def findings(c: Collector, **query: str) -> list[dict[str, Any]]:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return list(c.get(f"/api/v1/findings?{q}"))


def test_his_nightly_from_agent_to_a_settled_discrepancy(fleet: Fleet, site: Site, tmp_path: Path) -> None:
    c = fleet.collector(extra="findings: {fixed_after: 3s}\n").start()
    c.wait_healthy()
    agent = fleet.agent("his-db-01", [c.grpc], "pack: none\nchecks: []\n",
                        packs="[{pack: 'builtin:his-nightly', target: his_db}]", extra=agent_extra(site)).start()

    pay = wait_for(lambda: findings(c, category="payment") or None, timeout=60, what="the 单边账 at the collector")
    [single] = pay
    assert (single["object"], single["state"], single["check_id"]) == ("MZ_CHANNEL_ONLY", "new", "his.nightly.pay.wechat")
    assert single["attributes"]["problem"] == "channel_only" and single["attributes"]["channel_txn_id"] == "4200CO"
    assert "patient_ref" not in json.dumps(single) and "P1" not in json.dumps([single["attributes"], single["evidence"]])
    [mig] = wait_for(lambda: findings(c, category="migration") or None, timeout=60, what="the migration finding")
    assert mig["attributes"]["problem"] == "short" and mig["evidence"]["row_difference"] == -10
    checks = {x["check_id"]: x for x in c.get("/api/v1/checks")}
    assert checks["his.nightly.migration_job"]["status"] == "OK" and checks["his.nightly.migration_job"]["outcome"] == "ok"

    listed = xunjian(c, "findings", "list", "--category", "payment")
    assert listed.returncode == 0 and "MZ_CHANNEL_ONLY" in listed.stdout and "payment" in listed.stdout, listed.stderr
    assert "orders" not in xunjian(c, "findings", "list", "--category", "dba").stdout
    accepted = xunjian(c, "findings", "accept", str(single["id"]), "--reviewer", "cashier.zhao", "--note",
                       "booked in HIS, voucher PZ-0113")
    assert accepted.returncode == 0, accepted.stderr
    shown = xunjian(c, "findings", "show", str(single["id"]))
    assert "accepted" in shown.stdout and "voucher PZ-0113" in shown.stdout and "channel_only" in shown.stdout

    # The HIS now has the payment and the year DB the lost rows: neither discrepancy is seen again.
    site.pg.execute(f"INSERT INTO {site.schema}.pay_record VALUES ('MZ_CHANNEL_ONLY', 'WECHAT', 'PAY', 33.00, "
                    f"%s, '4200CO', NULL, 'P2')", (dt.datetime.combine(site.today - dt.timedelta(days=1), dt.time(15)),))
    rows = site.pg.execute(f"SELECT * FROM {site.schema}.outpatient_charge ORDER BY charge_id OFFSET 90").fetchall()
    site.my.cursor().executemany(f"INSERT INTO {site.year_db}.outpatient_charge VALUES (%s, %s, %s, %s, %s)", rows)
    wait_for(lambda: c.get(f"/api/v1/findings/{mig['id']}")["state"] == "fixed" or None, timeout=60,
             what="the repaired migration day marked fixed")
    settled = c.get(f"/api/v1/findings/{single['id']}")
    assert settled["state"] == "accepted", "a settled 单边账 stays settled, never auto-fixed"
    assert settled["review_note"] == "booked in HIS, voucher PZ-0113"
    assert 'category="payment",state="accepted"} 1.0' in c.text("/metrics")
    assert agent.running()

    cfg = tmp_path / "agent.yaml"
    cfg.write_text("collector: {addresses: ['127.0.0.1:9']}\npacks: [{pack: 'builtin:his-nightly', target: his_db}]\n"
                   + agent_extra(site))
    out = xunjian(None, "check", "run", "builtin:his-nightly", "--config", str(cfg), "--target", "his_db", "--json")
    assert out.returncode == 0, out.stderr
    lines = {line["check_id"]: line for line in map(json.loads, out.stdout.splitlines())}
    assert set(lines) == {"his.nightly.migration_job", "his.nightly.migration_reconcile", "his.nightly.pay.wechat"}
    assert all(line["status"] == "OK" for line in lines.values()), lines
