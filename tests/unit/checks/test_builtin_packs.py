"""Every built-in pack loads and validates; the host and HIS packs are documented check by check in docs/packs.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.kinds import spec_class
from checks.pack import BUILTIN_DIR, PackRef, builtin_packs, load_checks
from checks.yamlsource import load_yaml

ROOT = Path(__file__).resolve().parents[3]
OURS = ["host-linux", "host-windows", "his-app-server", "his-nightly"]


def needs_target(name: str) -> bool:
    checks = load_yaml(BUILTIN_DIR / f"{name}.yaml").data.get("checks") or []
    return any(spec_class(c["kind"]).needs_target for c in checks if isinstance(c, dict) and "kind" in c)


@pytest.mark.parametrize("name", builtin_packs())
def test_builtin_pack_loads(name: str) -> None:
    ref = PackRef(f"builtin:{name}", target="t") if needs_target(name) else PackRef(f"builtin:{name}")
    checks = load_checks([ref])
    assert checks.specs, f"{name} has no checks"
    assert checks.packs == [name]
    for spec in checks.specs:
        assert spec.runbook, f"{name}: {spec.id} has no runbook"


def test_our_packs_are_there() -> None:
    assert set(OURS) <= set(builtin_packs())


@pytest.mark.parametrize("name", OURS)
def test_every_check_is_documented(name: str) -> None:
    doc = (ROOT / "docs" / "packs.md").read_text(encoding="utf-8")
    section = doc.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
    ref = PackRef(f"builtin:{name}", target="t") if needs_target(name) else PackRef(f"builtin:{name}")
    for spec in load_checks([ref]).specs:
        assert f"`{spec.id}`" in section, f"{spec.id} of {name} is not described in docs/packs.md"


def test_host_packs_share_ids_so_overrides_fit_both() -> None:
    linux = {s.id for s in load_checks(["builtin:host-linux"]).specs}
    windows = {s.id for s in load_checks(["builtin:host-windows"]).specs}
    assert {"host.cpu", "host.memory", "host.swap", "host.disk", "host.uptime", "agent.spool"} <= linux & windows


def test_host_linux_and_his_app_server_load_together() -> None:
    checks = load_checks(["builtin:host-linux", "builtin:his-app-server"])
    assert len(checks.specs) == len({(s.id, s.target) for s in checks.specs})
    assert {s.system for s in checks.specs if s.id.startswith("his.")} == {"HIS"}
    iis = next(s for s in load_checks(["builtin:host-windows"]).specs if s.id == "iis.services")
    assert iis.disabled
