"""Fleet benchmark: a thousand agents registered with one collector, at a realistic rate, and what it costs.

Worker processes each hold a share of the agents' gRPC streams (one channel per agent, as real agents have).
Every agent says Hello with its checks, sends one result per series, then the run goes through phases:

1. idle: every stream open, no frame, for --idle seconds (shorter than lost_after, so no agent is lost): the
   collector's CPU here is its housekeeping (lost-agent check, deadlines, findings, retention, outbox) with the
   fleet registered and nothing arriving. That is what the collector spends beyond ingest.
2. loaded: each agent sends its results at --checks-per-min (in batches every --tick seconds) for --load seconds;
   the collector's CPU here is ingest plus housekeeping, so ingest alone is loaded minus idle. --lost agents
   (100 by default, a ward's power cut) stop streaming 5 s into this phase: the time from their last frame to the opening of their
   'agent lost' incident is the lost-agent detection latency, against lost_after + 5 s.
3. idle again right after the loaded phase (every remaining agent just sent a frame, so none is lost while it
   lasts), now with the stopped agents lost and their incidents (and their series' silent child incidents)
   open: housekeeping as it is after a ward's power cut.
4. reads: /metrics scraped --scrapes times (time per check series; it is also scraped every --scrape-every
   seconds during the loaded phase, as Prometheus would), and /api/v1/checks read page by page
   (time per page; a collector without pagination answers everything as one page).

    .venv/bin/python bench/fleet.py                         # 1,000 agents x 100 series, about 3 minutes
    .venv/bin/python bench/fleet.py --agents 200 --lost 20 --lost-after 30 --load 45   # smaller and shorter
    .venv/bin/python bench/fleet.py --agents 3000 --workers 8 --json
    .venv/bin/python bench/fleet.py --collector-src /tmp/xunjian-before   # another checkout's collector
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import queue
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import psutil  # noqa: E402

from bench.collector_process import start_collector  # noqa: E402
from protos import patrol_pb2  # noqa: E402

METHOD = "/xunjian.v1.Collector/Stream"
KEYS_PER_CHECK = 4
SETTLE_S = 3.0


def _hello(agent_id: str, series: int) -> patrol_pb2.AgentFrame:
    checks = max(1, series // KEYS_PER_CHECK)
    return patrol_pb2.AgentFrame(hello=patrol_pb2.Hello(
        agent_id=agent_id, hostname=f"{agent_id}.ward.local", agent_version="bench",
        checks=[patrol_pb2.CheckInfo(id=f"host.check{c}", title=f"Check {c}", kind="bench", priority="medium",
                                     system="HIS", raise_after=1, clear_after=2) for c in range(checks)]))


def _bad_series(agent_id: str, series: int, bad_pct: float) -> set[int]:
    """The series of this agent that stay CRITICAL (each opens an incident that stays open)."""
    if bad_pct <= 0:
        return set()
    every = max(1, round(100 / bad_pct))
    offset = zlib.crc32(agent_id.encode())
    return {i for i in range(series) if (offset + i) % every == 0}


def _result(seq: int, i: int, rng: random.Random, bad: bool) -> patrol_pb2.Result:
    return patrol_pb2.Result(seq=seq, check_id=f"host.check{i // KEYS_PER_CHECK}", key=f"k{i % KEYS_PER_CHECK}",
                             status=patrol_pb2.CRITICAL if bad else patrol_pb2.OK,
                             value=round(rng.uniform(90, 99) if bad else rng.uniform(10, 60), 1), unit="percent",
                             summary="above 90%" if bad else "within bounds", duration_us=1500, outcome="ok",
                             started_unix_ms=int(time.time() * 1000))


class FleetAgent:
    """One simulated agent: a stream, a Hello, acks read as they come; frames written when told."""

    def __init__(self, agent_id: str, address: str, series: int, bad_pct: float) -> None:
        self.agent_id = agent_id
        self.series = series
        self.bad = _bad_series(agent_id, series, bad_pct)
        self.rng = random.Random(agent_id)
        self.channel = grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])  # own TCP
        self.call: Any = None
        self.seq = 0
        self.cursor = 0
        self.last_frame_at = 0.0
        self.acks: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.call = self.channel.stream_stream(METHOD, request_serializer=patrol_pb2.AgentFrame.SerializeToString,
                                               response_deserializer=patrol_pb2.CollectorFrame.FromString)()
        await self.call.write(_hello(self.agent_id, self.series))
        first = await self.call.read()
        self.seq = first.welcome.high_water_seq
        self.acks = asyncio.ensure_future(self._read_acks())
        await self.send(self.series)

    async def _read_acks(self) -> None:
        try:
            while (await self.call.read()) is not grpc.aio.EOF:
                pass
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass

    async def send(self, n: int) -> None:
        results = []
        for _ in range(n):
            self.seq += 1
            i = self.cursor % self.series
            results.append(_result(self.seq, i, self.rng, i in self.bad))
            self.cursor += 1
        await self.call.write(patrol_pb2.AgentFrame(batch=patrol_pb2.Batch(results=results)))
        self.last_frame_at = time.time()

    async def stream(self, until: float, per_tick: int, tick: float, stop_at: float | None) -> None:
        await asyncio.sleep(self.rng.uniform(0, tick))
        while time.time() < until:
            if stop_at is not None and time.time() >= stop_at:
                await self.close()
                return
            await self.send(per_tick)
            await asyncio.sleep(tick)

    async def close(self) -> None:
        if self.call is not None:
            self.call.cancel()
        if self.acks is not None:
            self.acks.cancel()
        await self.channel.close()


def run_worker(ids: list[str], address: str, series: int, bad_pct: float, commands: Any, out: Any) -> None:
    """A worker process: connect its agents, report, then run the loaded phase it is told to, then close."""

    async def main() -> None:
        agents = [FleetAgent(agent_id, address, series, bad_pct) for agent_id in ids]
        for start in range(0, len(agents), 50):  # connect in waves, as a fleet coming up would
            await asyncio.gather(*(a.connect() for a in agents[start:start + 50]))
        out.put(("registered", len(agents)))
        loop = asyncio.get_running_loop()
        until, per_tick, tick, stop_at, stopping = await loop.run_in_executor(None, commands.get)
        await asyncio.gather(*(a.stream(until, per_tick, tick, stop_at if a.agent_id in stopping else None)
                               for a in agents))
        out.put(("last_frames", {a.agent_id: a.last_frame_at for a in agents if a.agent_id in stopping}))
        await loop.run_in_executor(None, commands.get)
        await asyncio.gather(*(a.close() for a in agents if a.agent_id not in stopping), return_exceptions=True)

    asyncio.run(main())


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _get(url: str, timeout: float = 120.0) -> tuple[bytes, float]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return body, time.perf_counter() - started


def _series_in(metrics: bytes) -> int:
    return sum(1 for line in metrics.split(b"\n") if line.startswith(b"xunjian_check_status{"))


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _lost_incidents(http: str, last_frames: dict[str, float]) -> dict[str, float]:
    """When the 'agent lost' incident of each stopped agent opened (the first one after its last frame)."""
    query = urllib.parse.urlencode({"status": "all", "kind": "agent_lost", "limit": 10_000})
    rows = json.loads(_get(f"{http}/api/v1/incidents?{query}")[0])
    opened: dict[str, float] = {}
    for r in rows:
        agent, at = r["agent_id"], float(r["opened_at"])
        if agent in last_frames and at >= last_frames[agent]:
            opened[agent] = min(at, opened.get(agent, at))
    return opened


def _read_checks(http: str, page: int) -> tuple[list[float], int]:
    """Every check series through /api/v1/checks, page by page: (seconds per page, series read)."""
    times: list[float] = []
    total, after = 0, ""
    while True:
        query = {"limit": page, **({"after": after} if after else {})}
        body, took = _get(f"{http}/api/v1/checks?{urllib.parse.urlencode(query)}")
        rows = json.loads(body)
        times.append(took)
        total += len(rows)
        if len(rows) < page or not rows or "cursor" not in rows[-1]:
            return times, total  # the last page, or a collector that answers everything at once
        after = rows[-1]["cursor"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--series", type=int, default=100, help="series per agent")
    p.add_argument("--workers", type=int, default=4, help="processes holding the agents' streams")
    p.add_argument("--bad-pct", type=float, default=1.0, help="%% of series that stay CRITICAL (open incidents)")
    p.add_argument("--checks-per-min", type=float, default=100.0, help="results per minute per agent")
    p.add_argument("--tick", type=float, default=6.0, help="seconds between an agent's batches")
    p.add_argument("--lost-after", type=float, default=60.0, help="the collector's agents.lost_after")
    p.add_argument("--idle", type=float, default=20.0, help="seconds of the idle phase (< lost_after)")
    p.add_argument("--load", type=float, default=80.0, help="seconds of the loaded phase (> lost_after + 15)")
    p.add_argument("--lost", type=int, default=100, help="agents that stop streaming in the loaded phase (a "
                   "ward's power cut); each lost agent's series get silent child incidents")
    p.add_argument("--scrapes", type=int, default=5, help="/metrics scrapes to time after the loaded phase")
    p.add_argument("--scrape-every", type=float, default=15.0, help="seconds between /metrics scrapes during the "
                   "loaded phase (the first renders every series; later ones those with a result since)")
    p.add_argument("--page", type=int, default=1000, help="/api/v1/checks page size")
    p.add_argument("--collector-src", type=Path, default=ROOT, help="source tree whose collector to run")
    p.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = p.parse_args()
    if args.idle + SETTLE_S + args.tick >= args.lost_after:
        raise SystemExit(f"--idle + {SETTLE_S:g} s + --tick must be shorter than --lost-after, or the whole fleet is "
                         "lost while idle")
    if args.load < args.lost_after + 15:
        raise SystemExit("--load must be at least --lost-after + 15 s to see the stopped agents lost")

    with tempfile.TemporaryDirectory(prefix="xunjian-fleet-") as tmpdir:
        started = start_collector(Path(tmpdir), history="transitions", lost_after_s=args.lost_after,
                                  src=args.collector_src.resolve())
        proc, address, http = started.proc, started.address, started.http
        collector = psutil.Process(proc.pid)
        try:
            figures = _run(args, address, http, collector)
        finally:
            proc.terminate()
            proc.wait(30)
    if args.json:
        print(json.dumps(figures))
        return 0
    f = figures
    print(f"fleet: {args.agents} agents x {args.series} series from {args.workers} processes, "
          f"{args.checks_per_min:g} checks/min per agent ({f['results_per_s']:.0f} results/s), lost_after "
          f"{args.lost_after:g}s, collector {args.collector_src}")
    print(f"register        {f['register_s']:.1f} s for the fleet (Hello + one result per series); "
          f"{f['open_incidents']} incidents open at the end (the API's limit caps this at 10,000; "
          f"{args.bad_pct:g} % of series CRITICAL)")
    print(f"idle CPU        {f['idle_cpu_pct']:.1f} % of a core (fleet registered, no traffic: housekeeping, "
          f"the cost beyond ingest; aim <= 5 %)")
    print(f"loaded CPU      {f['loaded_cpu_pct']:.1f} % of a core, /metrics scrapes included; ingest itself "
          f"{f['ingest_cpu_pct']:.1f} % (loaded minus idle)")
    print(f"idle, lost      {f['idle_lost_cpu_pct']:.1f} % of a core after the loaded phase, {args.lost} agents lost "
          f"and their incidents open (housekeeping with {f['open_incidents']} incidents open; aim <= 5 %)")
    print(f"lost agent      detected {f['lost_detect_s_median']:.1f} s (median), {f['lost_detect_s_max']:.1f} s "
          f"(max) after the last frame of {f['lost_found']}/{args.lost} stopped agents; aim <= "
          f"{args.lost_after + 5:g} s")
    print(f"/metrics        {f['metrics_loaded_us_per_series']:.2f} us per series while loaded (scrapes every "
          f"{args.scrape_every:g} s, median, the first left out: {f['metrics_first_us_per_series']:.2f} us, every "
          f"series rendered); {f['metrics_us_per_series']:.2f} us after it ({f['metrics_ms']:.0f} ms for "
          f"{f['metrics_series']} check series, median of {args.scrapes}); aim <= 5 us")
    print(f"/api/v1/checks  {f['checks_page_ms_median']:.1f} ms per page (median), {f['checks_page_ms_max']:.1f} "
          f"ms max, {f['checks_pages']} pages of up to {args.page} for {f['checks_series']} series; aim <= 50 ms")
    print(f"collector RSS   {f['collector_rss_mb']:.0f} MB")
    return 0


def _run(args: argparse.Namespace, address: str, http: str, collector: psutil.Process) -> dict[str, Any]:
    ids = [f"ward-{n:05d}" for n in range(args.agents)]
    shares = [ids[w::args.workers] for w in range(args.workers)]
    ctx = mp.get_context("spawn")
    out: Any = ctx.Queue()
    commands = [ctx.Queue() for _ in shares]
    workers = [ctx.Process(target=run_worker, args=(share, address, args.series, args.bad_pct, q, out))
               for share, q in zip(shares, commands, strict=True)]
    started = time.monotonic()
    for w in workers:
        w.start()
    registered = 0
    for _ in workers:
        kind, n = out.get(timeout=600)
        assert kind == "registered"
        registered += n
    register_s = time.monotonic() - started
    _say(f"{registered} agents registered in {register_s:.1f} s")
    time.sleep(SETTLE_S)  # let the registration's commits and first housekeeping runs settle

    cpu0, t0 = _cpu(collector), time.monotonic()
    time.sleep(args.idle)
    idle = (_cpu(collector) - cpu0) / (time.monotonic() - t0)

    per_tick = max(1, round(args.checks_per_min * args.tick / 60))
    stopping = set(random.Random(7).sample(ids, min(args.lost, len(ids))))
    now = time.time()
    until, stop_at = now + args.load, now + 5
    for q in commands:
        q.put((until, per_tick, args.tick, stop_at, stopping))
    _say(f"idle: {idle * 100:.1f} % of a core; loaded phase for {args.load:g} s")
    cpu0, t0 = _cpu(collector), time.monotonic()
    last_frames: dict[str, float] = {}
    loaded_scrapes: list[float] = []
    next_scrape, reports = time.monotonic() + args.scrape_every, 0
    while reports < len(workers):  # Prometheus scrapes while the fleet streams
        try:
            kind, frames = out.get(timeout=max(0.05, next_scrape - time.monotonic()))
        except queue.Empty:
            body, took = _get(f"{http}/metrics")
            loaded_scrapes.append(took / max(_series_in(body), 1))
            next_scrape = time.monotonic() + args.scrape_every
            continue
        assert kind == "last_frames"
        last_frames.update(frames)
        reports += 1
    loaded = (_cpu(collector) - cpu0) / (time.monotonic() - t0)

    _say(f"loaded: {loaded * 100:.1f} % of a core; idle again, with {len(stopping)} agents lost")
    cpu0, t0 = _cpu(collector), time.monotonic()
    time.sleep(args.idle)
    idle_lost = (_cpu(collector) - cpu0) / (time.monotonic() - t0)
    _say(f"idle with lost agents: {idle_lost * 100:.1f} % of a core")
    deadline = time.time() + args.lost_after + 30
    opened: dict[str, float] = {}
    while time.time() < deadline:
        opened = _lost_incidents(http, last_frames)
        if len(opened) == len(stopping):
            break
        time.sleep(1)
    detect = [opened[a] - last_frames[a] for a in opened if a in last_frames]
    _say("reading /metrics and /api/v1/checks")

    scrapes = []
    series = 0
    for _ in range(args.scrapes):
        body, took = _get(f"{http}/metrics")
        scrapes.append(took)
        series = _series_in(body)
    pages, checks = _read_checks(http, args.page)
    open_incidents = len(json.loads(_get(f"{http}/api/v1/incidents?limit=10000")[0]))
    rss = collector.memory_info().rss / 1024**2
    query = urllib.parse.urlencode({"status": "all", "kind": "agent_lost", "limit": 10_000})
    unexpected = len({r["agent_id"] for r in json.loads(_get(f"{http}/api/v1/incidents?{query}")[0])} - stopping)
    if unexpected:
        _say(f"WARNING: {unexpected} agents that kept streaming were lost (the phases after the loaded one took "
             "longer than --lost-after): the figures of the last phases are off; raise --lost-after")
    for q in commands:
        q.put("end")
    for w in workers:
        w.join(30)
    metrics_s = statistics.median(scrapes)
    return {
        "agents": registered, "open_incidents": open_incidents, "results_per_s": args.agents * args.checks_per_min / 60,
        "register_s": round(register_s, 1),
        "idle_cpu_pct": round(idle * 100, 2), "loaded_cpu_pct": round(loaded * 100, 2),
        "ingest_cpu_pct": round((loaded - idle) * 100, 2), "idle_lost_cpu_pct": round(idle_lost * 100, 2),
        "lost_found": len(detect),
        "lost_detect_s_median": round(statistics.median(detect), 1) if detect else float("nan"),
        "lost_detect_s_max": round(max(detect), 1) if detect else float("nan"),
        "metrics_ms": round(metrics_s * 1000, 1), "metrics_series": series,
        "metrics_us_per_series": round(metrics_s / max(series, 1) * 1e6, 2),
        "metrics_first_us_per_series": round(loaded_scrapes[0] * 1e6, 2) if loaded_scrapes else float("nan"),
        "metrics_loaded_us_per_series": round(statistics.median(loaded_scrapes[1:]) * 1e6, 2)
        if len(loaded_scrapes) > 1 else float("nan"),
        "checks_pages": len(pages), "checks_series": checks,
        "checks_page_ms_median": round(statistics.median(pages) * 1000, 1),
        "checks_page_ms_max": round(max(pages) * 1000, 1),
        "collector_rss_mb": round(rss, 1), "lost_unexpected": unexpected,
    }


if __name__ == "__main__":
    sys.exit(main())
