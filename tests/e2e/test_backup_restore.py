"""docs/deploy.md's backup and restore, for real: deploy/backup/xunjian-backup.py copies the store of a collector
that is ingesting, and a collector started on the copy serves it and takes the agent back."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.e2e.harness import Fleet, steady_pack, wait_for

pytestmark = pytest.mark.e2e

AGENT = "his-app-01"


def test_backup_while_ingesting_then_restore_serves_the_copy(fleet: Fleet) -> None:
    c = fleet.collector(history="all").start()
    c.wait_healthy()
    agent = fleet.agent(AGENT, [c.grpc], steady_pack()).start()
    wait_for(lambda: c.high_water(AGENT) > 50, timeout=30, what="the agent streaming")

    before = c.high_water(AGENT)
    out = subprocess.run([sys.executable, str(ROOT / "deploy/backup/xunjian-backup.py"), "--db",
                          str(fleet.root / "collector.db"), "--to", str(fleet.root / "backups")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    after = c.high_water(AGENT)
    agent.stop()
    c.stop()

    # Restore, as docs/deploy.md says: collector stopped, the copy put in place of the store and its -wal/-shm.
    (copy,) = (fleet.root / "backups").glob("collector-*.db")
    for suffix in ("", "-wal", "-shm"):
        (fleet.root / f"collector.db{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, fleet.root / "collector.db")
    c.start()
    c.wait_healthy()
    restored = c.high_water(AGENT)
    assert before <= restored <= after, "the copy is not the store as it was during the backup"
    seqs = [r["seq"] for r in c.results(AGENT)]
    assert seqs == list(range(1, restored + 1)), "the restored store is not every result up to its mark, once"

    # The agent comes back: what it sent after the backup was acknowledged and is gone from its spool, so the
    # restored store continues after a gap; nothing is stored twice.
    agent.start()
    wait_for(lambda: c.high_water(AGENT) > after + 20, timeout=30,
             what="the agent streaming to the restored collector")
    seqs = [r["seq"] for r in c.results(AGENT)]
    assert len(seqs) == len(set(seqs))
    assert seqs[:restored] == list(range(1, restored + 1))
