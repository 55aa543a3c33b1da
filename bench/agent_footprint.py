"""Agent footprint: RSS and CPU of a real agent process running 100 cheap checks a minute, against idle.

Starts a minimal ack-everything gRPC collector in this process, then two real agent processes
(`python -c 'from agent.daemon import run_agent ...'`): one with a generated pack of cheap host checks
(host.* kinds when present, agent.spool otherwise), one with no checks at all (the idle baseline). After a
warm-up it samples both with psutil for --duration seconds and prints RSS, CPU per minute and check runs per
minute as counted by the collector. `--json` prints only {"rss_mb", "cpu_ms_per_min", "checks_per_min"} of the
loaded agent. `--imports` also shows what the agent's imports cost (RSS per module, python -X importtime).

Aims (docs/benchmarks.md): 30 MB RSS, 15 ms CPU per minute above idle for 100 checks/min.
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


INTERVAL_S = 15
"""Host-only checks first run within agent.scheduler.LOCAL_SPREAD_S (15 s) of the start; at this interval they
are spread evenly over it, so a measurement window that is not a whole number of minutes counts fairly."""


def write_pack(path: Path, checks_per_min: int) -> str:
    """Enough checks at INTERVAL_S to make `checks_per_min` runs a minute; returns which kinds were used."""
    use_host = host_kinds_available()
    lines = ["pack: bench", f"defaults: {{interval: {INTERVAL_S}s, timeout: 10s}}", "checks:"]
    for i in range(max(1, round(checks_per_min * INTERVAL_S / 60))):
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
    t = p.cpu_times()
    return float(t.user + t.system)


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
    ap.add_argument("--duration", type=float, default=50.0, help="seconds measured after the warm-up")
    ap.add_argument("--warmup", type=float, default=20.0,
                    help="seconds before measuring, so every check is past its first run (interval 15 s)")
    ap.add_argument("--batch-wait", default="1s", help="collector.batch_wait of the agents (agent.yaml default 1s)")
    ap.add_argument("--checks-per-min", type=int, default=100)
    ap.add_argument("--json", action="store_true", help='print only {"rss_mb", "cpu_ms_per_min", "checks_per_min"}')
    ap.add_argument("--imports", action="store_true", help="also show what the agent's imports cost")
    args = ap.parse_args(argv)

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
            kinds = write_pack(d / "bench.yaml", args.checks_per_min)
            write_agent_yaml(d / "loaded.yaml", "bench-loaded", address, [str(d / "bench.yaml")], args.batch_wait)
            write_agent_yaml(d / "idle.yaml", "bench-idle", address, [], args.batch_wait)
            procs = [start_agent(d / "loaded.yaml"), start_agent(d / "idle.yaml")]
            loaded, idle = (psutil.Process(p.pid) for p in procs)
            time.sleep(args.warmup)
            for p in procs:
                if p.poll() is not None:
                    print(f"agent exited early with code {p.returncode}", file=sys.stderr)
                    return 1
            t0 = time.monotonic()
            cpu0 = (cpu_s(loaded), cpu_s(idle))
            rss_max = [0, 0]
            while time.monotonic() - t0 < args.duration:
                for i, p in enumerate((loaded, idle)):
                    rss_max[i] = max(rss_max[i], p.memory_info().rss)
                time.sleep(min(1.0, max(0.0, args.duration - (time.monotonic() - t0))))
            t1 = time.monotonic()
            cpu1 = (cpu_s(loaded), cpu_s(idle))
            for i, p in enumerate((loaded, idle)):
                rss_max[i] = max(rss_max[i], p.memory_info().rss)
            minutes = (t1 - t0) / 60.0
            cpu_loaded = (cpu1[0] - cpu0[0]) * 1000 / minutes
            cpu_idle = (cpu1[1] - cpu0[1]) * 1000 / minutes
            runs = sink.runs_between("bench-loaded", t0, t1) / minutes
            threads = loaded.num_threads()
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

    figures = {"rss_mb": round(rss_max[0] / 1e6, 1), "cpu_ms_per_min": round(cpu_loaded, 1),
               "checks_per_min": round(runs, 1)}
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"agent with {args.checks_per_min} check runs/min ({kinds}, every {INTERVAL_S}s), batch_wait {args.batch_wait}, "
          f"measured {t1 - t0:.0f}s after {args.warmup:.0f}s warm-up")
    print(f"  RSS (max)            {figures['rss_mb']:7.1f} MB      (aim 30 MB)")
    print(f"  CPU                  {figures['cpu_ms_per_min']:7.1f} ms/min")
    print(f"  check runs           {figures['checks_per_min']:7.1f} /min    (counted at the collector)")
    print(f"  threads              {threads:7d}")
    print("idle agent (no checks)")
    print(f"  RSS (max)            {rss_max[1] / 1e6:7.1f} MB")
    print(f"  CPU                  {cpu_idle:7.1f} ms/min")
    above = cpu_loaded - cpu_idle
    per_check = above / runs if runs else float("nan")
    print(f"CPU above idle         {above:7.1f} ms/min  = {per_check:.3f} ms per check run   (aim 15 ms/min)")
    if args.imports:
        print(import_report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
