"""Bad configs get one clear `file:line: field: message` error and exit code 2, from the real command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def xunjian(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


def test_invalid_agent_yaml_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("agent: {id: his-app-01}\ncollector:\n  addresses: [\"127.0.0.1:9470\"]\n  batch_wiat: 1s\n")
    run = xunjian("agent", "run", "--config", str(cfg))
    assert run.returncode == 2
    assert f"{cfg}:4: collector.batch_wiat: unknown field (did you mean 'batch_wait'?)" in run.stderr
    assert "Traceback" not in run.stderr


def test_invalid_collector_yaml_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("listen: {grpc: '127.0.0.1:0', http: '127.0.0.1:0'}\nstore:\n  history: everything\n")
    run = xunjian("collector", "serve", "--config", str(cfg))
    assert run.returncode == 2
    assert f"{cfg}:3: store.history:" in run.stderr
    assert "Traceback" not in run.stderr


def test_check_run_with_bad_pack_exits_78_not_a_nagios_status(tmp_path: Path) -> None:
    pack = tmp_path / "pack.yaml"
    pack.write_text("pack: bad\nchecks:\n  - id: x.disk\n    kind: host.dsk\n")
    run = xunjian("check", "run", str(pack))
    assert run.returncode == 78
    assert f"{pack}:4: checks[0].kind: unknown kind 'host.dsk' (did you mean 'host.disk'?)" in run.stderr


def test_output_cut_short_by_a_closed_pipe_is_not_an_error() -> None:
    """Regression: `xunjian check run ... | head -1` printed a BrokenPipeError traceback and failed."""
    closed_stdout = (
        "import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "from xunjian.cli import main\n"
        "sys.exit(main(['check', 'run', 'builtin:host-linux']))\n"
    )
    run = subprocess.run([sys.executable, "-c", closed_stdout], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode in (0, 1, 2, 3), run.stderr
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr
