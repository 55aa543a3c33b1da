"""What each MariaDB pack statement costs the server in views opened and temporary tables, and whether a server
survives the patrol while its tmpdir is swept (docs/databases.md, "MariaDB information_schema and views").

Starts a throwaway mariadbd (private tmpdir) with an application schema: AUTO_INCREMENT tables and views over
information_schema, next to the sys schema's. For every statement of the mysql pack that MariaDB runs, and for
the `mysql` variant of the checks that have a `mariadb` one (what MariaDB ran before), it prints the session's
Opened_views, Created_tmp_tables and Created_tmp_disk_tables and the median wall time of --runs runs.

`--crash CHECK` (repeatable) then runs that check's statement from --sessions connections on a fresh server for
--duration seconds while a thread deletes every `#sql*` file in the server's tmpdir, as each starting mariadbd
does in its own tmpdir, every --sweep seconds. MariaDB 10.11.19 crashes (signal 11 in ha_maria::drop_table)
when it cannot open a temporary table it just created; the figures are the seconds until the server stopped
answering and the statements completed until then. `--crash CHECK:mysql` runs the check's `mysql` variant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pymysql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checks.pack import PackRef, load_checks  # noqa: E402
from checks.sql.query import QueryMap  # noqa: E402
from checks.sql.version import parse_version  # noqa: E402
from tests.integration.sql.throwaway import mariadb_instance  # noqa: E402

SEED = [
    "CREATE DATABASE ward",
    "CREATE TABLE ward.orders (id INT AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = 2000000000",
    "CREATE TABLE ward.ticket (id TINYINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, note TEXT) AUTO_INCREMENT = 250",
    "CREATE VIEW ward.catalog AS SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS",
    "CREATE VIEW ward.tables AS SELECT TABLE_NAME FROM information_schema.TABLES",
]
COUNTERS = ("Opened_views", "Created_tmp_tables", "Created_tmp_disk_tables")


def connect(port: int) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True, connect_timeout=3)


def statements(version_text: str) -> dict[str, str]:
    """'check id' (MariaDB's variant) and 'check id:mysql' (the mysql variant where a mariadb one exists) → SQL."""
    version = parse_version(version_text)
    out: dict[str, str] = {}
    for spec in load_checks([PackRef("builtin:mysql", "db")]).specs:
        queries: list[tuple[str, QueryMap]] = spec.sql_queries() if hasattr(spec, "sql_queries") else []
        for name, query in queries:
            label = spec.id if name == "query" else f"{spec.id} ({name})"
            chosen = query.select("mysql", "mariadb", version)
            if chosen is None or chosen[0].sql is None:
                continue
            variant, key = chosen
            out[label] = variant.statement(key).sql
            if key == "mariadb" and query.mysql and len(query.mysql) == 1 and query.mysql[0].sql is not None:
                out[f"{label}:mysql"] = query.mysql[0].statement("mysql").sql
    return out


def seed(port: int) -> str:
    conn = connect(port)
    with conn.cursor() as cur:
        for sql in SEED:
            cur.execute(sql)
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    conn.close()
    assert row is not None
    return str(row[0])


def cost(port: int, sql: str, runs: int) -> dict[str, Any]:
    conn = connect(port)
    times = []
    with conn.cursor() as cur:
        for i in range(runs):
            cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Opened_views', 'Created_tmp_tables', "
                        "'Created_tmp_disk_tables')")
            before = {str(k): int(v) for k, v in cur.fetchall()}
            start = time.perf_counter()
            cur.execute(sql)
            cur.fetchall()
            times.append((time.perf_counter() - start) * 1000)
            cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Opened_views', 'Created_tmp_tables', "
                        "'Created_tmp_disk_tables')")
            after = {str(k): int(v) for k, v in cur.fetchall()}
            if i == 0:
                figures: dict[str, Any] = {k: after[k] - before[k] for k in COUNTERS}
    conn.close()
    figures["median_ms"] = round(statistics.median(times), 2)
    return figures


def sweep(tmpdir: str, stop: threading.Event, every: float) -> None:
    while not stop.is_set():
        for name in os.listdir(tmpdir):
            if name.startswith("#sql"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(tmpdir, name))
        stop.wait(every)


def patrol(port: int, sql: str, stop: threading.Event, done: list[int], lost: threading.Event) -> None:
    while not stop.is_set():
        try:
            conn = connect(port)
        except pymysql.Error:
            lost.set()
            return
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    try:
                        cur.execute(sql)
                        cur.fetchall()
                        done.append(1)
                    except pymysql.err.OperationalError as exc:
                        if exc.args and exc.args[0] in (2006, 2013):
                            break
                    except pymysql.Error:
                        pass
        finally:
            conn.close()


def crash_trial(label: str, sql: str, sessions: int, duration: float, every: float) -> dict[str, Any]:
    with mariadb_instance() as port:
        seed(port)
        conn = connect(port)
        with conn.cursor() as cur:
            cur.execute("SELECT @@tmpdir")
            row = cur.fetchone()
        conn.close()
        assert row is not None
        stop, lost = threading.Event(), threading.Event()
        done: list[int] = []
        threads = [threading.Thread(target=patrol, args=(port, sql, stop, done, lost)) for _ in range(sessions)]
        sweeper = threading.Thread(target=sweep, args=(str(row[0]), stop, every))
        start = time.monotonic()
        for t in [*threads, sweeper]:
            t.start()
        alive_for = None
        while time.monotonic() - start < duration:
            time.sleep(0.2)
            try:
                connect(port).close()
            except pymysql.Error:
                alive_for = time.monotonic() - start
                break
        stop.set()
        for t in [*threads, sweeper]:
            t.join(timeout=30)
    return {"check": label, "crashed": alive_for is not None,
            "seconds": round(alive_for if alive_for is not None else duration, 1), "statements": len(done)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--crash", action="append", default=[], metavar="CHECK[:mysql]")
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--sweep", type=float, default=0.001)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with mariadb_instance() as port:
        version = seed(port)
        catalog = statements(version)
        costs = {}
        for label, sql in list(catalog.items()):
            try:
                costs[label] = cost(port, sql, args.runs)
            except pymysql.Error:
                del catalog[label]  # a mysql variant for a server MariaDB is not (performance_schema tables...)
    trials = []
    for label in args.crash:
        if label not in catalog:
            parser.error(f"--crash {label}: not a mysql pack statement on MariaDB; one of {', '.join(catalog)}")
        trials.append(crash_trial(label, catalog[label], args.sessions, args.duration, args.sweep))
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"server": version, "load": load, "costs": costs, "crash": trials}))
        return 0
    print(f"MariaDB {version}, load average {load:.2f}, {args.runs} runs each")
    print(f"{'statement':48s} {'views':>6s} {'tmp':>5s} {'disk':>5s} {'ms':>8s}")
    for label, figures in costs.items():
        print(f"{label:48s} {figures['Opened_views']:6d} {figures['Created_tmp_tables']:5d} "
              f"{figures['Created_tmp_disk_tables']:5d} {figures['median_ms']:8.2f}")
    for trial in trials:
        outcome = f"server crashed after {trial['seconds']} s" if trial["crashed"] else f"server up after {trial['seconds']} s"
        print(f"tmpdir swept every {args.sweep} s, {args.sessions} sessions running {trial['check']}: {outcome}, "
              f"{trial['statements']} statements completed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
