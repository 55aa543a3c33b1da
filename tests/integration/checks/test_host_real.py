"""Host probes against this machine for real: its disks, memory, processes, sockets and files."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from checks.context import RunContext
from checks.host import HostCpu, HostDisk, HostFile, HostInodes, HostLoad, HostMemory, HostPort, HostProcess, HostUptime
from checks.pack import load_checks
from checks.result import Outcome, Status

pytestmark = pytest.mark.integration


def test_disk_root_matches_statvfs() -> None:
    [result] = HostDisk(id="d", kind="host.disk", mounts=["/"]).probe(RunContext())
    st = os.statvfs("/")
    assert result.key == "/"
    assert result.metrics["total_bytes"] == st.f_blocks * st.f_frsize
    total, _used, free = shutil.disk_usage("/")
    assert result.metrics["total_bytes"] == total
    # free changes as other processes write; the same order of magnitude is what we can assert
    assert abs(result.metrics["free_bytes"] - free) < total * 0.01
    assert 0 < result.value < 100  # type: ignore[operator]


def test_disk_default_skips_pseudo_filesystems() -> None:
    results = HostDisk(id="d", kind="host.disk").probe(RunContext())
    keys = {r.key for r in results}
    assert "/" in keys
    assert not keys & {"/proc", "/sys", "/dev", "/dev/shm", "/dev/pts"}
    assert all(r.status is not Status.UNKNOWN for r in results)


def test_disk_listed_pseudo_filesystem_is_measured_and_missing_is_not_found() -> None:
    results = {r.key: r for r in HostDisk(id="d", kind="host.disk", mounts=["/dev/shm", "/no/such/mount"]).probe(
        RunContext())}
    assert results["/dev/shm"].status is Status.OK
    assert results["/no/such/mount"].status is Status.UNKNOWN
    assert results["/no/such/mount"].outcome is Outcome.NOT_FOUND


def test_disk_thresholds_apply_to_free_bytes() -> None:
    spec = HostDisk.model_validate({"id": "d", "kind": "host.disk", "mounts": ["/"], "measure": "free_bytes",
                                    "crit": "< 1TiB"})
    [result] = spec.probe(RunContext())
    _total, _used, free = shutil.disk_usage("/")
    assert result.unit == "bytes"
    assert result.status is (Status.CRITICAL if free < 1024**4 else Status.OK)


def test_inodes_root_matches_statvfs() -> None:
    [result] = HostInodes(id="i", kind="host.inodes", mounts=["/"]).probe(RunContext())
    st = os.statvfs("/")
    assert result.metrics["inodes_total"] == st.f_files


def test_memory_matches_proc_meminfo() -> None:
    [result] = HostMemory(id="m", kind="host.memory").probe(RunContext())
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
    assert result.metrics["total_bytes"] == meminfo["MemTotal"]
    assert abs(result.metrics["available_bytes"] - meminfo["MemAvailable"]) < meminfo["MemTotal"] * 0.05
    assert 0 < result.value < 100  # type: ignore[operator]


def test_cpu_sees_a_busy_process() -> None:
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        spec = HostCpu(id=f"cpu.{uuid.uuid4().hex}", kind="host.cpu", first_sample=0.5)
        [result] = spec.probe(RunContext())
    finally:
        spin.kill()
        spin.wait()
    assert result.value is not None and result.value > 0
    assert result.metrics["user_percent"] > 0
    assert result.metrics["cores"] == psutil.cpu_count()


def test_load_per_core_divides_by_cores() -> None:
    [raw] = HostLoad(id="l", kind="host.load", period=1).probe(RunContext())
    [per] = HostLoad(id="l", kind="host.load", period=1, per_core=True).probe(RunContext())
    cores = psutil.cpu_count()
    assert per.metrics["cores"] == cores
    assert per.value == pytest.approx(per.metrics["load1"] / cores, abs=0.001)
    assert raw.value == pytest.approx(raw.metrics["load1"], abs=0.001)


@pytest.fixture
def marked_sleepers() -> Iterator[str]:
    marker = f"xunjian-test-{uuid.uuid4().hex}"
    procs = [subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(60)", marker]) for _ in range(2)]
    try:
        yield marker
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_process_count_rss_and_min_max(marked_sleepers: str) -> None:
    spec = HostProcess(id="p", kind="host.process", cmdline=marked_sleepers, min_count=1)
    [result] = spec.probe(RunContext())
    assert result.value == 2
    assert result.status is Status.OK
    assert result.metrics["rss_bytes"] > 1024 * 1024
    [too_many] = HostProcess(id="p", kind="host.process", cmdline=marked_sleepers, max_count=1).probe(RunContext())
    assert too_many.status is Status.CRITICAL
    assert too_many.summary.endswith("(expected at most 1)")
    [warned] = HostProcess.model_validate({"id": "p", "kind": "host.process", "cmdline": marked_sleepers,
                                           "warn": "> 1"}).probe(RunContext())
    assert warned.status is Status.WARNING


def test_process_absent_is_critical() -> None:
    [result] = HostProcess(id="p", kind="host.process", name=f"nope-{uuid.uuid4().hex[:8]}").probe(RunContext())
    assert (result.status, result.value) == (Status.CRITICAL, 0)


def test_process_by_name_finds_this_python() -> None:
    name = psutil.Process().name()
    [result] = HostProcess(id="p", kind="host.process", name=name).probe(RunContext())
    assert result.value is not None and result.value >= 1


def test_port_listening_tcp_and_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        tport, uport = tcp.getsockname()[1], udp.getsockname()[1]
        [t] = HostPort(id="t", kind="host.port", port=tport).probe(RunContext())
        [u] = HostPort(id="u", kind="host.port", port=uport, protocol="udp").probe(RunContext())
        assert (t.status, t.key, t.value) == (Status.OK, f"tcp/{tport}", 1.0)
        assert u.status is Status.OK
    [closed] = HostPort(id="t", kind="host.port", port=tport).probe(RunContext())
    assert (closed.status, closed.outcome) == (Status.CRITICAL, Outcome.NOT_FOUND)


def test_port_fallback_to_proc_net_when_psutil_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(kind: str = "inet") -> None:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", refused)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
        tcp.bind(("::1", 0))
        tcp.listen()
        [t] = HostPort(id="t", kind="host.port", port=tcp.getsockname()[1]).probe(RunContext())
    assert t.status is Status.OK


def test_file_newest_age_size_and_missing(tmp_path: Path) -> None:
    old = tmp_path / "his_daily_20261120.csv"
    new = tmp_path / "his_daily_20261121.csv"
    old.write_bytes(b"x" * 10)
    new.write_bytes(b"y" * 2048)
    now = time.time()
    os.utime(old, (now - 3 * 86400, now - 3 * 86400))
    os.utime(new, (now - 7200, now - 7200))
    ctx = RunContext(clock=lambda: now)
    spec = HostFile.model_validate({"id": "f", "kind": "host.file", "path": str(tmp_path / "his_daily_*.csv"),
                                    "warn": "> 1h", "crit": "> 26h"})
    [age] = spec.probe(ctx)
    assert age.value == pytest.approx(7200, abs=1)
    assert age.status is Status.WARNING
    assert age.metrics == {"age_seconds": pytest.approx(7200, abs=1), "size_bytes": 2048.0, "files": 2.0}
    [size] = HostFile.model_validate({"id": "f", "kind": "host.file", "path": str(new), "measure": "size",
                                      "crit": "< 1KiB"}).probe(ctx)
    assert (size.value, size.status) == (2048.0, Status.OK)
    [missing] = HostFile(id="f", kind="host.file", path=str(tmp_path / "nightly_*.dmp")).probe(ctx)
    assert (missing.status, missing.outcome) == (Status.CRITICAL, Outcome.NOT_FOUND)


def test_uptime_and_reboot_detection_across_agent_restarts(tmp_path: Path) -> None:
    spec = HostUptime(id="host.uptime", kind="host.uptime")
    [first] = spec.probe(RunContext(state_dir=tmp_path))
    assert first.status is Status.OK
    assert first.value == pytest.approx(time.time() - psutil.boot_time(), abs=5)
    # The state a previous agent process left: it had seen the host up for much longer than now.
    state = tmp_path / "uptime" / "host.uptime.json"
    state.write_text(json.dumps({"uptime_seconds": first.value + 86400 * 30}))
    [after_reboot] = spec.probe(RunContext(state_dir=tmp_path))
    assert after_reboot.status is Status.WARNING
    assert after_reboot.summary.startswith("rebooted: up ")
    [next_run] = spec.probe(RunContext(state_dir=tmp_path))
    assert next_run.status is Status.OK


def test_host_linux_pack_runs_here() -> None:
    checks = load_checks(["builtin:host-linux"])
    ran = {}
    for spec in checks.specs:
        if spec.kind == "agent.spool":
            continue
        ran[spec.id] = spec.probe(RunContext())
    assert set(ran) == {"host.cpu", "host.memory", "host.swap", "host.disk", "host.inodes", "host.load", "host.uptime"}
    for results in ran.values():
        assert results and all(r.status is not Status.UNKNOWN for r in results)
