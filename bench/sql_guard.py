"""What the read-only guard and the per-check transaction cost on the agent.

Prints, for every statement of the four built-in database packs: the first verification (parse, verify,
render, re-parse, allow-list) and a repeat (the cache lookup every later run pays); and, against a live
PostgreSQL/MariaDB when reachable, one check through the engine (its own read-only transaction, ROLLBACK and
verification) next to the same SELECT sent bare on a raw connection, in one run, as medians.

    .venv/bin/python bench/sql_guard.py [--repeat 5] [--live-runs 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from checks.sql import allow, guard
from checks.sql.allow import prepare
from checks.sql.query import QueryMap


def pack_statements() -> list[tuple[str, str]]:
    import yaml

    out = []
    for pack in ("postgres", "mysql", "oracle", "mssql"):
        data = yaml.safe_load((Path(__file__).resolve().parents[1] / "checks" / "packs" / f"{pack}.yaml").read_text())
        for check in data["checks"]:
            for field in ("query", "requires"):
                if check.get(field):
                    for key, _, variant in QueryMap.model_validate(check[field]).variants():
                        if variant.sql:
                            out.append((key, variant.sql))
    return out


def guard_costs(statements: list[tuple[str, str]], repeat: int) -> dict[str, float]:
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(repeat):
        guard._verify_cached.cache_clear()
        allow._prepare_cached.cache_clear()
        for key, sql in statements:
            t0 = time.perf_counter()
            prepare(sql, key)
            cold.append(time.perf_counter() - t0)
        for key, sql in statements:
            t0 = time.perf_counter()
            for _ in range(100):
                prepare(sql, key)
            warm.append((time.perf_counter() - t0) / 100)
    return {
        "statements": len(statements),
        "first_verification_ms_median": statistics.median(cold) * 1e3,
        "first_verification_ms_p90": sorted(cold)[int(0.9 * len(cold))] * 1e3,
        "repeat_us_median": statistics.median(warm) * 1e6,
    }


def live_costs(runs: int) -> dict[str, Any]:
    from checks.context import RunContext
    from checks.sql.kinds import SqlMetric
    from checks.sql.session import close_sessions
    from checks.sql.target import Target

    out: dict[str, Any] = {}
    targets = {
        "postgres": ({"dialect": "postgres", "host": "127.0.0.1", "port": int(os.environ.get("XUNJIAN_TEST_PG_PORT", "5432")),
                      "database": "test", "user": "postgres"}, "SELECT count(*) AS value FROM pg_stat_activity"),
        "mariadb": ({"dialect": "mysql", "host": "127.0.0.1", "port": int(os.environ.get("XUNJIAN_TEST_MYSQL_PORT", "3306")),
                     "database": "test", "user": "root"}, "SELECT COUNT(*) AS value FROM information_schema.PROCESSLIST"),
    }
    for name, (body, sql) in targets.items():
        target = Target.model_validate({"name": name, **body})
        key = "postgres" if name == "postgres" else "mysql"
        spec = SqlMetric.model_validate({"id": "bench", "target": name, "query": {key: sql}})
        ctx = RunContext(targets={name: target})
        try:
            if spec.probe(ctx)[0].outcome != "ok":
                continue
        except Exception:
            continue
        session = ctx.resources[f"sql:{name}"]
        raw = session._conn.raw
        rendered = prepare(sql, key).sql
        engine: list[float] = []
        bare: list[float] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            spec.probe(ctx)
            engine.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cur = raw.cursor()
            cur.execute(rendered)
            cur.fetchall()
            cur.close()
            bare.append(time.perf_counter() - t0)
        close_sessions(ctx.resources)
        e, b = statistics.median(engine) * 1e3, statistics.median(bare) * 1e3
        out[name] = {"check_ms_median": e, "bare_select_ms_median": b, "ratio": e / b}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--live-runs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {"load_average_1m": os.getloadavg()[0], "guard": guard_costs(pack_statements(), args.repeat),
               "live": live_costs(args.live_runs)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    g = figures["guard"]
    print(f"load average (1 min): {figures['load_average_1m']:.2f}")
    print(f"guard, {g['statements']} pack statements: first verification median {g['first_verification_ms_median']:.2f} ms "
          f"(p90 {g['first_verification_ms_p90']:.2f} ms); repeat (cache) median {g['repeat_us_median']:.2f} µs")
    for name, f in figures["live"].items():
        print(f"{name}: one check through the engine {f['check_ms_median']:.3f} ms, bare SELECT "
              f"{f['bare_select_ms_median']:.3f} ms, ratio {f['ratio']:.2f}")


if __name__ == "__main__":
    main()
