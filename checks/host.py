"""Host probes through psutil (Linux and Windows): cpu, memory, swap, disks, inodes, load, uptime, processes,
listening ports and files. Windows services live in checks.host_windows, log files in checks.logwatch."""

from __future__ import annotations

import glob
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import psutil
from pydantic import Field, field_validator, model_validator

from checks.context import RunContext
from checks.probe_state import ProbeState
from checks.result import Outcome, Result, Status, unknown
from checks.spec import CheckSpec, Duration, Regex

PSEUDO_FSTYPES: frozenset[str] = frozenset({
    "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devfs", "devpts", "devtmpfs",
    "efivarfs", "fusectl", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "hugetlbfs", "iso9660", "mqueue",
    "nsfs", "overlay", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs", "selinuxfs", "squashfs", "sysfs",
    "tmpfs", "tracefs", "udf", "nfsd", "none",
})
"""Filesystems without real disk space (or read-only images that are always full): skipped unless listed."""
NETWORK_FSTYPES: frozenset[str] = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p"})
"""Skipped unless listed: a hung file server would block statvfs and with it the agent's worker."""


_DRIVE = re.compile(r"^[A-Za-z]:(?:\\|/)?$")


def _mount_key(mount: str) -> str:
    """Compare mounts the way the OS does: Windows drives without case or trailing backslash ("c:" == "C:\\").
    Called for every line of the mount table on every run, hence the test before the regular expression."""
    if mount[1:2] == ":" and _DRIVE.match(mount):
        return mount[0].upper() + ":"
    return mount.rstrip("/") or "/"


class Mount(NamedTuple):
    device: str
    mountpoint: str
    fstype: str
    options: str
    """As the mount table has them, comma-separated."""

    @property
    def opts(self) -> frozenset[str]:
        return frozenset(o.strip() for o in self.options.split(","))


def real_mounts(listed: Iterable[str] = ()) -> tuple[list[Mount], list[str]]:
    """Mounts to measure and the listed ones that are not mounted.

    With nothing listed: every real filesystem (no pseudo, network, CD-ROM or file bind mounts), one
    mountpoint per device. With a list: exactly those, whatever their type.
    """
    parts = psutil.disk_partitions(all=True)
    listed = list(listed)
    wanted = [_mount_key(m) for m in listed]
    by_key: dict[str, Mount] = {}
    for p in parts:
        by_key[_mount_key(p.mountpoint)] = Mount(p.device, p.mountpoint, p.fstype, p.opts)
    if wanted:
        found = [by_key[k] for k in dict.fromkeys(wanted) if k in by_key]
        missing = [m for m, k in zip(listed, wanted, strict=True) if k not in by_key]
        return found, missing
    out: list[Mount] = []
    devices: set[str] = set()
    for m in by_key.values():
        if m.fstype in PSEUDO_FSTYPES or m.fstype in NETWORK_FSTYPES or not m.fstype:
            continue
        if m.opts & {"cdrom", "remote"}:
            continue
        if m.device in devices or os.path.isfile(m.mountpoint):
            continue
        devices.add(m.device)
        out.append(m)
    return out, []


def _os_error_outcome(exc: OSError) -> Outcome:
    if isinstance(exc, PermissionError):
        return Outcome.PERMISSION_DENIED
    if isinstance(exc, FileNotFoundError):
        return Outcome.NOT_FOUND
    return Outcome.INTERNAL_ERROR


def _pct(x: float) -> str:
    return f"{x:.1f}%"


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _duration(s: float) -> str:
    s = abs(s)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


class _CpuSampler:
    """CPU busy percent between two calls, per check: psutil.cpu_percent(interval=None) needs a previous call,
    so the first run samples for a short while instead of reporting a meaningless 0."""

    def __init__(self) -> None:
        self._last: dict[str, Any] = {}
        self._lock = threading.Lock()

    def percent(self, check_id: str, first_sample: float) -> tuple[float, dict[str, float]]:
        with self._lock:
            before = self._last.get(check_id)
        if before is None:
            before = psutil.cpu_times()
            time.sleep(first_sample)
        after = psutil.cpu_times()
        with self._lock:
            self._last[check_id] = after
        return _cpu_busy(before, after)


