"""Two Linux network namespaces joined by a veth pair: a collector host and an agent host on 192.0.2.0/24
(TEST-NET-1, reserved for documentation), so no packet can leave the machine. Names carry the pytest process
id and a random token, so parallel runs never collide, and namespaces left by a run that was killed are removed
by the next one."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

PREFIX = "xj-e2e-"
NET = "192.0.2.0/24"
_FETCH = ("import sys, urllib.request\n"
          "with urllib.request.urlopen(sys.argv[1], timeout=5) as r: sys.stdout.buffer.write(r.read())")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def why_no_namespaces() -> str | None:
    """None when this process can create network namespaces; otherwise what is missing."""
    if shutil.which("ip") is None:
        return "the ip command (Debian package iproute2)"
    if os.geteuid() != 0:
        return "root, to create network namespaces"
    probe = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}-probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"network namespaces (ip netns add: {made.stderr.strip()})"
    ip("netns", "del", probe, check=False)
    return None


def remove_orphans() -> None:
    """Delete namespaces of this test whose pytest process is gone, ending the processes left inside them."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX):
            continue
        owner = name[len(PREFIX):].split("-", 1)[0]
        if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
            continue
        for pid in ip("netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        ip("netns", "del", name, check=False)


@dataclass(frozen=True)
class Host:
    """One namespace with `eth0` at `address` and its own loopback."""

    netns: str
    address: str

    def command(self, args: list[str]) -> list[str]:
        """`args` run inside this namespace (ip netns exec replaces itself with the program: the pid is its)."""
        return ["ip", "netns", "exec", self.netns, *args]

    def fetch(self, url: str) -> bytes:
        """GET a URL from inside the namespace (e.g. a listener on its 127.0.0.1)."""
        out = subprocess.run(self.command([sys.executable, "-I", "-c", _FETCH, url]), capture_output=True,
                             timeout=30)
        if out.returncode != 0:
            raise OSError(f"GET {url} in {self.netns} failed: {out.stderr.decode(errors='replace').strip()[-500:]}")
        return out.stdout


@dataclass(frozen=True)
class Link:
    """The veth pair between two hosts, cut and restored on the `near` side."""

    near: Host
    far: Host

    def cut(self) -> None:
        """The cable pulled: the near end goes down, the far end loses carrier, packets vanish without an error."""
        ip("-n", self.near.netns, "link", "set", "eth0", "down")

    def restore(self) -> None:
        ip("-n", self.near.netns, "link", "set", "eth0", "up")

    def drop_replies(self) -> None:
        """A one-way fault: the far host's packets still arrive, nothing the near host sends back reaches it
        (TCP acknowledgements and application answers alike)."""
        ip("-n", self.near.netns, "route", "add", "blackhole", f"{self.far.address}/32")

    def restore_replies(self) -> None:
        ip("-n", self.near.netns, "route", "del", "blackhole", f"{self.far.address}/32")


@contextlib.contextmanager
def two_hosts() -> Iterator[tuple[Host, Host, Link]]:
    """A collector host (192.0.2.1) and an agent host (192.0.2.2); the link's near side is the collector's."""
    remove_orphans()
    base = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    collector, agent = Host(f"{base}-c", "192.0.2.1"), Host(f"{base}-a", "192.0.2.2")
    made: list[str] = []
    try:
        for host in (collector, agent):
            ip("netns", "add", host.netns)
            made.append(host.netns)
        ip("-n", collector.netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", agent.netns)
        for host in (collector, agent):
            ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
            ip("-n", host.netns, "link", "set", "lo", "up")
            ip("-n", host.netns, "link", "set", "eth0", "up")
        yield collector, agent, Link(near=collector, far=agent)
    finally:
        for name in made:
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            ip("netns", "del", name, check=False)
