"""Every class of pack error names the file, the line, the field and what was expected (exact messages)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.config_error import ConfigError, ConfigErrors
from checks.pack import PackRef, load_checks, load_pack
from checks.yamlsource import parse_yaml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_pack(path)
    return str(info.value).replace(str(path), "pack.yaml")


def test_unknown_kind_with_suggestion(tmp_path: Path) -> None:
    assert error_of(tmp_path, "pack: t\nchecks:\n  - id: a\n    kind: host.dsk\n") == (
        "pack.yaml:4: checks[0].kind: unknown kind 'host.dsk' (did you mean 'host.disk'?); "
        "see docs/check-kinds.md for the list")


def test_unknown_kind_without_suggestion(tmp_path: Path) -> None:
    assert error_of(tmp_path, "pack: t\nchecks:\n  - id: a\n    kind: frobnicate\n") == (
        "pack.yaml:4: checks[0].kind: unknown kind 'frobnicate'; see docs/check-kinds.md for the list")


def test_unknown_field_did_you_mean(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'pack: t\nchecks:\n  - id: a\n    kind: host.disk\n    mount: ["/"]\n') == (
        "pack.yaml:5: checks[0].mount: unknown field (did you mean 'mounts'?)")


def test_bad_duration(tmp_path: Path) -> None:
    assert error_of(tmp_path, "pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    interval: 5 minutes\n") == (
        "pack.yaml:5: checks[0].interval: expected a duration such as 30s, 5m or 1h, got '5 minutes'")


def test_bad_threshold(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    warn: "> lots"\n') == (
        "pack.yaml:5: checks[0].warn: bad threshold '> lots': expected a number (optionally with a unit such as 2s "
        "or 1GiB), got 'lots'")


def test_bad_threshold_range(tmp_path: Path) -> None:
    assert error_of(tmp_path, 'pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    crit: "20:10"\n') == (
        "pack.yaml:5: checks[0].crit: bad threshold '20:10': range start 20 is above its end 10")
    assert error_of(tmp_path, 'pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    crit: "ten:20"\n') == (
        "pack.yaml:5: checks[0].crit: bad threshold 'ten:20': expected a comparison such as \"> 85\" or a Nagios "
        "range such as 10:20, @10:20, ~:5")


def test_duplicate_id(tmp_path: Path) -> None:
    text = "pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n  - id: a\n    kind: host.memory\n"
    assert error_of(tmp_path, text) == (
        "pack.yaml:5: checks[1].id: duplicate check id 'a', first defined at pack.yaml:3")


def test_duplicate_id_across_packs(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text("pack: one\nchecks:\n  - id: host.cpu\n    kind: host.cpu\n")
    with pytest.raises(ConfigError) as info:
        load_checks(["builtin:host-linux", "one.yaml"], base_dir=tmp_path)
    builtin = Path(__file__).resolve().parents[3] / "checks" / "packs" / "host-linux.yaml"
    assert str(info.value) == (f"{tmp_path / 'one.yaml'}:3: checks[0].id: duplicate check id 'host.cpu', "
                               f"first defined at {builtin}:8")


def test_missing_target(tmp_path: Path) -> None:
    text = 'pack: t\nchecks:\n  - id: a\n    kind: sql.metric\n    query: {postgres: "SELECT 1 AS value"}\n'
    assert error_of(tmp_path, text) == (
        "pack.yaml:3: checks[0].target: required for kind sql.metric: the name of a target in agent.yaml "
        "(or bind the pack to a target in agent.yaml packs:)")


def test_both_interval_and_schedule(tmp_path: Path) -> None:
    text = 'pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    interval: 5m\n    schedule: "30 7 * * *"\n'
    assert error_of(tmp_path, text) == (
        "pack.yaml:6: checks[0].schedule: set either interval or schedule (cron), not both")


def test_bad_cron(tmp_path: Path) -> None:
    text = 'pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    schedule: "30 25 * * *"\n'
    assert error_of(tmp_path, text) == (
        "pack.yaml:5: checks[0].schedule: expected a cron expression such as \"30 7 * * *\", got '30 25 * * *'")


def test_missing_kind_and_missing_required_option(tmp_path: Path) -> None:
    assert error_of(tmp_path, "pack: t\nchecks:\n  - id: a\n    warn: '> 1'\n") == (
        "pack.yaml:3: checks[0]: required field kind is missing")
    assert error_of(tmp_path, "pack: t\nchecks:\n  - id: a\n    kind: host.file\n") == (
        "pack.yaml:3: checks[0].path: required field is missing")


def test_unknown_default_field(tmp_path: Path) -> None:
    text = "pack: t\ndefaults: {intervall: 5m}\nchecks:\n  - id: a\n    kind: host.cpu\n"
    assert error_of(tmp_path, text) == "pack.yaml:2: defaults.intervall: unknown field (did you mean 'interval'?)"


def test_bad_default_is_blamed_on_the_defaults_line_once(tmp_path: Path) -> None:
    text = ("pack: t\ndefaults:\n  interval: 5 minutes\nchecks:\n  - id: a\n    kind: host.cpu\n"
            "  - id: b\n    kind: host.memory\n")
    assert error_of(tmp_path, text) == (
        "pack.yaml:3: defaults.interval: expected a duration such as 30s, 5m or 1h, got '5 minutes'")


def test_several_errors_reported_together(tmp_path: Path) -> None:
    path = write(tmp_path, "pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n    warn: nope\n"
                           "  - id: b\n    kind: host.disk\n    mountz: []\n")
    with pytest.raises(ConfigErrors) as info:
        load_pack(path)
    assert [f"{e.line}: {e.field}" for e in info.value.errors] == ["5: checks[0].warn", "8: checks[1].mountz"]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    text = "pack: t\nchecks:\n  - id: a\n    kind: host.cpu\n   warn: x\n"
    assert error_of(tmp_path, text).startswith("pack.yaml:5: invalid YAML:")


def test_pack_level_errors(tmp_path: Path) -> None:
    assert error_of(tmp_path, "pack: t\nchecks: {a: 1}\n") == "pack.yaml:2: checks: expected a list of checks"
    assert error_of(tmp_path, "checks: []\n") == "pack.yaml:1: pack: required: the pack's name"
    assert error_of(tmp_path, "pack: t\nchecks: []\nextra: 1\n") == (
        "pack.yaml:3: extra: unknown field (expected one of: checks, defaults, description, pack)")


def test_kind_option_errors_name_the_field(tmp_path: Path) -> None:
    text = "pack: t\nchecks:\n  - id: a\n    kind: host.log\n    path: /var/log/x.log\n    include: ['(unclosed']\n"
    assert error_of(tmp_path, text) == (
        "pack.yaml:6: checks[0].include[0]: bad regular expression '(unclosed': missing ), unterminated subpattern at "
        "position 0")
    text = "pack: t\nchecks:\n  - id: a\n    kind: command\n    command: check_disk\n"
    assert error_of(tmp_path, text) == (
        "pack.yaml:5: checks[0].command: expected an absolute path such as /usr/lib/nagios/plugins/check_disk, "
        "got 'check_disk'")
    text = "pack: t\nchecks:\n  - id: a\n    kind: host.load\n    period: 10\n"
    assert error_of(tmp_path, text) == "pack.yaml:5: checks[0].period: Input should be 1, 5 or 15, got 10"


def test_bad_override_names_agent_yaml_line(tmp_path: Path) -> None:
    agent = parse_yaml("overrides:\n  host.cpu:\n    crit: '>>'\n  host.nope: {disabled: true}\n", "agent.yaml")
    with pytest.raises(ConfigError) as info:
        load_checks(["builtin:host-linux"], overrides=agent.data["overrides"], overrides_source=agent)
    assert str(info.value) == (
        "agent.yaml:3: overrides.host.cpu.crit: bad threshold '>>': expected a number (optionally with a unit such "
        "as 2s or 1GiB), got '>'")
    agent = parse_yaml("overrides:\n  host.nope: {disabled: true}\n", "agent.yaml")
    with pytest.raises(ConfigError) as info:
        load_checks(["builtin:host-linux"], overrides=agent.data["overrides"], overrides_source=agent)
    assert str(info.value) == "agent.yaml:2: overrides.host.nope: override for a check that no loaded pack defines"


def test_overrides_interval_thresholds_disabled_and_schedule(tmp_path: Path) -> None:
    agent = parse_yaml("overrides:\n  host.cpu: {interval: 5m, crit: '> 99', warn: '> 90'}\n"
                       "  host.swap: {disabled: true}\n  host.uptime: {schedule: '0 8 * * *'}\n", "agent.yaml")
    checks = load_checks(["builtin:host-linux"], overrides=agent.data["overrides"], overrides_source=agent)
    by_id = {s.id: s for s in checks.specs}
    assert by_id["host.cpu"].interval == 300
    assert (str(by_id["host.cpu"].warn), str(by_id["host.cpu"].crit)) == ("> 90", "> 99")
    assert by_id["host.swap"].disabled
    assert "host.swap" not in {s.id for s in checks.enabled()}
    # an override's schedule replaces the pack's interval instead of clashing with it
    assert by_id["host.uptime"].schedule == "0 8 * * *"


def test_override_by_id_at_target(tmp_path: Path) -> None:
    pack = write(tmp_path, "pack: t\nchecks:\n  - id: log\n    kind: host.log\n    path: /x.log\n    include: [E]\n")
    agent = parse_yaml("overrides:\n  log@a: {crit: '> 5'}\n", "agent.yaml")
    checks = load_checks([PackRef(str(pack), target="a"), PackRef(str(pack), target="b")],
                         overrides=agent.data["overrides"], overrides_source=agent)
    crit = {s.target: str(s.crit) if s.crit else None for s in checks.specs}
    assert crit == {"a": "> 5", "b": None}


def test_pack_schedule_replaces_default_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "pack: t\ndefaults: {interval: 60s}\nchecks:\n  - id: a\n    kind: host.file\n"
                           "    path: /x\n    schedule: '30 7 * * *'\n  - id: b\n    kind: host.cpu\n")
    a, b = load_pack(path).specs
    assert (a.schedule, "interval" in a.model_fields_set) == ("30 7 * * *", False)
    assert (b.schedule, b.interval) == (None, 60)


def test_bad_override_by_id_at_target_names_its_line(tmp_path: Path) -> None:
    pack = write(tmp_path, "pack: t\nchecks:\n  - id: log\n    kind: host.log\n    path: /x.log\n    include: [E]\n")
    agent = parse_yaml("overrides:\n  log: {crit: '> 1'}\n  log@b:\n    crit: nonsense\n", "agent.yaml")
    with pytest.raises(ConfigError) as info:
        load_checks([PackRef(str(pack), target="a"), PackRef(str(pack), target="b")],
                    overrides=agent.data["overrides"], overrides_source=agent)
    assert str(info.value) == (
        "agent.yaml:4: overrides.log@b.crit: bad threshold 'nonsense': expected a comparison such as \"> 85\" or a "
        "Nagios range such as 10:20, @10:20, ~:5")
