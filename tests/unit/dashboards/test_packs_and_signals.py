"""Thresholds come from the packs as Grafana steps, and every engine mapping names a real check of its engine."""

from __future__ import annotations

import pytest

from dashboards import signals
from dashboards.packs import GREEN, RED, YELLOW, Step, UnplottableThreshold, builtin_checks, grafana_unit, spec, steps

ENGINE_PREFIX = {"postgres": "pg.", "mysql": "mysql.", "oracle": "oracle.", "mssql": "mssql.", "host": ("host.", "agent.")}
ALL_SIGNALS = [v for v in vars(signals).values() if isinstance(v, signals.Signal)]


def test_high_is_bad() -> None:
    assert steps("host.cpu") == (Step(None, GREEN), Step(85, YELLOW), Step(95, RED))


def test_low_is_bad_with_both_levels_in_base_units() -> None:
    assert steps("oracle.users.password_expiry") == (Step(None, RED), Step(3 * 86400, YELLOW), Step(7 * 86400, GREEN))


def test_low_is_bad_warn_only() -> None:
    assert steps("pg.uptime") == (Step(None, YELLOW), Step(600, GREEN))


def test_crit_only_and_durations() -> None:
    assert steps("oracle.rman.backup_age") == (Step(None, GREEN), Step(86400, RED))
    assert steps("mssql.io.latency") == (Step(None, GREEN), Step(0.1, YELLOW))


def test_no_thresholds_is_one_colour() -> None:
    assert steps("pg.top_sql") == (Step(None, GREEN),)


def test_thresholds_grafana_cannot_draw_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from checks.thresholds import parse_threshold

    [real] = builtin_checks()["pg.long_queries"]
    for warn, crit in (("10:20", None), ("!= 0", None), ("> 1", "< 0")):
        fake = real.model_copy(update={"warn": parse_threshold(warn), "crit": parse_threshold(crit) if crit else None})
        monkeypatch.setitem(builtin_checks(), "pg.long_queries", (fake,))
        with pytest.raises(UnplottableThreshold):
            steps("pg.long_queries")


def test_a_check_defined_twice_must_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    from checks.thresholds import parse_threshold

    [cpu, *_] = builtin_checks()["host.cpu"]
    other = cpu.model_copy(update={"crit": parse_threshold("> 99")})
    monkeypatch.setitem(builtin_checks(), "host.cpu", (cpu, other))
    with pytest.raises(ValueError, match="different thresholds"):
        spec("host.cpu")


@pytest.mark.parametrize("signal", ALL_SIGNALS, ids=lambda s: s.title)
def test_signal_maps_real_checks_of_its_engine_in_its_unit(signal: signals.Signal) -> None:
    for engine, ids in signal.checks.items():
        assert engine in (*signals.ENGINES, "host"), engine
        for check_id in ids:
            assert check_id.startswith(ENGINE_PREFIX[engine]), f"{check_id} is not a {engine} check"
            s = spec(check_id)
            assert s.kind.startswith(("sql.", "host.", "agent.")), s.kind
            assert grafana_unit(check_id, signals.HOST_UNITS.get(check_id, "")) == signal.unit, check_id
            steps(check_id)


def test_status_checks_exist() -> None:
    for check_id in signals.BACKUP_AND_JOB_CHECKS:
        spec(check_id)


def test_the_wall_covers_the_issue_s_database_health() -> None:
    assert [s.title for s in signals.DATABASE_WALL] == ["Connections used", "Longest lock wait", "Replication lag",
                                                        "Backup age"]
