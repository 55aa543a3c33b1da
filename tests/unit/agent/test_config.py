"""agent.yaml: the documented example loads, and bad input names file, line and field with what was expected."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from agent.config import load_agent_config
from checks.config_error import ConfigError

PACK = """\
pack: self
defaults: {interval: 30s}
checks:
  - id: agent.spool
    kind: agent.spool
    warn: "> 1000"
  - id: his.db.spool
    kind: agent.spool
    target: his_db
"""


def write(tmp_path: Path, agent_yaml: str, pack: str = PACK) -> Path:
    (tmp_path / "packs").mkdir(exist_ok=True)
    (tmp_path / "packs" / "self.yaml").write_text(pack, encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(agent_yaml, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    return str(info.value)


GOOD = """\
agent:
  id: his-app-01
  labels: {role: his-app, site: main-campus}
  roles: [his-app]
collector:
  addresses: ["collector-a:9470", "collector-b:9470"]
spool:
  path: data/spool.db
  max_bytes: 64MiB
packs:
  - packs/*.yaml
commands:
  allow: [/usr/lib/nagios/plugins/check_disk]
targets:
  his_db:
    dialect: oracle
    dsn: his-db:1521/HISPDB
    user: xunjian_mon
    password_env: XJ_HIS_DB_PASSWORD
overrides:
  agent.spool: {warn: "> 5000"}
"""


def test_design_example_loads_with_defaults_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_HIS_DB_PASSWORD", "secret")
    cfg = load_agent_config(write(tmp_path, GOOD))
    assert cfg.agent_id == "his-app-01"
    assert cfg.agent.labels == {"role": "his-app", "site": "main-campus"}
    assert cfg.collector.addresses == ["collector-a:9470", "collector-b:9470"]
    assert cfg.collector.batch_max == 100
    assert cfg.collector.batch_wait == pytest.approx(1.0)
    assert cfg.collector.window == 8
    assert cfg.collector.heartbeat_interval == 10.0
    assert cfg.spool_path == tmp_path.resolve() / "data" / "spool.db"
    assert cfg.spool_max_bytes == 64 * 1024**2
    assert cfg.state_dir == tmp_path.resolve() / "data" / "state"
    assert cfg.concurrency == 4
    assert cfg.command_allow == frozenset({"/usr/lib/nagios/plugins/check_disk"})
    assert "his_db" in cfg.targets
    ids = [(s.id, s.target) for s in cfg.checks.specs]
    assert ids == [("agent.spool", None), ("his.db.spool", "his_db")]
    assert str(cfg.checks.specs[0].warn) == "> 5000"


def test_agent_id_defaults_to_hostname(tmp_path: Path) -> None:
    cfg = load_agent_config(write(tmp_path, 'collector: {addresses: ["c:9470"]}\n'))
    assert cfg.agent_id == socket.gethostname()
    assert cfg.checks.specs == []


def test_pack_bound_to_a_target(tmp_path: Path) -> None:
    pack = "pack: db\nchecks:\n  - id: db.spool\n    kind: agent.spool\n"
    yaml_text = ('collector: {addresses: ["c:9470"]}\n'
                 "packs:\n  - {pack: packs/self.yaml, target: lis_db}\n"
                 "targets:\n  lis_db: {dialect: postgres, host: lis-db, database: lis}\n")
    cfg = load_agent_config(write(tmp_path, yaml_text, pack))
    assert [(s.id, s.target) for s in cfg.checks.specs] == [("db.spool", "lis_db")]


def test_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["c:9470"\n')
    assert error_of(path) == f"{path}:3: invalid YAML: expected ',' or ']', but got '<stream end>'"


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["c:9470"]\n  batch_wiat: 1s\n')
    assert error_of(path) == f"{path}:3: collector.batch_wiat: unknown field (did you mean 'batch_wait'?)"


def test_unknown_top_level_section(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["c:9470"]\ntarget:\n  x: {}\n')
    assert error_of(path) == f"{path}:3: target: unknown field (did you mean 'targets'?)"


def test_bad_duration(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["c:9470"]\n  heartbeat_interval: ten seconds\n')
    assert error_of(path) == (
        f"{path}:3: collector.heartbeat_interval: expected a duration such as 30s, 5m or 1h, got 'ten seconds'"
    )


def test_bad_size(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["c:9470"]\nspool:\n  max_bytes: 12QB\n')
    assert error_of(path) == f"{path}:4: spool.max_bytes: expected a size such as 64MiB or 1GB, got '12QB'"


def test_missing_collector_section(tmp_path: Path) -> None:
    path = write(tmp_path, "agent:\n  id: a1\n")
    assert error_of(path) == f"{path}:1: collector: required field is missing"


def test_missing_address(tmp_path: Path) -> None:
    path = write(tmp_path, "collector:\n  batch_max: 50\n")
    assert error_of(path) == f"{path}:1: collector.addresses: required field is missing"


def test_empty_address_list(tmp_path: Path) -> None:
    path = write(tmp_path, "collector:\n  addresses: []\n")
    assert error_of(path) == (
        f'{path}:2: collector.addresses: at least one collector address is needed, e.g. ["collector-a:9470"]'
    )


def test_address_without_port(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["collector-a"]\n')
    assert error_of(path) == (
        f"{path}:2: collector.addresses: expected host:port such as collector-a:9470, got 'collector-a'"
    )


def test_unknown_target_points_at_the_check_in_its_pack(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\npacks: [packs/self.yaml]\ntargets:\n  his_dbb: {dialect: oracle, dsn: his-db/HIS}\n')
    pack = tmp_path.resolve() / "packs" / "self.yaml"
    assert error_of(path) == f"{pack}:7: target: check 'his.db.spool': unknown target 'his_db' (did you mean 'his_dbb'?)"


def test_unknown_target_without_a_close_name_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\npacks: [packs/self.yaml]\ntargets:\n  lis: {dialect: mysql, host: lis-db}\n')
    pack = tmp_path.resolve() / "packs" / "self.yaml"
    assert error_of(path) == f"{pack}:7: target: check 'his.db.spool': unknown target 'his_db'; agent.yaml defines: lis"


def test_pack_bound_to_unknown_target(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\npacks:\n  - {pack: packs/self.yaml, target: nope}\n')
    assert error_of(path) == f"{path}:3: packs[0].target: unknown target 'nope'; agent.yaml defines: none"


def test_command_paths_must_be_absolute(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\ncommands:\n  allow: [check_disk]\n')
    assert error_of(path) == (
        f"{path}:3: commands.allow: expected an absolute path such as /usr/lib/nagios/plugins/check_disk, "
        "got 'check_disk'"
    )


def test_bad_pack_entry(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\npacks:\n  - 42\n')
    assert error_of(path) == f"{path}:3: packs[0]: expected builtin:NAME, a file, a glob or {{pack: ..., target: ...}}"


def test_override_of_unknown_check(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\noverrides:\n  nope.check: {disabled: true}\n')
    assert error_of(path) == f"{path}:3: overrides.nope.check: override for a check that no loaded pack defines"


def test_several_errors_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, 'collector:\n  addresses: ["c:9470"]\n  window: 0\nconcurrency: many\n')
    assert error_of(path).splitlines() == [
        f"{path}:3: collector.window: Input should be greater than or equal to 1",
        f"{path}:4: concurrency: Input should be a valid integer, unable to parse string as an integer",
    ]


def test_command_checks_must_be_allowed(tmp_path: Path) -> None:
    pack = "pack: plugins\nchecks:\n  - id: plugin.disk\n    kind: command\n    command: /usr/lib/nagios/plugins/check_disk\n"
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\npacks: [packs/self.yaml]\n', pack)
    origin = tmp_path.resolve() / "packs" / "self.yaml"
    assert error_of(path) == (
        f"{origin}:3: command: check 'plugin.disk' runs /usr/lib/nagios/plugins/check_disk, "
        "which is not in commands.allow of agent.yaml"
    )


def test_a_pack_bound_in_agent_yaml_can_say_which_system_it_patrols(tmp_path: Path) -> None:
    """A built-in DB pack bound to the HIS database belongs to HIS on the wall and in incidents; overrides still win."""
    pack = tmp_path / "db.yaml"
    pack.write_text("pack: db\ndefaults: {system: other}\nchecks:\n"
                    "  - {id: db.up, kind: tcp, host: 127.0.0.1, port: 5432}\n"
                    "  - {id: db.other, kind: tcp, host: 127.0.0.1, port: 5433, system: LIS}\n", encoding="utf-8")
    path = write(tmp_path, 'collector: {addresses: ["c:9470"]}\n'
                           "packs:\n  - {pack: db.yaml, system: HIS}\n"
                           "overrides:\n  db.other: {system: PACS}\n")
    cfg = load_agent_config(path)
    assert {s.id: s.system for s in cfg.checks.specs} == {"db.up": "HIS", "db.other": "PACS"}
