"""The command kind running the real Monitoring Plugins (Debian monitoring-plugins-basic) and small scripts:
statuses, perfdata, timeouts that kill the process group, the allow list and the sanitized environment."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from checks.command import Command
from checks.context import RunContext
from checks.result import Outcome, Result, Status
from tests.conftest import require

pytestmark = pytest.mark.integration

PLUGINS = Path("/usr/lib/nagios/plugins")


def plugin(name: str) -> str:
    path = PLUGINS / name
    require(os.access(path, os.X_OK), f"{path} (Debian package monitoring-plugins-basic)")
    return str(path)


def run(command: str, *args: str, allow: bool = True, **fields: object) -> Result:
    spec = Command.model_validate({"id": "plugin.test", "kind": "command", "command": command, "args": list(args),
                                   **fields})
    ctx = RunContext(command_allow=frozenset({command}) if allow else frozenset())
    [result] = spec.probe(ctx)
    return result


@pytest.mark.parametrize(("code", "status"), [
    ("0", Status.OK), ("1", Status.WARNING), ("2", Status.CRITICAL), ("3", Status.UNKNOWN),
])
def test_check_dummy_statuses(code: str, status: Status) -> None:
    result = run(plugin("check_dummy"), code, "his export finished")
    assert result.status is status
    assert result.summary == f"{status.name}: his export finished"
    assert result.value is None
    assert result.outcome is (Outcome.OK if status is not Status.UNKNOWN else Outcome.PROTOCOL_ERROR)


def test_check_dummy_unsupported_state_is_unknown() -> None:
    result = run(plugin("check_dummy"), "4")
    assert result.status is Status.UNKNOWN
    assert result.summary == "UNKNOWN: Status 4 is not a supported error state"


def test_check_disk_perfdata_in_bytes() -> None:
    result = run(plugin("check_disk"), "-w", "20%", "-c", "10%", "-p", "/")
    total, used, _free = shutil.disk_usage("/")
    assert result.summary.startswith("DISK ")
    assert result.unit == "bytes"
    assert result.metrics["/"] == result.value
    # check_disk reports used bytes; other processes write meanwhile, so compare within 1% of the disk
    assert abs(result.value - used) < total * 0.01  # type: ignore[operator]
    expected = Status.OK if used / total < 0.8 else Status.WARNING if used / total < 0.9 else Status.CRITICAL
    assert result.status is expected


def test_check_disk_critical_threshold() -> None:
    result = run(plugin("check_disk"), "-w", "100%", "-c", "100%", "-p", "/")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("DISK CRITICAL")


def test_check_load_value_and_all_metrics() -> None:
    result = run(plugin("check_load"), "-r", "-w", "50,40,30", "-c", "100,80,60", value_label="scaled_load5")
    assert result.status is Status.OK
    assert set(result.metrics) == {"load1", "load5", "load15", "scaled_load1", "scaled_load5", "scaled_load15"}
    assert result.value == result.metrics["scaled_load5"]
    assert result.metrics["load1"] == pytest.approx(os.getloadavg()[0], abs=0.5)


def test_check_load_warn_threshold_of_the_plugin() -> None:
    result = run(plugin("check_load"), "-w", "0,0,0", "-c", "1000,1000,1000")
    if os.getloadavg()[0] > 0:
        assert result.status is Status.WARNING


@pytest.fixture
def sleepers() -> Iterator[str]:
    marker = f"xj{uuid.uuid4().hex[:10]}"
    link = Path(f"/tmp/{marker}")
    link.symlink_to(shutil.which("sleep") or "/bin/sleep")
    procs = [psutil.Popen([str(link), "60"]) for _ in range(3)]
    try:
        yield marker
    finally:
        for p in procs:
            p.kill()
            p.wait()
        link.unlink()


def test_check_procs_counts_real_processes(sleepers: str) -> None:
    ok = run(plugin("check_procs"), "-w", "3:3", "-c", "1:", "-C", sleepers)
    assert ok.status is Status.OK
    assert ok.value == 3
    assert ok.metrics["procs"] == 3
    assert ok.summary.startswith("PROCS OK: 3 processes with command name")
    warn = run(plugin("check_procs"), "-w", "5:", "-c", "1:", "-C", sleepers)
    assert warn.status is Status.WARNING
    crit = run(plugin("check_procs"), "-c", "1:", "-C", f"none{sleepers}")
    assert (crit.status, crit.value) == (Status.CRITICAL, 0)


def test_our_thresholds_on_the_plugin_value_make_it_worse(sleepers: str) -> None:
    result = run(plugin("check_procs"), "-w", "1:", "-C", sleepers, crit="> 2")
    assert result.status is Status.CRITICAL


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        stop = threading.Event()

        def serve() -> None:
            s.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = s.accept()
                    conn.close()
                except OSError:
                    continue

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        yield s.getsockname()[1]
        stop.set()
        t.join()


def test_check_tcp_open_port_time_in_seconds(listener: int) -> None:
    result = run(plugin("check_tcp"), "-H", "127.0.0.1", "-p", str(listener))
    assert result.status is Status.OK
    assert result.summary.startswith("TCP OK")
    assert result.unit == "seconds"
    assert result.metrics["time"] == result.value
    assert 0 <= result.value < 10  # type: ignore[operator]


def test_check_tcp_refused_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run(plugin("check_tcp"), "-H", "127.0.0.1", "-p", str(port))
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.CONNECTION_REFUSED
    assert result.summary.endswith("Connection refused")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = "<html>HIS 登录</html>".encode()
        self.send_response(200 if self.path == "/login" else 503)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    t.join()


def test_check_http_against_loopback(http_server: int) -> None:
    name = "check_curl" if (PLUGINS / "check_curl").exists() else "check_http"
    ok = run(plugin(name), "-H", "127.0.0.1", "-p", str(http_server), "-u", "/login", "-s", "登录")
    assert ok.status is Status.OK, ok.summary
    assert ok.summary.startswith("HTTP OK")
    assert ok.unit == "seconds"
    # check_http's size counts the headers too
    assert ok.metrics["size"] > len("<html>HIS 登录</html>".encode())
    assert set(ok.metrics) >= {"time", "size"}
    down = run(plugin(name), "-H", "127.0.0.1", "-p", str(http_server), "-u", "/down")
    assert down.status is Status.CRITICAL
    assert "503" in down.summary


def test_not_allowed_is_permission_denied_and_not_run(tmp_path: Path) -> None:
    flag = tmp_path / "ran"
    script = tmp_path / "touch.sh"
    script.write_text(f"#!/bin/sh\ntouch {flag}\necho OK\n")
    script.chmod(0o755)
    result = run(str(script), allow=False)
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED)
    assert result.summary == f"{script} is not in commands.allow of agent.yaml"
    assert not flag.exists()


def test_missing_and_not_executable(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "check_nothing"))
    assert (missing.status, missing.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
    script = tmp_path / "noexec.sh"
    script.write_text("#!/bin/sh\necho OK\n")
    script.chmod(0o644)
    noexec = run(str(script))
    assert (noexec.status, noexec.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED)


def test_environment_is_sanitized_and_no_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_HIS_DB_PASSWORD", "secret")
    script = tmp_path / "env.sh"
    script.write_text('#!/bin/sh\necho "OK - $(env | grep -v \'^PWD=\\|^SHLVL=\\|^_=\' | sort | tr \'\\n\' \' \')args=$1"\n')
    script.chmod(0o755)
    result = run(str(script), "$(id); `id`; x")
    # /bin/sh itself adds PWD, SHLVL and _; the agent passed only PATH and LANG
    assert result.summary == "OK - LANG=C PATH=/usr/bin:/bin args=$(id); `id`; x"
    assert "secret" not in result.summary


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    marker = f"xj-timeout-{uuid.uuid4().hex}"
    child = tmp_path / f"{marker}.sh"
    child.write_text("#!/bin/sh\nsleep 300\n")
    child.chmod(0o755)
    script = tmp_path / "hang.sh"
    script.write_text(f"#!/bin/sh\n{child} &\n{child}\n")
    script.chmod(0o755)
    result = run(str(script), timeout="0.5s")
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.TIMEOUT)
    assert result.summary == "hang.sh killed after 0.5s timeout"
    left: list[psutil.Process] = []
    for _ in range(50):
        left = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])
                and p.status() != psutil.STATUS_ZOMBIE]
        if not left:
            break
        time.sleep(0.1)
    assert left == []


def test_exit_code_outside_plugin_range_and_signal(tmp_path: Path) -> None:
    script = tmp_path / "weird.sh"
    script.write_text("#!/bin/sh\necho 'OK - but exit 7 | a=1'\nexit 7\n")
    script.chmod(0o755)
    result = run(str(script))
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.PROTOCOL_ERROR)
    assert result.summary == "weird.sh: exit code 7 is not a plugin status (0-3): OK - but exit 7"
    killer = tmp_path / "killed.sh"
    killer.write_text("#!/bin/sh\nkill -9 $$\n")
    killer.chmod(0o755)
    killed = run(str(killer))
    assert killed.status is Status.UNKNOWN
    assert "killed by signal 9" in killed.summary


def test_value_label_missing_is_noted(tmp_path: Path) -> None:
    result = run(plugin("check_dummy"), "0", "x", value_label="nope")
    assert result.status is Status.OK
    assert result.summary == "OK: x (no perfdata labelled 'nope')"


def test_flooding_output_is_capped(tmp_path: Path) -> None:
    script = tmp_path / "flood.sh"
    script.write_text("#!/bin/sh\nprintf 'OK - flood '\nhead -c 20000000 /dev/zero | tr '\\000' x\necho ' | a=1'\n")
    script.chmod(0o755)
    result = run(str(script), timeout="20s")
    assert result.status is Status.OK
    assert len(result.summary) == 500
    assert result.summary.startswith("OK - flood xxx")
    assert result.metrics == {}  # the perfdata came after the first 64 KiB


def test_background_child_holding_the_pipe_does_not_hold_the_result(tmp_path: Path) -> None:
    marker = f"xj-bg-{uuid.uuid4().hex}"
    child = tmp_path / f"{marker}.sh"
    child.write_text("#!/bin/sh\nsleep 30\n")
    child.chmod(0o755)
    script = tmp_path / "bg.sh"
    script.write_text(f"#!/bin/sh\n{child} &\necho 'OK - started | jobs=1'\nexit 0\n")
    script.chmod(0o755)
    try:
        result = run(str(script), timeout="2s")
        assert (result.status, result.value, result.summary) == (Status.OK, 1.0, "OK - started")
    finally:
        for p in psutil.process_iter(["cmdline"]):
            if marker in " ".join(p.info["cmdline"] or []):
                os.killpg(os.getpgid(p.pid), 9)