def _cpu_busy(before: Any, after: Any) -> tuple[float, dict[str, float]]:
    """The same arithmetic as psutil.cpu_percent: busy = total - idle - iowait; guest time is inside user."""
    def total(t: Any) -> float:
        return float(sum(t)) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)

    dt = total(after) - total(before)
    if dt <= 0:
        return 0.0, {}
    metrics: dict[str, float] = {}
    for name in after._fields:
        if name in {"guest", "guest_nice"}:
            continue
        metrics[f"{name}_percent"] = round(max(0.0, (getattr(after, name) - getattr(before, name)) / dt * 100), 2)
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0.0) - getattr(before, "iowait", 0.0))
    busy = max(0.0, min(100.0, (dt - idle) / dt * 100))
    return round(busy, 2), metrics


CPU_SAMPLER = _CpuSampler()


class HostCpu(CheckSpec):
    kind: Literal["host.cpu"] = "host.cpu"
    value_unit: ClassVar[str | None] = "percent"
    kind_doc: ClassVar[str] = (
        "CPU busy percent over all cores since this check's previous run (psutil.cpu_times; iowait counts as "
        "idle, as in psutil.cpu_percent). The first run samples for `first_sample`. Metrics: one "
        "`<state>_percent` per CPU time state the OS reports (user, system, iowait, steal...)."
    )
    example: ClassVar[str] = 'id: host.cpu\nkind: host.cpu\nwarn: "> 85"\ncrit: "> 95"\nraise_after: 3\n'
    first_sample: Duration = Field(0.5, description="How long the first run samples, when there is no previous run (at most 5s).")

    @field_validator("first_sample")
    @classmethod
    def _short_sample(cls, v: float) -> float:
        if not 0 < v <= 5:
            raise ValueError(f"expected a duration above 0 and at most 5s, got {v:g}s")
        return v

    def probe(self, ctx: RunContext) -> list[Result]:
        busy, metrics = CPU_SAMPLER.percent(self.id, min(self.first_sample, ctx.remaining(self.first_sample) / 2))
        cores = psutil.cpu_count() or 1
        metrics["cores"] = float(cores)
        return [self.measured(busy, unit="percent", summary=f"CPU {_pct(busy)} busy on {cores} cores", metrics=metrics)]


class HostMemory(CheckSpec):
    kind: Literal["host.memory"] = "host.memory"
    value_unit: ClassVar[str | None] = "percent"
    kind_doc: ClassVar[str] = (
        "Physical memory. The value is the percent in use (psutil's `percent`: total minus available, so page "
        "cache that can be reclaimed is not counted) or, with `measure: available_bytes`, the bytes still "
        "available. Metrics: total_bytes, available_bytes, used_bytes, used_percent."
    )
    example: ClassVar[str] = 'id: host.memory\nkind: host.memory\nwarn: "> 90"\ncrit: "> 97"\nraise_after: 3\n'
    measure: Literal["used_percent", "available_bytes"] = Field(
        "used_percent", description="Which figure the thresholds apply to.")

    def threshold_unit(self) -> str | None:
        return "bytes" if self.measure == "available_bytes" else "percent"

    def probe(self, ctx: RunContext) -> list[Result]:
        vm = psutil.virtual_memory()
        metrics = {
            "total_bytes": float(vm.total),
            "available_bytes": float(vm.available),
            "used_bytes": float(vm.total - vm.available),
            "used_percent": float(vm.percent),
        }
        summary = f"memory {_pct(vm.percent)} used, {_bytes(vm.available)} available of {_bytes(vm.total)}"
        if self.measure == "available_bytes":
            return [self.measured(float(vm.available), unit="bytes", summary=summary, metrics=metrics)]
        return [self.measured(float(vm.percent), unit="percent", summary=summary, metrics=metrics)]


