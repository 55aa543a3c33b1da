"""docs/check-kinds.md is generated from the models and must be current; every kind's example must load."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.docs import anchor, render, type_name
from checks.kinds import KIND_MODULES, spec_class
from checks.pack import load_pack
from checks.spec import Duration, Size, ThresholdField

ROOT = Path(__file__).resolve().parents[3]


def test_check_kinds_doc_is_current() -> None:
    current = (ROOT / "docs" / "check-kinds.md").read_text(encoding="utf-8")
    assert current == render(), "docs/check-kinds.md is stale: run `python -m checks.docs > docs/check-kinds.md`"


def test_every_kind_is_documented() -> None:
    text = render()
    for kind in KIND_MODULES:
        assert f"### `{kind}`" in text
        assert f"(#{anchor(kind)})" in text
        assert spec_class(kind).kind_doc, f"{kind} has no kind_doc"


@pytest.mark.parametrize("kind", sorted(k for k in KIND_MODULES if getattr(spec_class(k), "example", "")))
def test_example_loads_as_a_pack(kind: str, tmp_path: Path) -> None:
    example = spec_class(kind).example
    body = "\n".join(("  - " if i == 0 else "    ") + line for i, line in enumerate(example.strip("\n").splitlines()))
    pack = tmp_path / "example.yaml"
    pack.write_text(f"pack: example\nchecks:\n{body}\n", encoding="utf-8")
    [spec] = load_pack(pack).specs
    assert spec.kind == kind


def test_type_names() -> None:
    assert type_name(Duration) == "duration"
    assert type_name(Size) == "size"
    assert type_name(ThresholdField | None) == "threshold"
    assert type_name(list[str]) == "list of string"
    assert type_name(dict[str, str]) == "map of string to string"
