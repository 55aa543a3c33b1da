"""Reload without restart, with real processes: `xunjian agent reload` (and a plain SIGHUP) applies added, changed
and removed checks; the collector ends a removed check's series and incident with the reason; a bad file keeps
the old configuration running and says file:line; seq numbers run on across reloads, so nothing is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.harness import Collector, Fleet, Process, wait_for

pytestmark = pytest.mark.e2e
WAIT = 30.0


def pack(root: Path, *checks: str) -> str:
    return "pack: ward\ndefaults: {interval: 200ms, raise_after: 1}\nchecks:\n" + "".join(checks)


def file_check(check_id: str, path: Path, extra: str = "") -> str:
    return f"  - id: {check_id}\n    kind: host.file\n    path: {path}\n{extra}"


def xunjian(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def statuses(c: Collector) -> dict[str, str]:
    return {row["check_id"]: row["status"] for row in c.get("/api/v1/checks?agent=ward-3")}


def incidents(c: Collector) -> list[dict[str, Any]]:
    return list(c.get("/api/v1/incidents?status=all"))


def last_seq(c: Collector) -> int:
    agent = c.agent("ward-3")
    return int(agent["last_seq"]) if agent else 0


def test_reload_applies_added_changed_and_removed_checks_and_refuses_a_bad_file(fleet: Fleet, tmp_path: Path) -> None:
    present, missing = tmp_path / "present.txt", tmp_path / "missing.txt"
    present.write_text("nightly export")
    c = fleet.collector(history="all", lost_after="30s")
    c.start()
    c.wait_healthy()
    a: Process = fleet.agent("ward-3", [c.grpc], pack(tmp_path, file_check("keep.file", present),
                                                      file_check("change.file", present),
                                                      file_check("drop.missing", missing)))
    a.start()
    wait_for(lambda: statuses(c) == {"keep.file": "OK", "change.file": "OK", "drop.missing": "CRITICAL"},
             timeout=WAIT, what="the first catalogue reporting")
    wait_for(lambda: [i for i in incidents(c) if i["check_id"] == "drop.missing" and i["status"] == "open"],
             timeout=WAIT, what="the incident of the missing file")
    config = tmp_path / "ward-3" / "agent.yaml"
    pack_file = tmp_path / "ward-3" / "pack.yaml"

    pack_file.write_text(pack(tmp_path, file_check("keep.file", present),
                              file_check("change.file", present, '    crit: "> 0s"\n'),
                              file_check("new.file", present)))
    run = xunjian("agent", "reload", "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == ("reload applied: 3 checks from 1 packs (+1 added: new.file; ~1 changed: "
                                  "change.file; -1 removed: drop.missing)")
    wait_for(lambda: statuses(c) == {"keep.file": "OK", "change.file": "CRITICAL", "new.file": "OK"},
             timeout=WAIT, what="the reloaded catalogue reporting, without the removed check")
    [ended] = [i for i in incidents(c) if i["check_id"] == "drop.missing"]
    assert (ended["status"], ended["resolution"]) == ("resolved", "check removed from the agent's packs")
    assert "check removed from the agent's packs" in c.output()
    assert "agent ward-3 no longer runs 1 checks (drop.missing): their series ended" in c.output()
    assert "stream to" in a.output() and "renewed to announce the reloaded checks" in a.output()

    pack_file.write_text(pack(tmp_path, file_check("keep.file", present, "    warn: > 1h\n")))
    refused = xunjian("agent", "reload", "--config", str(config))
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: reload refused, the agent keeps running its previous configuration:\n"
        f'{pack_file}:7: warn: > 1h must be quoted: write warn: "> 1h" (in YAML an unquoted > starts a folded '
        "block)\n")
    assert f'ERROR xunjian.agent: reload refused, still running the previous configuration:\n{pack_file}:7:' in a.output()
    before = last_seq(c)
    wait_for(lambda: last_seq(c) > before + 6, timeout=WAIT, what="results still flowing from the old configuration")
    assert statuses(c) == {"keep.file": "OK", "change.file": "CRITICAL", "new.file": "OK"}

    pack_file.write_text(pack(tmp_path, file_check("keep.file", present)))
    assert a.proc is not None
    os.kill(a.proc.pid, signal.SIGHUP)
    wait_for(lambda: statuses(c) == {"keep.file": "OK"}, timeout=WAIT, what="the SIGHUP reload")
    assert "-2 removed: change.file, new.file" in a.output()
    assert not [i for i in incidents(c) if i["status"] == "open"], "the removed check's incident was ended"

    assert a.stop() == 0
    stored = [r["seq"] for r in c.results("ward-3")]
    with sqlite3.connect(tmp_path / "ward-3" / "spool.db") as db:
        waiting = [s for (s,) in db.execute("SELECT seq FROM results ORDER BY seq")]
        # the spool's last seq: its newest row, or meta.last_seq once acks have emptied it (agent/spool.py)
        spool_last = max([db.execute("SELECT value FROM meta WHERE name = 'last_seq'").fetchone()[0], *waiting])
    assert stored == list(range(1, len(stored) + 1)), "no gap in what the collector stored across three reloads"
    assert stored + waiting == list(range(1, spool_last + 1)), "every seq is stored or still in the spool"