class HostSwap(CheckSpec):
    kind: Literal["host.swap"] = "host.swap"
    value_unit: ClassVar[str | None] = "percent"
    kind_doc: ClassVar[str] = (
        "Swap (Linux) or page file (Windows) percent in use. A host without swap reports OK with value 0. "
        "Metrics: total_bytes, used_bytes, swapped_in_bytes and swapped_out_bytes (cumulative, Linux)."
    )
    example: ClassVar[str] = 'id: host.swap\nkind: host.swap\nwarn: "> 50"\ncrit: "> 80"\nraise_after: 3\n'

    def probe(self, ctx: RunContext) -> list[Result]:
        sw = psutil.swap_memory()
        metrics = {"total_bytes": float(sw.total), "used_bytes": float(sw.used),
                   "swapped_in_bytes": float(sw.sin), "swapped_out_bytes": float(sw.sout)}
        if sw.total == 0:
            return [self.measured(0.0, unit="percent", summary="no swap configured", metrics=metrics)]
        summary = f"swap {_pct(sw.percent)} used ({_bytes(sw.used)} of {_bytes(sw.total)})"
        return [self.measured(float(sw.percent), unit="percent", summary=summary, metrics=metrics)]


class _MountsSpec(CheckSpec):
    mounts: list[str] = Field(
        default_factory=list,
        description="Mountpoints (/, /data) or drives (C:, D:) to measure; empty means every real filesystem. "
        "A listed mount that is not mounted is UNKNOWN (not_found). Pseudo filesystems (proc, sysfs, tmpfs, "
        "devtmpfs, overlay, squashfs...), network filesystems and CD-ROMs are measured only when listed.",
    )

    def _each_mount(self) -> tuple[list[Mount], list[Result]]:
        mounts, missing = real_mounts(self.mounts)
        lost = [unknown(self.id, Outcome.NOT_FOUND, f"{m} is not mounted", target=self.target or "", key=m)
                for m in missing]
        return mounts, lost


class HostDisk(_MountsSpec):
    kind: Literal["host.disk"] = "host.disk"
    value_unit: ClassVar[str | None] = "percent"
    kind_doc: ClassVar[str] = (
        "Disk space per mount (key = mountpoint, e.g. `/data` or `C:\\`). The value is the percent used as `df` "
        "shows it (space reserved for root counts as unavailable) or, with `measure: free_bytes`, the bytes "
        "free. Metrics: total_bytes, used_bytes, free_bytes, used_percent."
    )
    example: ClassVar[str] = (
        'id: his.disk.data\nkind: host.disk\nmounts: ["/", "/data"]\nwarn: "> 85"\ncrit: "> 95"\n'
    )
    measure: Literal["used_percent", "free_bytes"] = Field("used_percent", description="Which figure the thresholds apply to.")

    def threshold_unit(self) -> str | None:
        return "bytes" if self.measure == "free_bytes" else "percent"

    def probe(self, ctx: RunContext) -> list[Result]:
        mounts, results = self._each_mount()
        for m in mounts:
            try:
                du = psutil.disk_usage(m.mountpoint)
            except OSError as exc:
                results.append(unknown(self.id, _os_error_outcome(exc), f"{m.mountpoint}: {exc.strerror or exc}",
                                       target=self.target or "", key=m.mountpoint))
                continue
            metrics = {"total_bytes": float(du.total), "used_bytes": float(du.used), "free_bytes": float(du.free),
                       "used_percent": float(du.percent)}
            summary = f"{m.mountpoint} {_pct(du.percent)} used, {_bytes(du.free)} free of {_bytes(du.total)}"
            value = float(du.free) if self.measure == "free_bytes" else float(du.percent)
            unit = "bytes" if self.measure == "free_bytes" else "percent"
            results.append(self.measured(value, unit=unit, summary=summary, key=m.mountpoint, metrics=metrics))
        return results


