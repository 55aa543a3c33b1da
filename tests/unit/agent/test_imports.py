"""An agent imports what its checks need and no more: the kinds it does not run, the SQL guard (sqlglot) and the
database drivers stay unloaded (docs/benchmarks.md: each of them is megabytes of RSS for the agent's whole life)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from checks.kinds import KIND_MODULES
from tests.conftest import ROOT

HOST_PACK = """\
pack: host
checks:
  - {id: m, kind: host.memory, warn: "> 90"}
  - {id: s, kind: host.swap, warn: "> 50"}
  - {id: l, kind: host.load, warn: "> 4"}
  - {id: d, kind: host.disk, mounts: ["/"], warn: "> 85"}
"""

PROGRAM = """\
import json, sys
from pathlib import Path
from agent.config import load_agent_config
from agent.daemon import AgentDaemon
daemon = AgentDaemon(load_agent_config(Path(sys.argv[1])))
daemon.start()
daemon.stop()
print(json.dumps(sorted(sys.modules)))
"""

NEVER_FOR_HOST_CHECKS = ("sqlglot", "checks.sql.guard", "checks.sql.query", "checks.command", "checks.interface",
                         "checks.jobs", "checks.reconcile", "checks.logwatch", "checks.ntp", "psycopg", "pymysql",
                         "pyodbc", "oracledb", "aiohttp", "prometheus_client", "collector")


def test_an_agent_with_host_checks_only_loads_no_other_kind_no_sql_guard_and_no_driver(tmp_path: Path) -> None:
    (tmp_path / "host.yaml").write_text(HOST_PACK, encoding="utf-8")
    config = tmp_path / "agent.yaml"
    config.write_text('collector: {addresses: ["127.0.0.1:9"], tls: {mode: insecure}}\n'
                      f"spool: {{path: {tmp_path / 'spool.db'}}}\npacks: [host.yaml]\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-c", PROGRAM, str(config)], cwd=ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    loaded = set(json.loads(out.stdout.splitlines()[-1]))
    assert "checks.host" in loaded
    unwanted = sorted(m for m in loaded if m.split(".")[0] in NEVER_FOR_HOST_CHECKS
                      or any(m == p or m.startswith(p + ".") for p in NEVER_FOR_HOST_CHECKS))
    assert unwanted == []
    other_kinds = sorted({mod for mod in KIND_MODULES.values() if mod != "checks.host"} & loaded)
    assert other_kinds == []
