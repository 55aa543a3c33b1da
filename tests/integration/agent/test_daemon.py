"""The whole agent (scheduler → spool → transport) against the scripted collector, in-process and as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.daemon import AgentDaemon
from agent.spool import Spool
from checks.result import Result
from protos import patrol_pb2
from tests.conftest import ROOT
from tests.integration.agent.scripted_collector import ScriptedCollector

pytestmark = pytest.mark.integration

WAIT = 15.0
PACK = """\
pack: self
checks:
  - id: agent.spool
    title: Agent spool
    kind: agent.spool
    interval: 100ms
    warn: "> 1000"
    priority: high
    raise_after: 2
"""


def write_config(tmp_path: Path, address: str) -> Path:
    (tmp_path / "self.yaml").write_text(PACK, encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(
        "agent:\n  id: ward-3\n  labels: {site: main}\n  roles: [his-app]\n"
        f'collector:\n  addresses: ["{address}"]\n  batch_wait: 20ms\n  tls: {{mode: insecure}}\n'
        "  reconnect: {initial: 50ms, max: 200ms}\n"
        "spool:\n  path: data/spool.db\npacks: [self.yaml]\n",
        encoding="utf-8",
    )
    return path


def test_daemon_streams_its_checks_results(tmp_path: Path) -> None:
    col = ScriptedCollector().start()
    daemon = AgentDaemon(load_agent_config(write_config(tmp_path, col.address)))
    try:
        daemon.start()
        assert col.wait_for(lambda: len(col.stored) >= 3, WAIT)
        hello = col.hellos[0]
        assert (hello.agent_id, dict(hello.labels), list(hello.roles)) == ("ward-3", {"site": "main"}, ["his-app"])
        [info] = hello.checks
        assert (info.id, info.title, info.priority, info.raise_after) == ("agent.spool", "Agent spool", "high", 2)
        first = col.stored[min(col.stored)]
        assert first.check_id == "agent.spool"
        assert first.status == patrol_pb2.OK
        assert "spool_depth" in first.metrics
        assert col.wait_for(lambda: daemon.spool.stats().acked_seq >= 3, WAIT)
        assert daemon.error is None
    finally:
        daemon.stop()
        col.stop()
    assert (tmp_path / "data" / "spool.db").exists()
    assert (tmp_path / "data" / "state").is_dir()


def test_no_result_leaves_the_agent_before_its_round_is_on_disk(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A round is one spool transaction; until it has committed (fsync'd), nothing of it is sent, so nothing of it
    can be acknowledged: the collector's ack never precedes durable storage."""
    col = ScriptedCollector().start()
    gate, entered = threading.Event(), threading.Event()
    original = Spool.append

    def slow_disk(self: Spool, results: list[Result]) -> int:
        entered.set()
        assert gate.wait(WAIT)
        return original(self, results)

    monkeypatch.setattr(Spool, "append", slow_disk)
    daemon = AgentDaemon(load_agent_config(write_config(tmp_path, col.address)))
    try:
        daemon.start()
        assert entered.wait(WAIT)
        assert col.wait_for(lambda: len(col.hellos) >= 1, WAIT)
        assert not col.wait_for(lambda: len(col.stored) > 0, 0.5)
        assert daemon.spool is not None and daemon.spool.last_seq == 0
        gate.set()
        assert col.wait_for(lambda: len(col.stored) >= 2, WAIT)
        assert col.wait_for(lambda: daemon.spool is not None and daemon.spool.acked_seq >= 2, WAIT)
    finally:
        gate.set()
        daemon.stop()
        col.stop()


def test_agent_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    col = ScriptedCollector().start()
    config = write_config(tmp_path, col.address)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from agent.daemon import run_agent; "
                               "sys.exit(run_agent(Path(sys.argv[1])))", str(config)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert col.wait_for(lambda: len(col.stored) >= 2, WAIT)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        col.stop()
    assert proc.returncode == 0, err
    assert "INFO xunjian.agent: agent ward-3 stopping (SIGTERM)" in err
    assert "INFO xunjian.agent: agent ward-3 stopped\n" in err


def test_run_agent_rejects_bad_config_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.daemon import run_agent

    path = tmp_path / "agent.yaml"
    path.write_text('collector:\n  addresses: ["c:9470"]\n  windw: 3\n', encoding="utf-8")
    assert run_agent(path) == 2
    assert capsys.readouterr().err.strip() == f"{path}:3: collector.windw: unknown field (did you mean 'window'?)"


def run_agent_process(config: Path, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = (f"{prelude}\nimport sys\nfrom pathlib import Path\nfrom agent.daemon import run_agent\n"
            "sys.exit(run_agent(Path(sys.argv[1])))")
    return subprocess.run([sys.executable, "-c", code, str(config)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def log_lines(stderr: str) -> list[str]:
    """The log lines without their timestamps."""
    return [line.split(" ", 1)[1] for line in stderr.splitlines() if line[:4].isdigit()]


def test_a_spool_directory_that_cannot_be_written_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("a file where the spool directory should be")
    run = run_agent_process(write_config(tmp_path, "127.0.0.1:9"))
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line.split(" ", 1)[1] == (
        f"ERROR xunjian.agent: agent cannot start: spool: cannot write {tmp_path}/data/state: [Errno 20] Not a directory: "
        f"'{tmp_path}/data/state' (spool.path / state_dir in {tmp_path}/agent.yaml; the directory must exist or be "
        "creatable and be writable by the agent's user)")


def test_a_failing_part_stops_the_agent_with_exit_1_and_one_line_naming_it(tmp_path: Path) -> None:
    """Fault injection: the scheduler's thread hits a bug."""
    col = ScriptedCollector().start()
    try:
        prelude = ("import agent.scheduler as s\n"
                   "def broken(self):\n    raise RuntimeError('injected bug')\n"
                   "s.Scheduler.tick = broken")
        run = run_agent_process(write_config(tmp_path, col.address), prelude)
    finally:
        col.stop()
    assert run.returncode == 1, run.stderr
    lines = log_lines(run.stderr)
    assert "ERROR xunjian.agent: scheduler failed: RuntimeError: injected bug; stopping the agent ward-3" in lines
    assert lines[-1] == ("ERROR xunjian.agent: agent ward-3 stopped because scheduler failed: RuntimeError: "
                         "injected bug (exit 1)")


def test_a_second_agent_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    col = ScriptedCollector().start()
    config = write_config(tmp_path, col.address)
    first = subprocess.Popen([sys.executable, "-m", "xunjian", "agent", "run", "--config", str(config)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
    try:
        assert col.wait_for(lambda: len(col.stored) >= 1, WAIT)
        second = run_agent_process(config)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(WAIT)
        col.stop()
    assert second.returncode == 1
    assert log_lines(second.stderr) == [
        f"ERROR xunjian.agent: agent cannot start: spool: another agent (pid {first.pid}) is running with "
        f"{tmp_path}/data/spool.pid; stop it first"]
    assert first.returncode == 0, "the first agent was not disturbed"
