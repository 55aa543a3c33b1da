"""host.log against real files: appends, partial lines, and rotation done by the real logrotate
(rename+create and copytruncate) as well as by plain rename/truncate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from checks.context import RunContext
from checks.logwatch import HostLog
from checks.result import Outcome, Result, Status
from tests.conftest import ROOT, require

pytestmark = pytest.mark.integration

LOGROTATE = shutil.which("logrotate") or "/usr/sbin/logrotate"


def spec(path: Path, **extra: object) -> HostLog:
    return HostLog.model_validate({"id": "his.app.errors", "kind": "host.log", "path": str(path),
                                   "include": [r"\bERROR\b", "OutOfMemoryError"], "exclude": ["HeartbeatTimeout"],
                                   **extra})


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def run(check: HostLog, ctx: RunContext) -> Result:
    [result] = check.probe(ctx)
    return result


def test_first_run_starts_at_end_then_counts_only_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "his-app.log"
    append(log, "2026-11-21 23:59:01 ERROR old error before the agent started")
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    first = run(check, ctx)
    assert (first.status, first.value) == (Status.OK, 0)
    assert first.summary.startswith("watching ")
    append(log, "2026-11-22 02:00:00 INFO login ok", "2026-11-22 02:00:01 ERROR ORA-03113: end-of-file on channel",
           "2026-11-22 02:00:02 ERROR HeartbeatTimeout from lis", "2026-11-22 02:00:03 WARN slow query")
    second = run(check, ctx)
    assert second.value == 1
    assert second.status is Status.WARNING
    assert second.summary == ("1 matching line in 4 new: 2026-11-22 02:00:01 ERROR ORA-03113: end-of-file on channel "
                              "(warning > 0)")
    assert second.metrics["lines_read"] == 4
    third = run(check, ctx)
    assert (third.value, third.status) == (0, Status.OK)


def test_partial_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    with log.open("a") as f:
        f.write("ERROR half a li")
    assert run(check, ctx).value == 0
    with log.open("a") as f:
        f.write("ne\n")
    result = run(check, ctx)
    assert result.value == 1
    assert "ERROR half a line" in result.summary


def test_state_survives_agent_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("start\n")
    run(spec(log), RunContext(state_dir=tmp_path / "state"))
    append(log, "ERROR one")
    assert run(spec(log), RunContext(state_dir=tmp_path / "state")).value == 1
    assert run(spec(log), RunContext(state_dir=tmp_path / "state")).value == 0


def test_rename_and_create_reads_the_rest_of_the_old_file(tmp_path: Path) -> None:
    log = tmp_path / "his-app.log"
    append(log, "boot")
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    append(log, "ERROR written just before rotation")
    os.rename(log, tmp_path / "his-app.log.1")
    append(log, "ERROR first line of the new file", "INFO fine")
    result = run(check, ctx)
    assert result.value == 2
    assert result.metrics["rotated"] == 1
    assert "(log rotated)" in result.summary
    assert run(check, ctx).value == 0


def test_copytruncate_reads_from_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, *[f"INFO line {i}" for i in range(50)])
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    append(log, "ERROR before the copy")
    shutil.copy(log, tmp_path / "app.log.1")
    with log.open("r+") as f:
        f.truncate(0)
    append(log, "ERROR after truncate")
    result = run(check, ctx)
    assert (result.value, result.metrics["rotated"]) == (2, 1)
    assert "ERROR before the copy | ERROR after truncate" in result.summary


def test_copytruncate_then_grown_past_old_offset_is_noticed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    append(log, "INFO short")
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    with log.open("r+") as f:
        f.truncate(0)
    append(log, "ERROR new content, longer than what was there before truncation", "INFO more")
    result = run(check, ctx)
    assert result.value == 1
    assert result.metrics["lines_read"] == 2


def test_gbk_log_and_truncated_samples(tmp_path: Path) -> None:
    log = tmp_path / "his.log"
    log.write_bytes(b"")
    check = spec(log, encoding="gbk", sample_chars=30, sample_lines=1, include=["错误"])
    ctx = RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    with log.open("ab") as f:
        f.write(("2026-11-22 错误 门诊挂号接口返回超时，请检查网络连接和中间件服务状态\n").encode("gbk"))
        f.write(("2026-11-22 错误 第二条\n").encode("gbk"))
    result = run(check, ctx)
    assert result.value == 2
    assert result.summary == "2 matching lines in 2 new: 2026-11-22 错误 门诊挂号接口返回超时，请检查网… (warning > 0)"


def test_missing_file_is_unknown_not_found(tmp_path: Path) -> None:
    result = run(spec(tmp_path / "nope.log"), RunContext())
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)


def logrotate(tmp_path: Path, log: Path, mode: str) -> None:
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{log} {{\n  rotate 3\n  {mode}\n  missingok\n  nocompress\n}}\n")
    subprocess.run([LOGROTATE, "--force", "--state", str(tmp_path / "logrotate.state"), str(conf)], check=True)


@pytest.mark.parametrize("mode", ["create", "copytruncate"])
def test_real_logrotate(tmp_path: Path, mode: str) -> None:
    require(os.path.exists(LOGROTATE), "logrotate (Debian package logrotate)")
    log = tmp_path / "his-app.log"
    append(log, "INFO boot")
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    append(log, "ERROR before rotation")
    logrotate(tmp_path, log, mode)
    assert (tmp_path / "his-app.log.1").exists()
    append(log, "ERROR after rotation")
    result = run(check, ctx)
    assert result.value == 2
    assert result.metrics["rotated"] == 1
    append(log, "INFO quiet")
    assert run(check, ctx).value == 0


def test_patient_identifiers_are_redacted_in_samples(tmp_path: Path) -> None:
    log = tmp_path / "his-app.log"
    log.write_text("")
    check, ctx = spec(log), RunContext(state_dir=tmp_path / "state")
    run(check, ctx)
    append(log, "ERROR 挂号失败 patient 110105198001011234 phone 13812345678 order 202611220001")
    result = run(check, ctx)
    assert "ERROR 挂号失败 patient *** phone *** order 202611220001" in result.summary
    quiet, quiet_ctx = spec(log, sample_lines=0), RunContext()  # no state directory: the context keeps the offset
    run(quiet, quiet_ctx)
    append(log, "ERROR secret detail")
    assert run(quiet, quiet_ctx).summary == "1 matching line in 1 new (warning > 0)"


def as_unprivileged_user(args: list[str], groups: list[int]) -> list[str]:
    """Run `args` as nobody with only `groups` (as the agent runs as its own user), or as we are when not root."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    require(setpriv is not None, "setpriv (util-linux) to run a probe as another user")
    group_opt = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return [str(setpriv), "--reuid=65534", "--regid=65534", *group_opt, *args]