class HostInodes(_MountsSpec):
    kind: Literal["host.inodes"] = "host.inodes"
    value_unit: ClassVar[str | None] = "percent"
    kind_doc: ClassVar[str] = (
        "Inodes used per mount (os.statvfs; Linux and Unix only: on Windows the result is UNKNOWN not_found). "
        "Filesystems without a fixed inode table (btrfs, some FUSE) report f_files = 0: they are skipped unless "
        "listed, and then OK with value 0. Metrics: inodes_total, inodes_free, inodes_used."
    )
    example: ClassVar[str] = 'id: host.inodes\nkind: host.inodes\nwarn: "> 80"\ncrit: "> 95"\n'

    def probe(self, ctx: RunContext) -> list[Result]:
        statvfs = getattr(os, "statvfs", None)
        if statvfs is None:
            return [unknown(self.id, Outcome.NOT_FOUND, "inodes are not reported on this OS", target=self.target or "")]
        mounts, results = self._each_mount()
        for m in mounts:
            try:
                st = statvfs(m.mountpoint)
            except OSError as exc:
                results.append(unknown(self.id, _os_error_outcome(exc), f"{m.mountpoint}: {exc.strerror or exc}",
                                       target=self.target or "", key=m.mountpoint))
                continue
            if st.f_files == 0:
                if self.mounts:
                    results.append(self.measured(0.0, unit="percent", key=m.mountpoint,
                                                 summary=f"{m.mountpoint} has no fixed inode table"))
                continue
            used = st.f_files - st.f_ffree
            pct = used / st.f_files * 100
            metrics = {"inodes_total": float(st.f_files), "inodes_free": float(st.f_ffree), "inodes_used": float(used)}
            summary = f"{m.mountpoint} {_pct(pct)} of inodes used ({st.f_ffree} free of {st.f_files})"
            results.append(self.measured(round(pct, 2), unit="percent", summary=summary, key=m.mountpoint,
                                         metrics=metrics))
        return results


class HostLoad(CheckSpec):
    kind: Literal["host.load"] = "host.load"
    value_unit: ClassVar[str | None] = "load"
    kind_doc: ClassVar[str] = (
        "Load average over 1, 5 or 15 minutes (`period`), optionally divided by the number of logical cores "
        "(`per_core`) so one threshold fits every server. On Windows psutil emulates it from the processor "
        "queue length; its first few minutes read low. Metrics: load1, load5, load15 (raw) and cores."
    )
    example: ClassVar[str] = (
        'id: host.load\nkind: host.load\nperiod: 5\nper_core: true\nwarn: "> 1.5"\ncrit: "> 3"\nraise_after: 3\n'
    )
    period: Literal[1, 5, 15] = Field(5, description="Minutes of the load average the thresholds apply to.")
    per_core: bool = Field(False, description="Divide by the number of logical cores.")

    def probe(self, ctx: RunContext) -> list[Result]:
        load1, load5, load15 = psutil.getloadavg()
        cores = psutil.cpu_count() or 1
        raw = {1: load1, 5: load5, 15: load15}[self.period]
        value = raw / cores if self.per_core else raw
        metrics = {"load1": load1, "load5": load5, "load15": load15, "cores": float(cores)}
        per = f" ({value:.2f} per core, {cores} cores)" if self.per_core else f" on {cores} cores"
        summary = f"load {load1:.2f} {load5:.2f} {load15:.2f}{per}"
        return [self.measured(round(value, 3), unit="load", summary=summary, metrics=metrics)]


class HostUptime(CheckSpec):
    kind: Literal["host.uptime"] = "host.uptime"
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Seconds since boot. When the uptime is lower than at this check's previous run the host rebooted: the "
        "result is WARNING with \"rebooted\" in the summary (at least; thresholds may make it worse). The last "
        "uptime is kept in the agent's state directory so a reboot that also restarted the agent is noticed."
    )
    example: ClassVar[str] = 'id: host.uptime\nkind: host.uptime\ninterval: 5m\nwarn: "< 10m"\n'

    def probe(self, ctx: RunContext) -> list[Result]:
        now = ctx.clock()
        uptime = max(0.0, now - psutil.boot_time())
        state = ProbeState(ctx, "uptime", self.id)
        last = state.load().get("uptime_seconds")
        state.save({"uptime_seconds": uptime, "at": now})
        result = self.measured(round(uptime, 1), unit="seconds", summary=f"up {_duration(uptime)}")
        if isinstance(last, (int, float)) and uptime < last:
            result.summary = f"rebooted: up {_duration(uptime)}, was up {_duration(last)} at the previous run"
            result.status = max(result.status, Status.WARNING)
        return [result]


