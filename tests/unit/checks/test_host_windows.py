"""Host probes on Windows, fed psutil return values shaped exactly as psutil returns them there (recorded on
Windows Server 2019 with psutil 5.9/6.x): drive letters with NTFS and an empty CD-ROM, Windows CPU time fields,
and WindowsService.as_dict()."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import psutil
import pytest

from checks.context import RunContext
from checks.host import HostCpu, HostDisk, HostMemory, HostSwap, _cpu_busy
from checks.host_windows import HostWindowsService
from checks.result import Outcome, Status

# Field names as psutil defines them in psutil/_pswindows.py and psutil/_common.py.
WinCpuTimes = namedtuple("WinCpuTimes", ["user", "system", "idle", "interrupt", "dpc"])
WinVmem = namedtuple("WinVmem", ["total", "available", "percent", "used", "free"])
Swap = namedtuple("Swap", ["total", "used", "free", "percent", "sin", "sout"])
DiskPart = namedtuple("DiskPart", ["device", "mountpoint", "fstype", "opts"])
DiskUsage = namedtuple("DiskUsage", ["total", "used", "free", "percent"])

WIN_PARTITIONS = [
    DiskPart(device="C:\\", mountpoint="C:\\", fstype="NTFS", opts="rw,fixed"),
    DiskPart(device="D:\\", mountpoint="D:\\", fstype="NTFS", opts="rw,fixed"),
    DiskPart(device="E:\\", mountpoint="E:\\", fstype="", opts="cdrom"),
    DiskPart(device="Z:\\", mountpoint="Z:\\", fstype="NTFS", opts="rw,remote"),
]
WIN_USAGE = {
    "C:\\": DiskUsage(total=126_841_417_728, used=88_221_634_560, free=38_619_783_168, percent=69.6),
    "D:\\": DiskUsage(total=1_099_511_627_776, used=1_055_531_162_665, free=43_980_465_111, percent=96.0),
}


class FakeService:
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info

    def name(self) -> str:
        return str(self.info["name"])

    def as_dict(self) -> dict[str, Any]:
        return dict(self.info)


SERVICES = {
    "MSSQLSERVER": {
        "display_name": "SQL Server (MSSQLSERVER)", "binpath": '"C:\\Program Files\\Microsoft SQL Server\\'
        'MSSQL15.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe" -sMSSQLSERVER', "username": "NT Service\\MSSQLSERVER",
        "start_type": "automatic", "status": "running", "pid": 3412, "name": "MSSQLSERVER",
        "description": "Provides storage, processing and controlled access of data, and rapid transaction processing.",
    },
    "SQLSERVERAGENT": {
        "display_name": "SQL Server Agent (MSSQLSERVER)", "binpath": '"C:\\Program Files\\Microsoft SQL Server\\'
        'MSSQL15.MSSQLSERVER\\MSSQL\\Binn\\SQLAGENT.EXE" -i MSSQLSERVER', "username": "NT Service\\SQLSERVERAGENT",
        "start_type": "manual", "status": "stopped", "pid": None, "name": "SQLSERVERAGENT",
        "description": "Executes jobs, monitors SQL Server, fires alerts, and allows automation of some "
        "administrative tasks.",
    },
}


SERVICES["MSSQL$HIS"] = {**SERVICES["MSSQLSERVER"], "name": "MSSQL$HIS", "display_name": "SQL Server (HIS)",
                         "pid": 2210, "username": "NT Service\\MSSQL$HIS"}
SERVICES["MSSQL$LIS"] = {**SERVICES["MSSQLSERVER"], "name": "MSSQL$LIS", "display_name": "SQL Server (LIS)",
                         "status": "stopped", "pid": None, "username": "NT Service\\MSSQL$LIS"}
SERVICES["MSSQLFDLauncher"] = {**SERVICES["SQLSERVERAGENT"], "name": "MSSQLFDLauncher",
                               "display_name": "SQL Full-text Filter Daemon Launcher (MSSQLSERVER)"}


def fake_win_service_iter() -> list[FakeService]:
    return [FakeService(info) for info in SERVICES.values()]


def fake_win_service_get(name: str) -> FakeService:
    if name not in SERVICES:
        # psutil raises NoSuchProcess(pid=None, name=name, msg="service not found") for an unknown service name.
        raise psutil.NoSuchProcess(pid=None, name=name, msg="service not found")
    return FakeService(SERVICES[name])


@pytest.fixture
def windows_disks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: list(WIN_PARTITIONS))

    def usage(path: str) -> DiskUsage:
        if path not in WIN_USAGE:
            raise PermissionError(13, "The device is not ready")
        return WIN_USAGE[path]

    monkeypatch.setattr(psutil, "disk_usage", usage)


def test_windows_disk_fixed_drives_only_by_default(windows_disks: None) -> None:
    spec = HostDisk(id="host.disk", kind="host.disk", warn=">85", crit="> 95")
    results = {r.key: r for r in spec.probe(RunContext())}
    assert sorted(results) == ["C:\\", "D:\\"]
    assert results["C:\\"].status is Status.OK
    assert results["C:\\"].value == 69.6
    assert results["D:\\"].status is Status.CRITICAL
    assert results["D:\\"].summary.startswith("D:\\ 96.0% used, 41.0 GiB free of 1.0 TiB")
    assert results["D:\\"].metrics["free_bytes"] == 43_980_465_111


def test_windows_disk_listed_drives_match_without_case_or_backslash(windows_disks: None) -> None:
    spec = HostDisk(id="host.disk", kind="host.disk", mounts=["c:", "D:\\", "F:"])
    results = {r.key: r for r in spec.probe(RunContext())}
    assert results["C:\\"].status is Status.OK
    assert results["D:\\"].status is Status.OK
    assert results["F:"].status is Status.UNKNOWN
    assert results["F:"].outcome is Outcome.NOT_FOUND
    assert results["F:"].summary == "F: is not mounted"


def test_windows_cdrom_listed_but_not_ready_is_unknown(windows_disks: None) -> None:
    spec = HostDisk(id="host.disk", kind="host.disk", mounts=["E:"])
    [result] = spec.probe(RunContext())
    assert result.status is Status.UNKNOWN
    assert result.outcome is Outcome.PERMISSION_DENIED


def test_windows_cpu_times_fields() -> None:
    before = WinCpuTimes(user=1000.0, system=500.0, idle=8000.0, interrupt=10.0, dpc=5.0)
    after = WinCpuTimes(user=1030.0, system=510.0, idle=8058.0, interrupt=11.0, dpc=6.0)
    busy, metrics = _cpu_busy(before, after)
    assert busy == pytest.approx(42.0)
    assert metrics["user_percent"] == 30.0
    assert metrics["interrupt_percent"] == 1.0
    assert "iowait_percent" not in metrics


def test_windows_cpu_probe_uses_state_between_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = iter([
        WinCpuTimes(user=0.0, system=0.0, idle=0.0, interrupt=0.0, dpc=0.0),
        WinCpuTimes(user=10.0, system=10.0, idle=80.0, interrupt=0.0, dpc=0.0),
        WinCpuTimes(user=100.0, system=10.0, idle=90.0, interrupt=0.0, dpc=0.0),
    ])
    monkeypatch.setattr(psutil, "cpu_times", lambda percpu=False: next(samples))
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8)
    spec = HostCpu(id="win.cpu.state", kind="host.cpu", crit="> 80", first_sample=0.001)
    first = spec.probe(RunContext())[0]
    assert first.value == 20.0
    assert first.status is Status.OK
    second = spec.probe(RunContext())[0]
    assert second.value == 90.0
    assert second.status is Status.CRITICAL
    assert second.summary == "CPU 90.0% busy on 8 cores (critical > 80)"


def test_windows_memory_and_pagefile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "virtual_memory", lambda: WinVmem(
        total=34_359_738_368, available=2_147_483_648, percent=93.8, used=32_212_254_720, free=2_147_483_648))
    monkeypatch.setattr(psutil, "swap_memory", lambda: Swap(
        total=5_100_273_664, used=1_020_054_732, free=4_080_218_932, percent=20.0, sin=0, sout=0))
    mem = HostMemory(id="m", kind="host.memory", warn="> 90", crit="> 97").probe(RunContext())[0]
    assert (mem.status, mem.value) == (Status.WARNING, 93.8)
    assert mem.metrics["available_bytes"] == 2_147_483_648
    avail = HostMemory(id="m", kind="host.memory", measure="available_bytes", crit="< 4GiB").probe(RunContext())[0]
    assert (avail.status, avail.unit) == (Status.CRITICAL, "bytes")
    swap = HostSwap(id="s", kind="host.swap", warn="> 50").probe(RunContext())[0]
    assert (swap.status, swap.value) == (Status.OK, 20.0)


def test_windows_services_running_stopped_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "win_service_get", fake_win_service_get, raising=False)
    spec = HostWindowsService(id="mssql.services", kind="host.windows_service",
                              services=["MSSQLSERVER", "SQLSERVERAGENT", "MSSQL$PACS"], expect_start_type="automatic")
    results = {r.key: r for r in spec.probe(RunContext())}
    assert results["MSSQLSERVER"].status is Status.OK
    assert results["MSSQLSERVER"].summary == (
        "SQL Server (MSSQLSERVER) (MSSQLSERVER) is running, start automatic, pid 3412, as NT Service\\MSSQLSERVER")
    agent = results["SQLSERVERAGENT"]
    assert agent.status is Status.CRITICAL
    assert agent.summary.endswith("is stopped, start manual, as NT Service\\SQLSERVERAGENT "
                                  "(expected running; expected start automatic)")
    missing = results["MSSQL$PACS"]
    assert (missing.status, missing.outcome) == (Status.CRITICAL, Outcome.NOT_FOUND)


def test_windows_service_expected_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "win_service_get", fake_win_service_get, raising=False)
    spec = HostWindowsService(id="agent.off", kind="host.windows_service", services=["SQLSERVERAGENT"],
                              expect_state="stopped")
    [result] = spec.probe(RunContext())
    assert (result.status, result.value) == (Status.OK, 1.0)


def test_windows_service_on_linux_is_unknown_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(psutil, "win_service_get", raising=False)
    spec = HostWindowsService(id="svc", kind="host.windows_service", services=["MSSQLSERVER"])
    [result] = spec.probe(RunContext())
    assert (result.status, result.outcome, result.key) == (Status.UNKNOWN, Outcome.NOT_FOUND, "MSSQLSERVER")


def test_windows_service_patterns_cover_named_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "win_service_get", fake_win_service_get, raising=False)
    monkeypatch.setattr(psutil, "win_service_iter", fake_win_service_iter, raising=False)
    spec = HostWindowsService(id="mssql.instances", kind="host.windows_service",
                              services=["mssql$*", "SQLAgent$*"])
    results = {r.key: r for r in spec.probe(RunContext())}
    assert sorted(results) == ["MSSQL$HIS", "MSSQL$LIS", "SQLAgent$*"]
    assert results["MSSQL$HIS"].status is Status.OK
    assert results["MSSQL$LIS"].status is Status.CRITICAL
    assert (results["SQLAgent$*"].status, results["SQLAgent$*"].outcome) == (Status.CRITICAL, Outcome.NOT_FOUND)
    assert results["SQLAgent$*"].summary == "no service matches SQLAgent$*"
