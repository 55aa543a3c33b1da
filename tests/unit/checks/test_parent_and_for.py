"""The check model's persistence (`for:`) and parent link: parsed from YAML, linked to the target's
reachability check when packs load, validated, and sent to the collector in Hello."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.wire import build_hello, check_info
from checks.config_error import ConfigError
from checks.pack import PackRef, load_checks, load_pack


def write_pack(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(body, encoding="utf-8")
    return path


PACK = """\
pack: site
defaults: {for: 10m, interval: 30s}
checks:
  - id: db.up
    kind: sql.reachable
    target: his
    for: 0s
  - id: db.sessions
    kind: sql.metric
    target: his
    query: {postgres: SELECT 1 AS value}
  - id: db.other_target
    kind: sql.metric
    target: lis
    query: {postgres: SELECT 1 AS value}
  - id: host.load
    kind: host.load
"""


def test_for_parses_from_yaml_and_defaults(tmp_path: Path) -> None:
    specs = {s.id: s for s in load_pack(write_pack(tmp_path, PACK)).specs}
    assert specs["db.up"].for_ == 0
    assert specs["db.sessions"].for_ == 600
    assert specs["host.load"].for_ == 600


def test_every_check_on_a_target_with_a_reachability_check_gets_it_as_parent(tmp_path: Path) -> None:
    specs = {s.id: s for s in load_pack(write_pack(tmp_path, PACK)).specs}
    assert specs["db.up"].parent is None
    assert specs["db.sessions"].parent == "db.up"
    assert specs["db.other_target"].parent is None, "lis has no reachability check"
    assert specs["host.load"].parent is None


def test_binding_a_db_pack_links_per_target() -> None:
    loaded = load_checks([PackRef("builtin:postgres", "his"), PackRef("builtin:postgres", "lis")])
    for spec in loaded.specs:
        if spec.id != "pg.reachable":
            assert spec.parent == "pg.reachable"
    assert {(s.id, s.target) for s in loaded.specs if s.id == "pg.reachable"} == {("pg.reachable", "his"),
                                                                                  ("pg.reachable", "lis")}


@pytest.mark.parametrize(("extra", "message"), [
    ("    parent: db.nope\n", "parent 'db.nope' is not another enabled check on target 'his'"),
    ("    parent: db.other_target\n", "parent 'db.other_target' is not another enabled check on target 'his'"),
    ("    parent: db.sessions\n", "parent 'db.sessions' is not another enabled check"),
])
def test_a_parent_named_in_a_pack_is_checked(tmp_path: Path, extra: str, message: str) -> None:
    body = PACK.replace("    query: {postgres: SELECT 1 AS value}\n  - id: db.other_target",
                        "    query: {postgres: SELECT 1 AS value}\n" + extra + "  - id: db.other_target", 1)
    with pytest.raises(ConfigError, match=message) as err:
        load_pack(write_pack(tmp_path, body))
    assert "pack.yaml:8" in str(err.value), "the check it belongs to"


def test_parents_may_not_form_a_cycle(tmp_path: Path) -> None:
    body = """\
pack: site
checks:
  - {id: a, kind: host.load, parent: b}
  - {id: b, kind: host.load, parent: a}
"""
    with pytest.raises(ConfigError, match="parents form a cycle"):
        load_pack(write_pack(tmp_path, body))


@pytest.mark.parametrize("bad", ["-5m", "soon"])
def test_bad_for_is_a_config_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="for"):
        load_pack(write_pack(tmp_path, PACK.replace("for: 0s", f"for: {bad}")))


def test_hello_carries_parent_and_for(tmp_path: Path) -> None:
    specs = load_pack(write_pack(tmp_path, PACK)).specs
    targets = {"his": {"dialect": "postgres"}, "lis": {"dialect": "postgres"}}
    infos = {c.id: c for c in build_hello(agent_id="a", labels={}, roles=[], specs=specs, targets=targets,
                                          last_seq=0).checks}
    assert (infos["db.sessions"].parent, infos["db.sessions"].for_s) == ("db.up", 600)
    assert (infos["db.up"].parent, infos["db.up"].for_s) == ("", 0)
    assert check_info(specs[3], targets).for_s == 600