class HostProcess(CheckSpec):
    kind: Literal["host.process"] = "host.process"
    value_unit: ClassVar[str | None] = "count"
    kind_doc: ClassVar[str] = (
        "Processes matching `name` (exact process name, e.g. java, nginx, sqlservr.exe) and/or `cmdline` (a regular "
        "expression searched in the command line joined by spaces, e.g. org.apache.catalina.startup.Bootstrap). "
        "The value is the count; fewer than `min_count` or more than `max_count` is CRITICAL, and warn/crit "
        "thresholds apply to the count as well. Metrics: count, rss_bytes (sum), cpu_seconds (sum)."
    )
    example: ClassVar[str] = (
        "id: his.tomcat\nkind: host.process\nname: java\ncmdline: org\\.apache\\.catalina\\.startup\\.Bootstrap\n"
        "min_count: 1\nmax_count: 1\n"
    )
    name: str | None = Field(None, description="Exact process name.")
    cmdline: Regex | None = Field(None, description="Regular expression searched in the command line.")
    min_count: int = Field(1, ge=0, description="Fewer matching processes than this is CRITICAL.")
    max_count: int | None = Field(None, ge=0, description="More matching processes than this is CRITICAL.")

    @model_validator(mode="after")
    def _something_to_match(self) -> HostProcess:
        if not self.name and not self.cmdline:
            raise ValueError("set name or cmdline (or both) to say which processes to count")
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError("max_count is below min_count")
        return self

    def probe(self, ctx: RunContext) -> list[Result]:
        pattern = re.compile(self.cmdline) if self.cmdline else None
        count, rss, cpu = 0, 0, 0.0
        for proc in psutil.process_iter(["name", "cmdline", "memory_info", "cpu_times"]):
            info = proc.info
            if self.name and info.get("name") != self.name:
                continue
            if pattern is not None and not pattern.search(" ".join(info.get("cmdline") or [])):
                continue
            count += 1
            if info.get("memory_info") is not None:
                rss += info["memory_info"].rss
            if info.get("cpu_times") is not None:
                cpu += info["cpu_times"].user + info["cpu_times"].system
        what = " ".join(p for p in (self.name or "", f"/{self.cmdline}/" if self.cmdline else "") if p)
        metrics = {"count": float(count), "rss_bytes": float(rss), "cpu_seconds": round(cpu, 2)}
        summary = f"{count} {what} process{'es' if count != 1 else ''}" + (f", {_bytes(rss)} RSS" if count else "")
        result = self.measured(float(count), unit="count", summary=summary, metrics=metrics)
        if count < self.min_count:
            result.status, result.summary = Status.CRITICAL, f"{summary} (expected at least {self.min_count})"
        elif self.max_count is not None and count > self.max_count:
            result.status, result.summary = Status.CRITICAL, f"{summary} (expected at most {self.max_count})"
        return [result]


_TCP_LISTEN = "0A"
"""TCP state LISTEN in /proc/net/tcp; UDP sockets have no listen state, any bound socket counts."""


def _proc_net_ports(protocol: str) -> set[int] | None:
    """Ports listening per /proc/net (readable without privileges), or None where there is no /proc."""
    ports: set[int] = set()
    found = False
    for family in ("", "6"):
        path = Path(f"/proc/net/{protocol}{family}")
        try:
            lines = path.read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if len(fields) < 4:
                continue
            local, state = fields[1], fields[3]
            if protocol == "tcp" and state != _TCP_LISTEN:
                continue
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports if found else None


def listening_ports(protocol: Literal["tcp", "udp"]) -> set[int]:
    """Ports with a listening TCP socket or a bound UDP socket; falls back to /proc/net when psutil is refused."""
    try:
        conns = psutil.net_connections(kind=protocol)
    except (psutil.AccessDenied, PermissionError):
        ports = _proc_net_ports(protocol)
        if ports is None:
            raise
        return ports
    if protocol == "tcp":
        return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}
    return {c.laddr.port for c in conns if c.laddr and not c.raddr}


