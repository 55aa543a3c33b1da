"""The notifications block of the example collector.yaml, shipped commented out so the example starts without
secrets, is valid once uncommented."""

from __future__ import annotations

from pathlib import Path

from collector.config import parse_config
from tests.conftest import ROOT


def test_the_commented_receivers_and_routes_are_valid(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "examples" / "collector.yaml").read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("# ") and stripped[2:3] in ("r", " ") and line.startswith("  # "):
            line = "  " + line[4:]
        lines.append(line)
    cfg = parse_config("\n".join(lines), "collector.yaml", tmp_path)
    assert [r.name for r in cfg.notifications.receivers] == ["his-wecom", "it-manager"]
    assert cfg.notifications.routes[0].escalate[0].receivers == ["it-manager"]
