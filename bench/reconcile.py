"""What reconciliation costs the agent: time and peak RSS for a day of 100,000 payments, and for a 1,000,000-row
migration day, against the PostgreSQL on 127.0.0.1:5432 (database test).

payments: 100,000 HIS payment rows (every tenth refunded) in a scratch schema and the same day as a WeChat Pay
bill file in its real layout; reconcile.payments is run in a fresh process per run, which reports its own
elapsed time and peak RSS (ru_maxrss) next to its RSS before the run (Python, drivers and the kind imported),
so the difference is what the reconciliation itself holds. One discrepancy of each kind is planted so the
findings path is timed too.

migration: 1,000,000 outpatient charges on one day in a running table and a copy in a year table; one
migration.reconcile of that day per fresh process, same figures. The database computes the aggregates, so the
agent's memory does not depend on the number of rows.

Each is also run at a tenth of the size in the same invocation, so what grows with the rows shows side by side.

    .venv/bin/python bench/reconcile.py [payments|migration|all] [--rows N] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(kind: str, spec_json: str, target_json: str) -> None:
    """Run one check in this (fresh) process and print its figures as JSON."""
    from checks.context import RunContext
    from checks.kinds import spec_class
    from checks.sql.session import close_sessions
    from checks.sql.target import Target

    target = Target.model_validate(json.loads(target_json))
    spec = spec_class(kind).model_validate(json.loads(spec_json))
    ctx = RunContext(targets={target.name: target})
    before = current_rss_mb()
    t0 = time.perf_counter()
    [result] = spec.probe(ctx)
    elapsed = time.perf_counter() - t0
    close_sessions(ctx.resources)
    print(json.dumps({"elapsed_s": elapsed, "rss_before_mb": before, "peak_rss_mb": rss_mb(),
                      "status": result.status.name, "value": result.value, "findings": len(result.findings),
                      "summary": result.summary[:300]}))


def run_child(kind: str, spec: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(spec, default=str), json.dumps(target)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summarize(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(k: str) -> float:
        return round(statistics.median(r[k] for r in runs), 3)

    return {"bench": name, "runs": len(runs), "elapsed_s_median": med("elapsed_s"),
            "elapsed_s_range": [round(min(r["elapsed_s"] for r in runs), 3), round(max(r["elapsed_s"] for r in runs), 3)],
            "rss_before_mb_median": med("rss_before_mb"), "peak_rss_mb_median": med("peak_rss_mb"),
            "held_by_the_check_mb": round(med("peak_rss_mb") - med("rss_before_mb"), 1),
            "result": {k: runs[-1][k] for k in ("status", "value", "findings", "summary")},
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def bench_payments(rows: int, runs: int) -> dict[str, Any]:
    import psycopg

    from tests.unit.reconcile.bills import Txn, write_wechat

    schema = f"xj_bench_{secrets.token_hex(4)}"
    conn = psycopg.connect(**PG, autocommit=True)
    work = Path(tempfile.mkdtemp(prefix="xj-bench-pay-"))
    try:
        today = conn.execute("SELECT CURRENT_DATE").fetchone()[0]  # type: ignore[index]
        day = today - dt.timedelta(days=1)
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.pay_record (out_trade_no varchar(40), channel varchar(10), pay_type varchar(10), "
                     "amount numeric(12,2), pay_time timestamp, trade_no varchar(40), patient_id varchar(20))")
        t0 = time.perf_counter()
        conn.execute(
            f"INSERT INTO {schema}.pay_record SELECT 'MZ' || g, 'WECHAT', 'PAY', (500 + g %% 9000) / 100.0, "
            f"%s::date + interval '6 hours' + g * interval '0.5 seconds', '4200' || g, 'P' || (g %% 50000) "
            f"FROM generate_series(1, %s) g", (day, rows))
        conn.execute(
            f"INSERT INTO {schema}.pay_record SELECT 'MZ' || g, 'WECHAT', 'REFUND', (500 + g %% 9000) / 100.0, "
            f"%s::date + interval '20 hours' + g * interval '0.05 seconds', '4200' || g, 'P' || (g %% 50000) "
            f"FROM generate_series(1, %s, 10) g", (day, rows))
        conn.execute(f"CREATE INDEX ON {schema}.pay_record (pay_time)")
        conn.execute(f"ANALYZE {schema}.pay_record")

        def txns() -> Any:
            base = dt.datetime.combine(day, dt.time(6))
            for g in range(1, rows + 1):
                cents = 500 + g % 9000
                order = "MZ" + str(g) if g != 7 else "MZ_CHANNEL_ONLY"
                yield Txn(order, "payment", cents + (1 if g == 11 else 0), base + dt.timedelta(seconds=g / 2), "4200" + str(g))
            for g in range(1, rows + 1, 10):
                yield Txn("MZ" + str(g), "refund", 500 + g % 9000, base + dt.timedelta(hours=14, seconds=g / 20),
                          "4200" + str(g), f"TF{g}")

        written = write_wechat(work / f"{day:%Y%m%d}.csv", txns())
        setup = time.perf_counter() - t0
        spec = {"id": "bench.pay", "kind": "reconcile.payments", "target": "pg", "timeout": "10m",
                "statement": {"format": "wechat", "path": str(work / "{date:%Y%m%d}.csv")},
                "his": {"query": {"postgres": f"SELECT out_trade_no, amount, pay_time, pay_type, trade_no "
                                              f"FROM {schema}.pay_record WHERE channel = 'WECHAT'"},
                        "order_column": "out_trade_no", "amount_column": "amount", "time_column": "pay_time",
                        "kind_column": "pay_type", "txn_column": "trade_no"}}
        target = {"name": "pg", "dialect": "postgres", "host": PG["host"], "port": PG["port"], "user": PG["user"],
                  "database": PG["dbname"], "statement_timeout": "10m",
                  "allow": {"reviewed_by": "bench", "relations": [f"{schema}.pay_record"]}}
        out = summarize("reconcile.payments", [run_child("reconcile.payments", spec, target) for _ in range(runs)])
        out.update(transactions_per_side=written, setup_s=round(setup, 1),
                   bill_file_mb=round((work / f"{day:%Y%m%d}.csv").stat().st_size / 2**20, 1))
        return out
    finally:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


def bench_migration(rows: int, runs: int) -> dict[str, Any]:
    import psycopg

    schema = f"xj_bench_{secrets.token_hex(4)}"
    conn = psycopg.connect(**PG, autocommit=True)
    try:
        today = conn.execute("SELECT CURRENT_DATE").fetchone()[0]  # type: ignore[index]
        day = today - dt.timedelta(days=1)
        t0 = time.perf_counter()
        conn.execute(f"CREATE SCHEMA {schema}")
        for table in ("running_charge", "year_charge"):
            conn.execute(f"CREATE TABLE {schema}.{table} (charge_id bigint, patient_ref text, charge_time timestamp, "
                         "amount numeric(12,2), insurance_amount numeric(12,2))")
            conn.execute(f"INSERT INTO {schema}.{table} SELECT g, 'P' || (g %% 70000), %s::date + g * interval '80 ms', "
                         "(g %% 10000) / 100.0, (g %% 7000) / 100.0 FROM generate_series(1, %s) g", (day, rows))
            conn.execute(f"CREATE INDEX ON {schema}.{table} (charge_time)")
            conn.execute(f"ANALYZE {schema}.{table}")
        setup = time.perf_counter() - t0
        spec = {"id": "bench.migration", "kind": "migration.reconcile", "target": "pg", "timeout": "10m", "days": 1,
                "tables": [{"source": f"{schema}.running_charge", "dest": f"{schema}.year_charge",
                            "date_column": "charge_time", "amount_columns": ["amount", "insurance_amount"],
                            "key_column": "charge_id"}]}
        target = {"name": "pg", "dialect": "postgres", "host": PG["host"], "port": PG["port"], "user": PG["user"],
                  "database": PG["dbname"], "statement_timeout": "10m",
                  "allow": {"reviewed_by": "bench", "relations": [f"{schema}.*"]}}
        out = summarize("migration.reconcile", [run_child("migration.reconcile", spec, target) for _ in range(runs)])
        out.update(rows_per_side=rows, setup_s=round(setup, 1))
        return out
    finally:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", default="all", choices=["payments", "migration", "all"])
    p.add_argument("--rows", type=int, help="payments per side (100,000) / migration rows per side (1,000,000)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    results = []
    # Each at a tenth of the size too: side by side, in one run, the memory that grows with rows shows.
    if args.what in ("payments", "all"):
        rows = args.rows or 100_000
        results += [bench_payments(rows // 10, args.runs), bench_payments(rows, args.runs)]
    if args.what in ("migration", "all"):
        rows = args.rows or 1_000_000
        results += [bench_migration(rows // 10, args.runs), bench_migration(rows, args.runs)]
    for r in results:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            size = r.get("transactions_per_side") or r.get("rows_per_side")
            print(f"{r['bench']} ({size:,} per side): median {r['elapsed_s_median']} s over {r['runs']} runs (range "
                  f"{r['elapsed_s_range'][0]}-{r['elapsed_s_range'][1]}), peak RSS {r['peak_rss_mb_median']} MB "
                  f"({r['rss_before_mb_median']} MB before the check: {r['held_by_the_check_mb']} MB held by it), "
                  f"load {r['load_average']}")
            print(f"  {r['result']['summary']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
