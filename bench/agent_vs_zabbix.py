"""The agent next to zabbix_agent2, in one run: the same four host items at the same rate, RSS, CPU and threads.

Both sides run twice, loaded and idle, at the same time on the same machine:
- xunjian: two real agent processes (bench/agent_footprint.py's set-up: an in-bench collector that acknowledges
  everything, host.memory/swap/load/disk checks in rounds every INTERVAL_S, and an agent with no checks);
- zabbix_agent2 (Debian package zabbix-agent2), run as the current user with a temporary config of its own:
  passive items only, on a free loopback port, no active checks. This script polls it like a Zabbix server would,
  over the Zabbix passive protocol ("ZBXD\\x01", 8-byte length, key), the same number of items per round:
  vm.memory.size[pused], system.swap.size[,pfree], system.cpu.load[all,avg1], vfs.fs.size[/,pused]. A second
  zabbix_agent2 is never polled (its idle cost).

CPU per check is the loaded process's CPU above its idle twin, divided by the check runs (xunjian, counted at the
collector) or requests answered (zabbix). The window starts half an interval after the agent's first round and
lasts a whole number of rounds. CPU is each process's scheduler run time summed over its threads.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.agent_footprint import INTERVAL_S, Usage, Window, agents_running, checks_per_round, window_start  # noqa: E402

ZABBIX_ITEMS = ("vm.memory.size[pused]", "system.swap.size[,pfree]", "system.cpu.load[all,avg1]",
                "vfs.fs.size[/,pused]")
"""The zabbix_agent2 items matching host.memory, host.swap, host.load and host.disk on /."""
_HEADER = b"ZBXD\x01"


def zabbix_binary() -> str | None:
    return shutil.which("zabbix_agent2") or next(
        (p for p in ("/usr/sbin/zabbix_agent2", "/usr/bin/zabbix_agent2") if Path(p).is_file()), None)


def free_port() -> int:
    """A free loopback port that zabbix_agent2 accepts (ListenPort is at most 32767)."""
    for port in random.sample(range(20000, 32768), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port between 20000 and 32767")


def zabbix_get(port: int, key: str, timeout: float = 5.0) -> bytes:
    """One passive check, as `zabbix_get -s 127.0.0.1 -p PORT -k KEY` does it."""
    data = key.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_HEADER + struct.pack("<Q", len(data)) + data)
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    if not buf.startswith(_HEADER) or len(buf) < 13:
        raise RuntimeError(f"zabbix_agent2 answered {key} with {buf[:40]!r}")
    size = struct.unpack("<Q", buf[5:13])[0]
    value = buf[13:13 + size]
    if value.startswith(b"ZBX_NOTSUPPORTED"):
        raise RuntimeError(f"zabbix_agent2 does not support {key}: {value!r}")
    return value


@contextmanager
def zabbix_running(binary: str, tmp: Path, name: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """zabbix_agent2 with passive items only on a free loopback port: (process, port)."""
    port = free_port()
    conf = tmp / f"{name}.conf"
    conf.write_text(
        "LogType=file\n"
        f"LogFile={tmp / (name + '.log')}\n"
        "Server=127.0.0.1\n"
        "ServerActive=\n"
        "ListenIP=127.0.0.1\n"
        f"ListenPort={port}\n"
        f"Hostname={name}\n"
        f"ControlSocket={tmp / (name + '.sock')}\n"
        f"PidFile={tmp / (name + '.pid')}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                zabbix_get(port, "agent.ping", timeout=1.0)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"zabbix_agent2 did not start: {err.strip()[-500:]}") from None
                time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Poller:
    """Polls zabbix_agent2 in rounds every INTERVAL_S, `per_round` items a round, as a Zabbix server would."""

    def __init__(self, port: int, per_round: int) -> None:
        self.port = port
        self.per_round = per_round
        self.answered: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zabbix-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            for i in range(self.per_round):
                try:
                    zabbix_get(self.port, ZABBIX_ITEMS[i % len(ZABBIX_ITEMS)])
                    self.answered.append(time.monotonic())
                except (OSError, RuntimeError) as exc:
                    self.errors.append(str(exc))
            due += INTERVAL_S
            self._stop.wait(max(0.0, due - time.monotonic()))

    def between(self, start: float, end: float) -> int:
        return sum(1 for t in self.answered if start <= t < end)


def row(name: str, loaded: Usage, idle: Usage, runs_per_min: float) -> dict[str, float | int | str]:
    above = loaded.cpu_ms_per_min - idle.cpu_ms_per_min
    return {"agent": name, "rss_mb": loaded.rss_mb, "cpu_ms_per_check": round(above / runs_per_min, 3),
            "idle_cpu_ms_per_min": round(idle.cpu_ms_per_min, 1), "threads": loaded.threads,
            "checks_per_min": round(runs_per_min, 1), "cpu_ms_per_min": round(loaded.cpu_ms_per_min, 1),
            "idle_rss_mb": idle.rss_mb, "idle_threads": idle.threads}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks-per-min", type=int, default=600, help="check runs (and zabbix requests) a minute")
    ap.add_argument("--rounds", type=int, default=4, help=f"rounds measured, one every {INTERVAL_S}s")
    ap.add_argument("--json", action="store_true", help="print the two rows as JSON")
    args = ap.parse_args(argv)
    binary = zabbix_binary()
    if binary is None:
        print("zabbix_agent2 is not installed: apt-get install zabbix-agent2 (scripts/test-deps.sh does)",
              file=sys.stderr)
        return 2
    per_round = checks_per_round(args.checks_per_min)
    with tempfile.TemporaryDirectory(prefix="xunjian-zabbix-") as tmpdir, \
            zabbix_running(binary, Path(tmpdir), "polled") as (zpolled, port), \
            zabbix_running(binary, Path(tmpdir), "idle") as (zidle, _), \
            agents_running(args.checks_per_min) as (sink, loaded, idle, _kinds):
        poller = Poller(port, per_round)
        poller.start()
        t0 = window_start(sink)
        time.sleep(max(0.0, t0 - time.monotonic()))
        window = Window({"loaded": loaded, "idle": idle, "zpolled": psutil.Process(zpolled.pid),
                         "zidle": psutil.Process(zidle.pid)})
        usage = window.measure(args.rounds * INTERVAL_S)
        poller.stop()
        ours = sink.runs_between("bench-loaded", window.t0, window.t1) / window.minutes
        theirs = poller.between(window.t0, window.t1) / window.minutes
    if poller.errors:
        print(f"zabbix_agent2 failed {len(poller.errors)} requests, e.g. {poller.errors[0]}", file=sys.stderr)
        return 1
    rows = [row("zabbix_agent2", usage["zpolled"], usage["zidle"], theirs),
            row("xunjian agent", usage["loaded"], usage["idle"], ours)]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"same four host items (memory, swap, load, disk /), {args.checks_per_min} a minute in rounds every "
          f"{INTERVAL_S}s, measured {window.t1 - window.t0:.0f}s side by side")
    print(f"{'':15} {'RSS MB':>7} {'CPU ms/check':>13} {'idle CPU ms/min':>16} {'threads':>8} {'checks/min':>11}")
    for r in rows:
        print(f"{r['agent']:15} {r['rss_mb']:7.1f} {r['cpu_ms_per_check']:13.3f} {r['idle_cpu_ms_per_min']:16.1f} "
              f"{r['threads']:8d} {r['checks_per_min']:11.1f}")
    print("aims for the xunjian agent: CPU per check <= zabbix_agent2's, idle CPU <= 10 ms/min, RSS <= 40 MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
