"""The committed dashboards/json/ is exactly what `make dashboards` builds, and provisioning points at it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dashboards.build import OUT, main, render_all
from tests.conftest import ROOT


def test_committed_json_is_current() -> None:
    for name, text in render_all().items():
        path = OUT / name
        assert path.exists(), f"dashboards/json/{name} is missing: run `make dashboards` and commit it"
        assert path.read_text(encoding="utf-8") == text, f"dashboards/json/{name} is stale: run `make dashboards`"
    assert {p.name for p in OUT.glob("*.json")} == set(render_all()), "dashboards/json/ holds a file no build writes"


def test_panel_reference_in_docs_is_current() -> None:
    from dashboards import docs

    current = docs.DOC.read_text(encoding="utf-8")
    assert docs.update(current) == current, "docs/dashboards.md is stale: run `python -m dashboards.docs`"
    assert docs.main(["--check"]) == 0


def test_check_mode_reports_stale_files(tmp_path: Path) -> None:
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "xunjian-wall.json").write_text("{}")
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_dashboards_have_stable_uids_and_link_to_each_other() -> None:
    dashboards = [json.loads(t) for t in render_all().values()]
    uids = {d["uid"] for d in dashboards}
    assert uids == {"xunjian-wall", "xunjian-fleet", "xunjian-database", "xunjian-collector"}
    for d in dashboards:
        assert "xunjian" in d["tags"] and d["editable"] is False
        assert any(link.get("tags") == ["xunjian"] for link in d["links"]), "a dropdown of the sibling dashboards"
        for panel in d["panels"]:
            for link in (panel.get("fieldConfig") or {}).get("defaults", {}).get("links") or []:
                if link["url"].startswith("/d/"):
                    assert link["url"][3:].split("?")[0] in uids, link["url"]


def test_every_dashboard_has_the_issue_s_variables() -> None:
    for d in (json.loads(t) for t in render_all().values()):
        names = {v["name"] for v in d["templating"]["list"]}
        assert {"datasource", "site"} <= names, d["title"]
        if d["uid"] != "xunjian-collector":  # the collector's panels are per collector, not per system or agent
            assert {"system", "agent"} <= names, d["title"]


def test_provisioning_files() -> None:
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/xunjian.yaml").read_text())
    [p] = provider["providers"]
    assert p["type"] == "file" and p["allowUiUpdates"] is False and p["options"]["path"]
    source = yaml.safe_load((ROOT / "dashboards/provisioning/datasources/xunjian-prometheus.yaml").read_text())
    [ds] = source["datasources"]
    assert ds["type"] == "prometheus" and ds["jsonData"]["timeInterval"]
