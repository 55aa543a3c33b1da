"""Host probes on Linux-shaped psutil data recorded on typical hospital servers: a VM with LVM, snap and NFS
mounts, and a container whose root is overlay with /etc/hosts bind mounts."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from checks.config_error import ConfigError
from checks.context import RunContext
from checks.host import HostDisk, HostProcess, _proc_net_ports, real_mounts
from checks.pack import load_pack
from checks.result import Outcome, Status

DiskPart = namedtuple("DiskPart", ["device", "mountpoint", "fstype", "opts"])
DiskUsage = namedtuple("DiskUsage", ["total", "used", "free", "percent"])

VM = [
    DiskPart("sysfs", "/sys", "sysfs", "rw,nosuid,nodev,noexec,relatime"),
    DiskPart("proc", "/proc", "proc", "rw,nosuid,nodev,noexec,relatime"),
    DiskPart("udev", "/dev", "devtmpfs", "rw,nosuid,relatime,size=8119920k,nr_inodes=2029980,mode=755"),
    DiskPart("tmpfs", "/run", "tmpfs", "rw,nosuid,nodev,noexec,relatime,size=1631708k,mode=755"),
    DiskPart("/dev/mapper/vg0-root", "/", "xfs", "rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota"),
    DiskPart("/dev/sda1", "/boot", "xfs", "rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota"),
    DiskPart("/dev/mapper/vg0-data", "/data", "xfs", "rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota"),
    DiskPart("/dev/loop0", "/snap/core20/2015", "squashfs", "ro,nodev,relatime,errors=continue"),
    DiskPart("nas01:/export/pacs", "/mnt/pacs", "nfs4", "rw,relatime,vers=4.1,rsize=1048576,wsize=1048576"),
    DiskPart("cgroup2", "/sys/fs/cgroup", "cgroup2", "rw,nosuid,nodev,noexec,relatime"),
    DiskPart("/dev/sr0", "/media/cdrom", "iso9660", "ro,nosuid,nodev,relatime"),
]
CONTAINER = [
    DiskPart("overlay", "/", "overlay", "rw,relatime,lowerdir=/var/lib/docker/overlay2/l/ABC"),
    DiskPart("proc", "/proc", "proc", "rw,nosuid,nodev,noexec,relatime"),
    DiskPart("tmpfs", "/dev", "tmpfs", "rw,nosuid,size=65536k,mode=755"),
    DiskPart("/dev/vda1", "/etc/resolv.conf", "ext4", "rw,relatime"),
    DiskPart("/dev/vda1", "/etc/hostname", "ext4", "rw,relatime"),
    DiskPart("/dev/vda1", "/var/lib/his", "ext4", "rw,relatime"),
    DiskPart("/dev/vda1", "/var/log/his", "ext4", "rw,relatime"),
]


def mounts_of(monkeypatch: pytest.MonkeyPatch, parts: list[DiskPart], files: frozenset[str] = frozenset()) -> None:
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: list(parts))
    monkeypatch.setattr("checks.host.os.path.isfile", lambda p: p in files)


def test_vm_real_filesystems_only(monkeypatch: pytest.MonkeyPatch) -> None:
    mounts_of(monkeypatch, VM)
    found, missing = real_mounts()
    assert [m.mountpoint for m in found] == ["/", "/boot", "/data"]
    assert missing == []


def test_vm_listed_nfs_and_tmpfs_are_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    mounts_of(monkeypatch, VM)
    found, missing = real_mounts(["/mnt/pacs", "/run/", "/data", "/archive"])
    assert [m.mountpoint for m in found] == ["/mnt/pacs", "/run", "/data"]
    assert missing == ["/archive"]


def test_container_skips_overlay_and_file_bind_mounts_and_repeats_of_a_device(monkeypatch: pytest.MonkeyPatch) -> None:
    mounts_of(monkeypatch, CONTAINER, files=frozenset({"/etc/resolv.conf", "/etc/hostname"}))
    found, _ = real_mounts()
    assert [m.mountpoint for m in found] == ["/var/lib/his"]


def test_disk_usage_error_is_unknown_with_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    mounts_of(monkeypatch, VM)

    def usage(path: str) -> DiskUsage:
        if path == "/data":
            raise PermissionError(13, "Permission denied")
        return DiskUsage(100, 50, 50, 50.0)

    monkeypatch.setattr(psutil, "disk_usage", usage)
    results = {r.key: r for r in HostDisk(id="d", kind="host.disk").probe(RunContext())}
    assert (results["/data"].status, results["/data"].outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED)
    assert results["/data"].summary == "/data: Permission denied"
    assert results["/"].status is Status.OK


def test_proc_net_tcp_listen_parsing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tcp = tmp_path / "tcp"
    tcp.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   997        0 31245 1\n"
        "   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   113        0 22871 1\n"
        "   2: 0A00020F:A3C4 0A000201:0599 01 00000000:00000000 02:000A7B1C 00000000  1000        0 45671 2\n"
    )
    real_path = Path

    def fake_path(p: str) -> Path:
        return tcp if p == "/proc/net/tcp" else real_path(tmp_path / "absent")

    monkeypatch.setattr("checks.host.Path", fake_path)
    assert _proc_net_ports("tcp") == {8080, 3306}


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "set name or cmdline (or both) to say which processes to count"),
    ({"name": "java", "min_count": 2, "max_count": 1}, "max_count is below min_count"),
    ({"cmdline": "(catalina"}, "bad regular expression '(catalina': missing ), unterminated subpattern at position 0"),
])
def test_process_options_are_validated(tmp_path: Path, fields: dict[str, object], message: str) -> None:
    lines = "".join(f"    {k}: {v!r}\n" for k, v in fields.items())
    pack = tmp_path / "p.yaml"
    pack.write_text(f"pack: p\nchecks:\n  - id: his.tomcat\n    kind: host.process\n{lines}")
    with pytest.raises(ConfigError) as info:
        load_pack(pack)
    assert str(info.value).endswith(message)
    assert str(info.value).startswith(f"{pack}:")


def test_process_probe_counts_with_recorded_process_info(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = namedtuple("pmem", ["rss", "vms", "shared", "text", "lib", "data", "dirty"])
    cpu = namedtuple("pcputimes", ["user", "system", "children_user", "children_system", "iowait"])

    class Proc:
        def __init__(self, name: str, cmdline: list[str] | None, rss: int) -> None:
            self.info = {"name": name, "cmdline": cmdline, "memory_info": mem(rss, 0, 0, 0, 0, 0, 0),
                         "cpu_times": cpu(10.0, 2.5, 0.0, 0.0, 0.0)}

    procs = [
        Proc("java", ["/usr/lib/jvm/java-8/bin/java", "-Xmx8g", "org.apache.catalina.startup.Bootstrap", "start"],
             6 * 1024**3),
        Proc("java", ["/usr/lib/jvm/java-8/bin/java", "-jar", "his-interface.jar"], 1024**3),
        Proc("nginx", None, 10 * 1024**2),  # AccessDenied on cmdline: psutil puts None in info
    ]
    monkeypatch.setattr(psutil, "process_iter", lambda attrs=None: iter(procs))
    [tomcat] = HostProcess(id="t", kind="host.process", name="java",
                           cmdline=r"org\.apache\.catalina\.startup\.Bootstrap").probe(RunContext())
    assert (tomcat.value, tomcat.metrics["rss_bytes"], tomcat.metrics["cpu_seconds"]) == (1, 6 * 1024**3, 12.5)
    assert tomcat.summary == "1 java /org\\.apache\\.catalina\\.startup\\.Bootstrap/ process, 6.0 GiB RSS"
    [javas] = HostProcess(id="t", kind="host.process", name="java", max_count=1).probe(RunContext())
    assert (javas.value, javas.status) == (2, Status.CRITICAL)
    [nginx] = HostProcess(id="t", kind="host.process", name="nginx").probe(RunContext())
    assert nginx.value == 1
