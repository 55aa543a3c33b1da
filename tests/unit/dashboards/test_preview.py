"""Previews draw every panel type from answers, format values in the panel's unit, and say what they are."""

from __future__ import annotations

import json
from pathlib import Path

from dashboards.build import OUT
from dashboards.preview import LABEL, fmt_value, render, threshold_color
from dashboards.queries import Answer, Series, panel_queries


def test_units() -> None:
    assert fmt_value(12.34, "percent") == "12.3%"
    assert fmt_value(0.5, "percentunit") == "50.0%"
    assert fmt_value(7200, "s") == "2.0 hour"
    assert fmt_value(0.0042, "s") == "4.2 ms"
    assert fmt_value(30, "h") == "1.2 day"
    assert fmt_value(3 * 1024 * 1024, "bytes") == "3.0 MiB"
    assert fmt_value(1500, "ops") == "1.5k/s"
    assert fmt_value(3, "none") == "3"


def test_threshold_colours_follow_grafana_steps() -> None:
    steps = [(None, "green"), (85.0, "yellow"), (95.0, "red")]
    assert threshold_color(steps, 10) == threshold_color([(None, "green")], 0)
    assert threshold_color(steps, 85) == threshold_color([(None, "yellow")], 0)
    assert threshold_color(steps, 99) == threshold_color([(None, "red")], 0)


def test_every_panel_type_of_the_wall_renders(tmp_path: Path) -> None:
    dash = json.loads((OUT / "xunjian-wall.json").read_text())
    answers = []
    for q in panel_queries(dash):
        points = [(1000.0 + i, float(i % 4)) for i in range(5)]
        answers.append(Answer(q, q.expr, [Series({"system": "HIS", "target": "lis_pg", "agent": "a"},
                                                 points if not q.instant else points[-1:])]))
    path = render(dash, answers, tmp_path / "wall.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert "not Grafana" in LABEL
