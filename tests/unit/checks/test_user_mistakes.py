"""Mistakes that used to load silently: each is now an error naming file, line and field (exact messages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from checks.config_error import ConfigError
from checks.pack import load_pack

AGENT = 'collector: {addresses: ["127.0.0.1:9470"]}\n'


def pack_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pack.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_pack(path)
    return str(info.value).replace(str(path), "pack.yaml")


def agent_error(tmp_path: Path, agent_yaml: str) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text(agent_yaml, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_agent_config(path)
    return str(info.value).replace(str(tmp_path), "D")


def check(kind: str, extra: str) -> str:
    return f"pack: t\nchecks:\n  - id: a\n    kind: {kind}\n{extra}"


# a glob that matches nothing, a pack that is not there: the agent.yaml line of the entry

def test_a_glob_that_matches_no_pack(tmp_path: Path) -> None:
    assert agent_error(tmp_path, AGENT + "packs:\n  - builtin:host-linux\n  - packs.d/*.yaml\n") == (
        "D/agent.yaml:4: packs[1]: no pack file matches D/packs.d/*.yaml (remove the entry, or put a pack there)")


def test_a_pack_file_that_is_not_there(tmp_path: Path) -> None:
    assert agent_error(tmp_path, AGENT + "packs:\n  - his.yaml\n") == (
        "D/agent.yaml:3: packs[0]: pack file not found: D/his.yaml")


def test_a_builtin_pack_that_does_not_exist(tmp_path: Path) -> None:
    message = agent_error(tmp_path, AGENT + "packs:\n  - {pack: 'builtin:host-linx'}\n")
    assert message.startswith("D/agent.yaml:3: packs[0]: no built-in pack 'host-linx'; built-in packs are: ")


# warn and crit the wrong way round for their comparison

def test_warn_and_crit_inverted_for_greater_than(tmp_path: Path) -> None:
    assert pack_error(tmp_path, check("host.disk", '    warn: "> 95"\n    crit: "> 85"\n')) == (
        'pack.yaml:6: checks[0].crit: warn "> 95" and crit "> 85" are in the wrong order: with > the critical '
        "limit must be at or above the warning one, or WARNING is never reported (swap them?)")


def test_warn_and_crit_inverted_for_less_than(tmp_path: Path) -> None:
    assert pack_error(tmp_path, check("tls.cert", '    host: his.local\n    warn: "< 7"\n    crit: "< 30"\n')) == (
        'pack.yaml:7: checks[0].crit: warn "< 7" and crit "< 30" are in the wrong order: with < the critical '
        "limit must be at or below the warning one, or WARNING is never reported (swap them?)")


@pytest.mark.parametrize("thresholds", [
    '    warn: "> 85"\n    crit: "> 95"\n',
    '    warn: "> 90"\n    crit: ">= 90"\n',
    '    warn: "< 20"\n    crit: "> 95"\n',
    '    warn: "10:90"\n    crit: "5:95"\n',
])
def test_thresholds_in_a_sensible_order_load(tmp_path: Path, thresholds: str) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(check("host.disk", thresholds), encoding="utf-8")
    assert len(load_pack(path).specs) == 1


# a unit that does not fit what the kind measures

def test_a_size_on_a_latency(tmp_path: Path) -> None:
    assert pack_error(tmp_path, check("tcp", '    host: his.local\n    port: 80\n    warn: "> 1GiB"\n')) == (
        'pack.yaml:7: checks[0].warn: "> 1GiB" is a size, but a tcp check measures seconds: write a duration such '
        'as "> 2s" or a number of seconds')


def test_a_duration_on_days_left(tmp_path: Path) -> None:
    assert pack_error(tmp_path, check("tls.cert", '    host: his.local\n    warn: "< 30d"\n')) == (
        'pack.yaml:6: checks[0].warn: "< 30d" is a duration, but a tls.cert check measures days: write a plain '
        "number (days)")


def test_a_size_on_a_percentage(tmp_path: Path) -> None:
    assert pack_error(tmp_path, check("host.disk", '    crit: "> 500MiB"\n')) == (
        'pack.yaml:5: checks[0].crit: "> 500MiB" is a size, but a host.disk check measures percent: write a number '
        'of percent such as "> 90"')


def test_the_unit_follows_what_is_measured(tmp_path: Path) -> None:
    path = tmp_path / "pack.yaml"
    path.write_text(check("host.disk", '    measure: free_bytes\n    warn: "< 10GiB"\n    crit: "< 2GiB"\n'))
    assert load_pack(path).specs[0].crit is not None
    assert pack_error(tmp_path, check("host.file", '    path: /x\n    measure: size\n    warn: "< 1h"\n')) == (
        'pack.yaml:7: checks[0].warn: "< 1h" is a duration, but a host.file check measures bytes: write a size '
        'such as "< 10GiB" or a number of bytes')


def test_a_duration_on_a_sql_metric_in_milliseconds(tmp_path: Path) -> None:
    text = ("pack: t\nchecks:\n  - id: a\n    kind: sql.metric\n    target: db\n    unit: ms\n"
            "    query: {postgres: 'SELECT 1 AS value'}\n    warn: \"> 200ms\"\n")
    assert pack_error(tmp_path, text) == (
        'pack.yaml:8: checks[0].warn: "> 200ms" is a duration, but a sql.metric check measures ms: write a plain '
        "number (ms)")


def test_the_error_points_at_the_defaults_line_when_the_value_came_from_there(tmp_path: Path) -> None:
    text = ('pack: t\ndefaults: {warn: "> 5s"}\nchecks:\n  - id: a\n    kind: host.cpu\n')
    assert pack_error(tmp_path, text) == (
        'pack.yaml:2: defaults.warn: "> 5s" is a duration, but a host.cpu check measures percent: write a number '
        'of percent such as "> 90"')


def test_the_error_points_at_the_override_in_agent_yaml(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(check("host.disk", '    warn: "> 85"\n    crit: "> 95"\n'))
    message = agent_error(tmp_path, AGENT + "packs: [p.yaml]\noverrides:\n  a: {warn: \"> 97\"}\n")
    assert message == (
        'D/agent.yaml:4: overrides.a.warn: warn "> 97" and crit "> 95" are in the wrong order: with > the critical '
        "limit must be at or above the warning one, or WARNING is never reported (swap them?)")


# YAML reads an unquoted > 95 as something else entirely

@pytest.mark.parametrize(("value", "why"), [
    ("> 95", "> starts a folded block"),
    (">= 95", "> starts a folded block"),
    ("!= 0", "! starts a tag"),
    ("@10:20", "@ is reserved"),
])
def test_an_unquoted_threshold_says_quote_it(tmp_path: Path, value: str, why: str) -> None:
    assert pack_error(tmp_path, check("host.cpu", f"    warn: {value}\n")) == (
        f'pack.yaml:5: warn: {value} must be quoted: write warn: "{value}" (in YAML an unquoted {why})')


def test_an_unquoted_threshold_in_an_agent_yaml_override(tmp_path: Path) -> None:
    assert agent_error(tmp_path, AGENT + "overrides:\n  his.disk.data: {crit: > 97}\n") == (
        'D/agent.yaml:3: crit: > 97 must be quoted: write crit: "> 97" (in YAML an unquoted > starts a folded block)')