def test_unreadable_log_is_permission_denied_until_its_group_may_read() -> None:
    """What an operator sees before granting the agent's user read access to a HIS log (docs/deploy.md)."""
    with tempfile.TemporaryDirectory(prefix="xj-logperm-") as where:  # pytest's own tmp is private to root
        unreadable_then_granted(Path(where))


def unreadable_then_granted(tmp_path: Path) -> None:
    logs = tmp_path / "his-logs"
    logs.mkdir()
    log = logs / "his-app.log"
    append(log, "2026-11-22 02:00:01 ERROR ORA-03113")
    log.chmod(0o640)
    reader_gid = 4 if os.geteuid() == 0 else os.getgid()
    if os.geteuid() == 0:
        os.chown(log, -1, reader_gid)
    for d in (tmp_path, logs):
        d.chmod(0o755)
    pack = tmp_path / "pack.yaml"
    pack.write_text(f"pack: p\nchecks:\n  - {{id: his.app.errors, kind: host.log, path: {log}, include: [ERROR]}}\n")
    pack.chmod(0o644)
    command = [sys.executable, "-m", "xunjian", "check", "run", "--json", str(pack)]

    def once(groups: list[int]) -> dict[str, object]:
        out = subprocess.run(as_unprivileged_user(command, groups), capture_output=True, text=True, cwd=ROOT,
                             timeout=60)
        assert out.stdout, out.stderr
        return dict(json.loads(out.stdout.splitlines()[-1]))

    if os.geteuid() == 0:
        for _ in range(2):
            denied = once([])
            assert (denied["status"], denied["outcome"]) == ("UNKNOWN", "permission_denied"), denied
            assert "needs read access" in str(denied["summary"])
    else:
        log.chmod(0o000)
        denied = once([])
        assert denied["outcome"] == "permission_denied", denied
        log.chmod(0o640)
    granted = once([reader_gid])
    assert (granted["status"], granted["outcome"]) == ("OK", "ok"), granted
