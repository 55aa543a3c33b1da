"""Build every dashboard to JSON in dashboards/json/ (`python -m dashboards`, or `make dashboards`).

The JSON is committed: Grafana provisions it without Python, and a test fails when it is not what this
build writes, so a change to a dashboard module, a pack threshold or the library shows in review.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import collector_self, database, fleet, wall

OUT = Path(__file__).resolve().parent / "json"
DASHBOARDS: dict[str, Callable[[], db.Dashboard]] = {
    "xunjian-wall.json": wall.build,
    "xunjian-fleet.json": fleet.build,
    "xunjian-database.json": database.build,
    "xunjian-collector.json": collector_self.build,
}


def render(build: Callable[[], db.Dashboard]) -> str:
    """One dashboard as stable JSON text: panels numbered in order, keys sorted."""
    model = build().build()
    for n, panel in enumerate(model.panels or [], start=1):
        panel.id_val = n
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    return {name: render(build) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that are not current (exit 1)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"directory to write (default {OUT})")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render_all().items():
        path = args.out / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "stale" if args.check else "written"
    print(f"dashboards {verb}: {', '.join(stale) or 'none'}", file=sys.stderr)
    return 1 if args.check and stale else 0