class HostPort(CheckSpec):
    kind: Literal["host.port"] = "host.port"
    kind_doc: ClassVar[str] = (
        "A local TCP port in LISTEN state or a bound UDP port (psutil.net_connections; when that is refused, "
        "/proc/net/tcp and /proc/net/udp). No listener is CRITICAL (not_found). The value is 1 when listening."
    )
    example: ClassVar[str] = "id: his.port.http\nkind: host.port\nport: 8080\nprotocol: tcp\npriority: high\n"
    port: int = Field(ge=1, le=65535, description="Port number.")
    protocol: Literal["tcp", "udp"] = Field("tcp", description="tcp or udp.")

    def probe(self, ctx: RunContext) -> list[Result]:
        key = f"{self.protocol}/{self.port}"
        try:
            ports = listening_ports(self.protocol)
        except (psutil.AccessDenied, PermissionError) as exc:
            return [unknown(self.id, Outcome.PERMISSION_DENIED, f"cannot list sockets: {exc}",
                            target=self.target or "", key=key)]
        if self.port in ports:
            return [self.measured(1.0, unit="", summary=f"{self.protocol.upper()} port {self.port} listening", key=key)]
        return [Result(check_id=self.id, status=Status.CRITICAL, outcome=Outcome.NOT_FOUND, target=self.target or "",
                       key=key, value=0.0, summary=f"nothing listens on {self.protocol.upper()} port {self.port}")]


class HostFile(CheckSpec):
    kind: Literal["host.file"] = "host.file"
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "The newest file matching `path` (a glob such as /data/export/his_*.csv): its age in seconds (the value, "
        "with `measure: age`) or size in bytes (`measure: size`). No matching file is CRITICAL (not_found): "
        "typical use is the nightly export or backup file that must exist, be recent and not be empty. "
        "Metrics: age_seconds, size_bytes, files (how many matched)."
    )
    example: ClassVar[str] = (
        'id: his.export.nightly\nkind: host.file\npath: /data/export/his_daily_*.csv\nwarn: "> 26h"\n'
        'crit: "> 30h"\nschedule: "30 7 * * *"\n'
    )
    path: str = Field(description="File path or glob; the newest match (by modification time) is measured.")
    measure: Literal["age", "size"] = Field("age", description="age (seconds since modified) or size (bytes).")

    def threshold_unit(self) -> str | None:
        return "bytes" if self.measure == "size" else "seconds"

    def probe(self, ctx: RunContext) -> list[Result]:
        newest: tuple[float, int, str] | None = None
        count = 0
        for p in glob.glob(os.path.expanduser(self.path)):
            try:
                st = os.stat(p)
            except OSError:
                continue
            if not os.path.isfile(p):
                continue
            count += 1
            if newest is None or st.st_mtime > newest[0]:
                newest = (st.st_mtime, st.st_size, p)
        if newest is None:
            return [Result(check_id=self.id, status=Status.CRITICAL, outcome=Outcome.NOT_FOUND, target=self.target or "",
                           key=self.path, summary=f"no file matches {self.path}")]
        mtime, size, name = newest
        age = max(0.0, ctx.clock() - mtime)
        metrics = {"age_seconds": round(age, 1), "size_bytes": float(size), "files": float(count)}
        summary = f"{name}: {_bytes(size)}, modified {_duration(age)} ago"
        if self.measure == "size":
            return [self.measured(float(size), unit="bytes", summary=summary, key=self.path, metrics=metrics)]
        return [self.measured(round(age, 1), unit="seconds", summary=summary, key=self.path, metrics=metrics)]


SPECS: dict[str, type[CheckSpec]] = {
    "host.cpu": HostCpu,
    "host.memory": HostMemory,
    "host.swap": HostSwap,
    "host.disk": HostDisk,
    "host.inodes": HostInodes,
    "host.load": HostLoad,
    "host.uptime": HostUptime,
    "host.process": HostProcess,
    "host.port": HostPort,
    "host.file": HostFile,
}
