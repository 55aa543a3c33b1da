"""Threshold grammar: every comparison operator, units on limits, and every Nagios range form."""

from __future__ import annotations

import math

import pytest

from checks.result import Status
from checks.spec import CheckSpec
from checks.thresholds import parse_threshold


@pytest.mark.parametrize(("text", "problems", "fine"), [
    ("> 85", [85.1, 100], [85, 0, -1]),
    (">85", [86], [85]),
    (">= 90", [90, 91], [89.99]),
    ("< 10", [9.9, -5], [10, 11]),
    ("<= 5", [5, 0], [5.01]),
    ("== 0", [0], [1, -1]),
    ("= 0", [0], [0.5]),
    ("!= 0", [1, -1], [0]),
    ("> 2s", [2.5], [2]),
    ("> 500ms", [0.6], [0.5]),
    ("> 5m", [301], [300]),
    ("< 1GiB", [1024**3 - 1], [1024**3]),
    ("> 85%", [86], [85]),
    ("> -1.5", [0], [-2]),
    ("> 1e3", [1001], [1000]),
])
def test_comparisons(text: str, problems: list[float], fine: list[float]) -> None:
    t = parse_threshold(text)
    assert [t.matches(v) for v in problems] == [True] * len(problems)
    assert [t.matches(v) for v in fine] == [False] * len(fine)
    assert str(t) == text


@pytest.mark.parametrize(("text", "problems", "fine"), [
    ("10", [-1, 10.5, 11], [0, 5, 10]),          # outside 0..10
    ("10:", [9.99, -3], [10, 1e9]),              # below 10
    ("~:10", [10.01], [-1e9, 10]),               # above 10
    ("10:20", [9, 21], [10, 15, 20]),            # outside 10..20
    ("@10:20", [10, 15, 20], [9, 21]),           # inside 10..20
    ("@~:5", [-100, 5], [5.1]),                  # inside -inf..5
    ("@5", [0, 5], [-0.1, 5.1]),                 # inside 0..5
    ("-5:5", [-6, 6], [-5, 0, 5]),
    ("1s:5s", [0.5, 6], [1, 5]),
])
def test_nagios_ranges(text: str, problems: list[float], fine: list[float]) -> None:
    t = parse_threshold(text)
    assert [t.matches(v) for v in problems] == [True] * len(problems)
    assert [t.matches(v) for v in fine] == [False] * len(fine)


def test_bare_numbers_from_yaml_are_ranges() -> None:
    assert parse_threshold(10).matches(11)
    assert not parse_threshold(10).matches(10)
    assert parse_threshold(2.5).matches(3)


def test_nan_is_always_a_problem() -> None:
    assert parse_threshold("> 85").matches(math.nan)
    assert parse_threshold("@10:20").matches(math.nan)


@pytest.mark.parametrize(("text", "message"), [
    ("", 'expected a threshold such as "> 85" or a Nagios range such as 10:20, got an empty string'),
    ("> lots", "bad threshold '> lots': expected a number (optionally with a unit such as 2s or 1GiB), got 'lots'"),
    ("20:10", "bad threshold '20:10': range start 20 is above its end 10"),
    ("a:b", "bad threshold 'a:b': expected a comparison such as \"> 85\" or a Nagios range such as 10:20, @10:20, ~:5"),
    ("=> 5", "bad threshold '=> 5': expected a number (optionally with a unit such as 2s or 1GiB), got '> 5'"),
])
def test_bad_thresholds(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_threshold(text)
    assert str(info.value) == message


def test_crit_before_warn_and_summary_names_the_threshold() -> None:
    class Probe(CheckSpec):
        pass

    spec = Probe.model_validate({"id": "x", "kind": "x", "warn": "> 80", "crit": "> 90"})
    assert spec.status_for(95) is Status.CRITICAL
    assert spec.status_for(85) is Status.WARNING
    assert spec.status_for(80) is Status.OK
    assert spec.measured(95.0, unit="percent", summary="disk 95%").summary == "disk 95% (critical > 90)"
    assert spec.measured(50.0, unit="percent", summary="disk 50%").summary == "disk 50%"
