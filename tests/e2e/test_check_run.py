"""The check author's loop, through the real `xunjian` command: every built-in pack prints a readable table
and one JSON object per result; the database packs run against the live PostgreSQL and MariaDB."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from checks.pack import builtin_packs
from tests.conftest import ROOT, require

pytestmark = pytest.mark.e2e

DB_PACKS = {"postgres": ("pg", 5432), "mysql": ("my", 3306), "oracle": None, "mssql": None}
NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
JSON_KEYS = {"check_id", "target", "key", "status", "value", "unit", "outcome", "summary", "metrics", "duration_ms"}


def xunjian(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=180)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def agent_yaml(tmp_path: Path) -> Path:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(
        "collector: {addresses: ['127.0.0.1:9470']}\n"
        "targets:\n"
        "  pg: {dialect: postgres, host: 127.0.0.1, port: 5432, database: test, user: postgres}\n"
        "  my: {dialect: mysql, host: 127.0.0.1, port: 3306, database: test, user: root}\n"
    )
    return cfg


def test_every_builtin_pack_is_covered_here() -> None:
    # his-nightly reads a site's own tables and files: tests/e2e/test_his_nightly.py runs it with them.
    assert set(builtin_packs()) == {"host-linux", "host-windows", "his-app-server", "interfaces-example", "his-nightly",
                                    *DB_PACKS}


@pytest.mark.parametrize("pack", ["host-linux", "host-windows", "his-app-server", "interfaces-example"])
def test_check_run_prints_a_table_and_json_lines(pack: str) -> None:
    table = xunjian("check", "run", f"builtin:{pack}")
    assert table.returncode in NAGIOS, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:3] == ["STATUS", "CHECK", "TARGET"]
    assert rows and all(r.split()[0] in NAGIOS.values() for r in rows)
    assert NAGIOS[table.returncode] == max(rows, key=lambda r: list(NAGIOS.values()).index(r.split()[0])).split()[0]

    out = xunjian("check", "run", f"builtin:{pack}", "--json")
    assert out.returncode in NAGIOS, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines and all(set(line) >= JSON_KEYS for line in lines)
    for line in lines:
        assert line["status"] != "OK" or line["outcome"] == "ok", f"an OK that could not tell: {line}"
        assert line["outcome"] != "internal_error", line


@pytest.mark.integration
@pytest.mark.parametrize("pack", ["postgres", "mysql"])
def test_database_pack_runs_against_the_live_server(pack: str, tmp_path: Path) -> None:
    entry = DB_PACKS[pack]
    assert entry is not None
    target, port = entry
    require(port_open(port), f"{pack} on 127.0.0.1:{port}")
    out = xunjian("check", "run", f"builtin:{pack}", "--config", str(agent_yaml(tmp_path)), "--target", target,
                  "--json")
    assert out.returncode in NAGIOS, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines and all(line["target"] == target for line in lines)
    assert not [line for line in lines if line["outcome"] in {"internal_error", "permission_denied", "auth_failed"}]


@pytest.mark.parametrize("pack", ["oracle", "mssql"])
def test_database_packs_that_cannot_run_here_still_validate(pack: str) -> None:
    out = xunjian("check", "validate", f"builtin:{pack}")
    assert out.returncode == 0, out.stderr
    assert "ok:" in out.stdout


def test_check_run_names_a_missing_target(tmp_path: Path) -> None:
    out = xunjian("check", "run", "builtin:postgres")
    assert out.returncode == 78
    assert "postgres.yaml:12: checks[0].target: required for kind sql.reachable" in out.stderr


def plugin_pack(tmp_path: Path, *codes: int) -> Path:
    """A pack of command checks that exit with `codes`, as Nagios plugins would."""
    checks = "".join(f"  - id: plugin.exit{n}\n    kind: command\n    command: /bin/sh\n"
                     f"    args: [-c, 'echo exit {code}; exit {code}']\n" for n, code in enumerate(codes))
    path = tmp_path / "plugins.yaml"
    path.write_text(f"pack: plugins\nchecks:\n{checks}")
    return path


@pytest.mark.parametrize(("codes", "expected"), [((0, 0), 0), ((0, 1), 1), ((1, 2, 0), 2), ((3, 2), 3), ((7,), 3)])
def test_check_run_exits_with_the_worst_status_as_a_nagios_plugin(tmp_path: Path, codes: tuple[int, ...],
                                                                   expected: int) -> None:
    run = xunjian("check", "run", str(plugin_pack(tmp_path, *codes)))
    assert run.returncode == expected, run.stdout + run.stderr


def test_check_run_with_nothing_enabled_is_unknown(tmp_path: Path) -> None:
    pack = tmp_path / "off.yaml"
    pack.write_text("pack: quiet\nchecks:\n  - id: a\n    kind: host.cpu\n    disabled: true\n")
    run = xunjian("check", "run", str(pack))
    assert run.returncode == 3
    assert "no enabled check in these packs: nothing ran (UNKNOWN)" in run.stderr


def test_check_run_bad_input_exits_apart_from_the_statuses(tmp_path: Path) -> None:
    pack = tmp_path / "bad.yaml"
    pack.write_text("pack: bad\nchecks:\n  - id: a\n    kind: host.cpu\n    warn: > 95\n")
    run = xunjian("check", "run", str(pack))
    assert run.returncode == 78, "EX_CONFIG: an invalid pack is neither OK nor CRITICAL"
    assert run.stderr == f'error: {pack}:5: warn: > 95 must be quoted: write warn: "> 95" (in YAML an unquoted > starts a folded block)\n'
    usage = xunjian("check", "run")
    assert usage.returncode == 64, "EX_USAGE: bad arguments"
    assert "the following arguments are required: packs" in usage.stderr


def test_check_validate_without_arguments_validates_the_agent_yaml_it_would_use(tmp_path: Path) -> None:
    nothing = xunjian("check", "validate", cwd=tmp_path)
    assert nothing.returncode == 2
    assert "no agent.yaml at .xunjian/agent.yaml or /etc/xunjian/agent.yaml" in nothing.stderr
    data = tmp_path / ".xunjian"
    data.mkdir()
    (data / "agent.yaml").write_text("collector: {addresses: ['127.0.0.1:9470']}\npacks: [builtin:host-linux]\n")
    ok = xunjian("check", "validate", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(".xunjian/agent.yaml: ok: agent ")
    (data / "agent.yaml").write_text("collector: {addresses: ['127.0.0.1:9470']}\npacks: [packs/*.yaml]\n")
    bad = xunjian("check", "validate", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.startswith(f"error: .xunjian/agent.yaml:2: packs[0]: no pack file matches {data.resolve()}/packs/*.yaml")
