"""Agent footprint: RSS, CPU and threads of a real agent process running cheap host checks, against an idle one.

Starts a minimal ack-everything gRPC collector in this process, then two real agent processes
(`python -c 'from agent.daemon import run_agent ...'`): one with a generated pack of cheap host checks
(host.memory/swap/load/disk), one with no checks at all (the idle baseline). The host checks of an agent share one
phase, so they run in rounds every INTERVAL_S; the measurement starts half an interval after the first round
reached the collector and lasts a whole number of rounds (4 by default, so a default run takes under 60 s).
`--json` prints only the figures of the loaded agent. `--imports` also shows what the agent's imports cost (RSS
per module, python -X importtime).

Aims (docs/benchmarks.md): RSS at most 40 MB, idle CPU at most 10 ms/min, CPU per check run at or below
zabbix_agent2's on the same machine (bench/agent_vs_zabbix.py measures both side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psutil

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from protos import patrol_pb2, patrol_pb2_grpc  # noqa: E402

AGENT_CMD = "import sys; from pathlib import Path; from agent.daemon import run_agent; sys.exit(run_agent(Path(sys.argv[1])))"
CHEAP_HOST_CHECKS: list[dict[str, Any]] = [
    {"kind": "host.memory", "warn": "> 90"},
    {"kind": "host.swap", "warn": "> 50"},
    {"kind": "host.load", "warn": "> 4"},
    {"kind": "host.disk", "mounts": ["/"], "warn": "> 85"},
]


class AckSink(patrol_pb2_grpc.CollectorServicer):
    """Acknowledges every batch at once and counts check runs per agent (distinct check, target, start time)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hwm: dict[str, int] = {}
        self.runs: dict[str, list[tuple[float, tuple[str, str, int]]]] = {}

    def Stream(self, request_iterator: Iterator[patrol_pb2.AgentFrame], context: Any) -> Iterator[Any]:
        agent = ""
        for frame in request_iterator:
            which = frame.WhichOneof("frame")
            if which == "hello":
                agent = frame.hello.agent_id
                with self.lock:
                    hwm = self.hwm.get(agent, 0)
                yield patrol_pb2.CollectorFrame(welcome=patrol_pb2.Welcome(high_water_seq=hwm, collector_id="bench"))
            elif which == "batch":
                now = time.monotonic()
                top = 0
                with self.lock:
                    runs = self.runs.setdefault(agent, [])
                    for r in frame.batch.results:
                        runs.append((now, (r.check_id, r.target, r.started_unix_ms)))
                        top = max(top, r.seq)
                    self.hwm[agent] = max(self.hwm.get(agent, 0), top)
                yield patrol_pb2.CollectorFrame(ack=patrol_pb2.Ack(up_to_seq=top))

    def first_arrival(self, agent: str, timeout: float) -> float | None:
        """monotonic() when the first result of `agent` arrived, waiting up to `timeout` seconds for it."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                runs = self.runs.get(agent)
                if runs:
                    return runs[0][0]
            time.sleep(0.1)
        return None

    def runs_between(self, agent: str, start: float, end: float) -> int:
        with self.lock:
            return len({key for t, key in self.runs.get(agent, []) if start <= t < end})


def host_kinds_available() -> bool:
    from checks.kinds import KIND_MODULES

    try:
        import checks.host  # noqa: F401
    except ImportError:
        return False
    return all(c["kind"] in KIND_MODULES for c in CHEAP_HOST_CHECKS)


INTERVAL_S = 10
"""Interval of the generated checks: all of them run in one round every INTERVAL_S (they share the agent's phase)."""


def checks_per_round(checks_per_min: int) -> int:
    return max(1, round(checks_per_min * INTERVAL_S / 60))


def write_pack(path: Path, checks_per_min: int) -> str:
    """Enough checks at INTERVAL_S to make `checks_per_min` runs a minute; returns which kinds were used."""
    use_host = host_kinds_available()
    lines = ["pack: bench", f"defaults: {{interval: {INTERVAL_S}s, timeout: 5s}}", "checks:"]
    for i in range(checks_per_round(checks_per_min)):
        body = dict(CHEAP_HOST_CHECKS[i % len(CHEAP_HOST_CHECKS)]) if use_host else {"kind": "agent.spool"}
        lines.append(f"  - id: bench.c{i:03d}")
        for k, v in body.items():
            lines.append(f"    {k}: {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "host.memory/swap/load/disk" if use_host else "agent.spool"


def write_agent_yaml(path: Path, agent_id: str, address: str, packs: list[str], batch_wait: str = "1s") -> None:
    path.write_text(
        f"agent: {{id: {agent_id}}}\n"
        f'collector: {{addresses: ["{address}"], batch_wait: {batch_wait}, tls: {{mode: insecure}}}}\n'
        f"spool: {{path: {path.parent / (agent_id + '-spool.db')}, max_bytes: 16MiB}}\n"
        f"packs: {json.dumps(packs)}\n",
        encoding="utf-8",
    )


def start_agent(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XUNJIAN_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-c", AGENT_CMD, str(config)], cwd=ROOT, env=env)


def cpu_s(p: psutil.Process) -> float:
    """CPU seconds of `p`: the scheduler's exact run time summed over its threads (/proc/PID/task/*/sched), since
    the clock-tick figures of cpu_times() are 10 ms steps, as much as a whole second's work of an idle agent. A
    thread that ended in between takes its time with it (the agents' and zabbix_agent2's threads are long-lived)."""
    total = 0.0
    found = False
    for task in Path(f"/proc/{p.pid}/task").glob("*/sched"):
        try:
            text = task.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("se.sum_exec_runtime"):
                total += float(line.split(":")[1]) / 1000.0
                found = True
                break
    if found and total > 0:
        return total
    t = p.cpu_times()
    return float(t.user + t.system)


@dataclass
class Usage:
    """What one process used over a measurement window."""

    rss_mb: float
    cpu_ms_per_min: float
    threads: int


class Window:
    """CPU and peak RSS of some processes between start() and stop(); sample() now and then catches the peak."""

    def __init__(self, procs: dict[str, psutil.Process]) -> None:
        self.procs = procs
        self.cpu0: dict[str, float] = {}
        self.rss: dict[str, int] = dict.fromkeys(procs, 0)
        self.t0 = self.t1 = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = {name: cpu_s(p) for name, p in self.procs.items()}
        self.sample()

    def sample(self) -> None:
        for name, p in self.procs.items():
            self.rss[name] = max(self.rss[name], p.memory_info().rss)

    def measure(self, seconds: float) -> dict[str, Usage]:
        """start(), sample once a second for `seconds`, then stop()."""
        self.start()
        end = self.t0 + seconds
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            self.sample()
        return self.stop()

    def stop(self) -> dict[str, Usage]:
        self.sample()
        self.t1 = time.monotonic()
        minutes = (self.t1 - self.t0) / 60.0
        return {name: Usage(round(self.rss[name] / 1e6, 1), (cpu_s(p) - self.cpu0[name]) * 1000 / minutes,
                            p.num_threads())
                for name, p in self.procs.items()}

    @property
    def minutes(self) -> float:
        return (self.t1 - self.t0) / 60.0


@contextmanager
def agents_running(checks_per_min: int, batch_wait: str = "1s") -> Iterator[tuple[AckSink, psutil.Process,
                                                                                   psutil.Process, str]]:
    """An in-process ack-everything collector and two agents: (sink, loaded, idle, kinds used)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    sink = AckSink()
    patrol_pb2_grpc.add_CollectorServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="xunjian-bench-") as tmp:
            d = Path(tmp)
            kinds = write_pack(d / "bench.yaml", checks_per_min)
            write_agent_yaml(d / "loaded.yaml", "bench-loaded", address, [str(d / "bench.yaml")], batch_wait)
            write_agent_yaml(d / "idle.yaml", "bench-idle", address, [], batch_wait)
            procs = [start_agent(d / "loaded.yaml"), start_agent(d / "idle.yaml")]
            yield sink, psutil.Process(procs[0].pid), psutil.Process(procs[1].pid), kinds
            for p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"an agent exited early with code {p.returncode}")
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        server.stop(grace=None)


def window_start(sink: AckSink) -> float:
    """monotonic() half an interval after the loaded agent's first round reached the collector: a window of whole
    intervals from there holds whole rounds only."""
    first = sink.first_arrival("bench-loaded", LOCAL_PHASE_MAX_S + 10.0)
    if first is None:
        raise RuntimeError("the loaded agent sent no result")
    return first + INTERVAL_S / 2


LOCAL_PHASE_MAX_S = 15.0
"""agent.scheduler.LOCAL_SPREAD_S: the latest an agent's host checks first run after its start."""


_LAYERS = """
import psutil
proc = psutil.Process()
last = proc.memory_info().rss
print(f"python|{last}")
for name, stmt in LAYERS:
    exec(stmt)
    now = proc.memory_info().rss
    print(f"{name}|{now}")
"""


def import_report() -> str:
    """RSS as the agent's imports pile up in one process, and the heaviest imports by cumulative time."""
    layers = [
        ("logging, sqlite3, yaml", "import logging, sqlite3, yaml"),
        ("pydantic", "import pydantic"),
        ("grpc", "import grpc"),
        ("protos (protobuf)", "from protos import patrol_pb2, patrol_pb2_grpc"),
        ("checks.spec, checks.pack", "import checks.spec, checks.pack"),
        ("agent.daemon", "import agent.daemon"),
        ("checks.host (kinds run)", "import checks.host"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = f"LAYERS = {layers!r}\n{_LAYERS}"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    out = ["RSS as the agent's imports pile up in one process (MB):"]
    previous = 0
    for line in res.stdout.splitlines():
        name, rss = line.rsplit("|", 1)
        mb = int(rss) / 1e6
        out.append(f"  {name:<28} {mb:6.1f}  (+{mb - previous / 1e6:4.1f})" if previous else f"  {name:<28} {mb:6.1f}")
        previous = int(rss)
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", "import agent.daemon"], cwd=ROOT,
                         capture_output=True, text=True, check=True, env=env)
    best: dict[str, int] = {}
    for line in res.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            top = name.split(".")[0]
            if name != "agent.daemon":
                best[top] = max(best.get(top, 0), int(parts[1]))
    out.append("python -X importtime -c 'import agent.daemon', heaviest packages by cumulative time (ms):")
    out.extend(f"  {us / 1000:7.1f}  {name}" for name, us in sorted(best.items(), key=lambda kv: -kv[1])[:8])
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=4, help=f"rounds measured, one every {INTERVAL_S}s")
    ap.add_argument("--batch-wait", default="1s", help="collector.batch_wait of the agents (agent.yaml default 1s)")
    ap.add_argument("--checks-per-min", type=int, default=600)
    ap.add_argument("--json", action="store_true", help="print only the loaded agent's figures as JSON")
    ap.add_argument("--imports", action="store_true", help="also show what the agent's imports cost")
    args = ap.parse_args(argv)

    with agents_running(args.checks_per_min, args.batch_wait) as (sink, loaded, idle, kinds):
        t0 = window_start(sink)
        time.sleep(max(0.0, t0 - time.monotonic()))
        window = Window({"loaded": loaded, "idle": idle})
        usage = window.measure(args.rounds * INTERVAL_S)
        runs = sink.runs_between("bench-loaded", window.t0, window.t1) / window.minutes

    load, rest = usage["loaded"], usage["idle"]
    above = load.cpu_ms_per_min - rest.cpu_ms_per_min
    per_check = above / runs if runs else float("nan")
    figures = {"rss_mb": load.rss_mb, "cpu_ms_per_min": round(load.cpu_ms_per_min, 1),
               "checks_per_min": round(runs, 1), "cpu_ms_per_check": round(per_check, 3),
               "idle_cpu_ms_per_min": round(rest.cpu_ms_per_min, 1), "idle_rss_mb": rest.rss_mb,
               "threads": load.threads}
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"agent with {args.checks_per_min} check runs/min ({kinds}, every {INTERVAL_S}s), batch_wait "
          f"{args.batch_wait}, measured {window.t1 - window.t0:.0f}s ({args.rounds} rounds)")
    print(f"  RSS (max)            {load.rss_mb:7.1f} MB      (aim 40 MB)")
    print(f"  CPU                  {load.cpu_ms_per_min:7.1f} ms/min")
    print(f"  check runs           {runs:7.1f} /min    (counted at the collector)")
    print(f"  threads              {load.threads:7d}")
    print("idle agent (no checks)")
    print(f"  RSS (max)            {rest.rss_mb:7.1f} MB")
    print(f"  CPU                  {rest.cpu_ms_per_min:7.1f} ms/min  (aim 10 ms/min)")
    print(f"  threads              {rest.threads:7d}")
    print(f"CPU above idle         {above:7.1f} ms/min  = {per_check:.3f} ms per check run")
    if args.imports:
        print(import_report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
