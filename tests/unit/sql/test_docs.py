"""docs/databases.md stays true: every pack check and target field is documented, and its YAML examples load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checks.pack import PackRef, load_checks, load_pack
from checks.sql.target import Target

DOC = Path(__file__).resolve().parents[3] / "docs" / "databases.md"


@pytest.mark.parametrize("pack", ["postgres", "mysql"])
def test_every_check_in_the_pack_table(pack: str) -> None:
    text = DOC.read_text(encoding="utf-8")
    for spec in load_checks([PackRef(f"builtin:{pack}", "db")]).specs:
        assert f"| `{spec.id}` |" in text, f"{spec.id} missing from docs/databases.md"


def test_every_target_field_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in Target.model_fields:
        if name == "name":
            continue
        assert re.search(rf"`{name}`|`tls\.mode`", text) and f"`{name}" in text, name


def test_yaml_examples_load(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    checks = [b for b in blocks if b.startswith("- id:")]
    assert len(checks) == 2
    for i, block in enumerate(checks):
        path = tmp_path / f"example{i}.yaml"
        path.write_text("pack: example\nchecks:\n" + "".join("  " + line + "\n" for line in block.splitlines()))
        assert load_pack(path).specs
