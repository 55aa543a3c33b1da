"""deploy/ as shipped: the example configs load with the daemons' own loaders, the systemd units run what the
examples configure with the hardening docs/deploy.md describes, and every deploy/ path the docs name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.config import load_agent_config
from collector.config import load_config
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
DOCS = [ROOT / "README.md", DEPLOY / "README.md", ROOT / "docs" / "deploy.md"]


def unit(name: str) -> dict[str, list[str]]:
    """A systemd unit's settings, every value of repeated keys kept, comments dropped."""
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_agent_example_loads_with_its_site_pack_and_database_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_HIS_DB_PASSWORD", "from agent.env")
    cfg = load_agent_config(DEPLOY / "examples" / "agent.yaml")
    assert cfg.agent_id == "his-app-01"
    assert cfg.collector.addresses == ["collector-a:9470", "collector-b:9470"]
    assert cfg.spool_path == Path("/var/lib/xunjian/spool.db")
    ids = {s.id for s in cfg.checks.enabled()}
    assert {"host.disk", "his.tomcat.process", "his.db.listener", "his.web.login"} <= ids
    assert any(s.target == "his_db" for s in cfg.checks.enabled()), "the oracle pack is not bound to his_db"
    errors = [s for s in cfg.checks.enabled() if s.id == "his.app.errors"]
    assert [getattr(s, "path", None) for s in errors] == ["/opt/his/logs/his-app.log"]


def test_collector_example_loads_and_listens_on_the_documented_ports() -> None:
    cfg = load_config(DEPLOY / "examples" / "collector.yaml")
    assert cfg.listen.grpc.endswith(":9470") and cfg.listen.http.endswith(":9471")
    assert cfg.listen.http.startswith("127.0.0.1:"), "the unauthenticated HTTP API must not listen on every interface"
    assert cfg.sqlite_path() == Path("/var/lib/xunjian/collector.db")


@pytest.mark.parametrize(("name", "config"), [("xunjian-agent.service", "agent.yaml"),
                                              ("xunjian-collector.service", "collector.yaml")])
def test_units_run_the_examples_hardened_with_reload_and_restart(name: str, config: str) -> None:
    u = unit(name)
    assert u["ExecStart"][0].startswith("/opt/xunjian/bin/xunjian ")
    assert u["ExecStart"][0].endswith(f"--config /etc/xunjian/{config}")
    assert u["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert u["User"] == ["xunjian"] and u["Group"] == ["xunjian"]
    assert u["StateDirectory"] == ["xunjian"], "spool.db and collector.db live in /var/lib/xunjian"
    assert u["EnvironmentFile"][0].startswith("-/etc/xunjian/") and u["EnvironmentFile"][0].endswith(".env")
    assert u["Restart"] == ["always"] and u["RestartPreventExitStatus"] == ["2"]
    assert u["StartLimitIntervalSec"] == ["0"]
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes", "SystemCallArchitectures": "native",
                       "SystemCallErrorNumber": "EPERM"}.items():
        assert u.get(key) == [value], f"{name}: {key}={value} expected, found {u.get(key)}"
    assert "ReadWritePaths" not in u, "StateDirectory is the only place a unit writes"


def test_agent_unit_can_see_other_users_processes() -> None:
    """host.process must see Tomcat, Oracle and nginx running as their own users."""
    u = unit("xunjian-agent.service")
    assert "ProtectProc" not in u and "PrivateUsers" not in u
    assert u["ProtectHome"] == ["read-only"], "HIS logs under /home must stay readable"


def test_backup_unit_runs_the_shipped_script_as_the_store_owner() -> None:
    u = unit("xunjian-backup.service")
    assert u["User"] == ["xunjian"] and u["Type"] == ["oneshot"]
    assert "/usr/local/sbin/xunjian-backup --db /var/lib/xunjian/collector.db" in u["ExecStart"][0]
    assert unit("xunjian-backup.timer")["Persistent"] == ["true"]


def test_every_deploy_path_the_docs_name_exists() -> None:
    named = set()
    for doc in DOCS:
        named |= {m.rstrip(".,:)`'") for m in re.findall(r"(?<![\w/])deploy/[\w./*-]+", doc.read_text())}
    assert named, "the docs name no deploy/ file"
    missing = sorted(p for p in named if not list(ROOT.glob(p)))
    assert not missing, f"named in the docs but not in the repository: {missing}"


def test_every_file_deploy_readme_lists_exists() -> None:
    listed = re.findall(r"`((?:examples|systemd|backup|db-grants)/[\w./*-]*)`", (DEPLOY / "README.md").read_text())
    assert len(listed) >= 6
    missing = sorted(p for p in listed if not list(DEPLOY.glob(p)))
    assert not missing, f"deploy/README.md lists files deploy/ does not have: {missing}"
