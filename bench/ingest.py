"""Ingest benchmark: N simulated agents (processes) stream batches of results into a real collector over gRPC.

Prints results/s accepted, ack latency p50/p99, change→incident p99 and the collector's RSS and CPU.
Status changes are flushed alone in their own batch, as the agent does, and the ack of that batch comes
only after the commit holding the transition and the incident: its latency is change→incident committed.

    .venv/bin/python bench/ingest.py                      # collector started here on a temp SQLite store
    .venv/bin/python bench/ingest.py --agents 8 --duration 20 --json
    .venv/bin/python bench/ingest.py --spool              # agents append to agent.spool.Spool first
    .venv/bin/python bench/ingest.py --target 127.0.0.1:9470 --collector-pid 1234
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
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


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _varint(len(body)) + body


def _templates(agent_id: str, series: int, checks: int) -> tuple[list[bytes], list[bytes]]:
    """Serialized Result bodies without seq (OK and CRITICAL per series); seq is prepended per send."""
    ok, crit = [], []
    for i in range(series):
        base = dict(check_id=f"bench.check{i % checks}", key=f"k{i}", value=float(i % 100), unit="percent",
                    summary="usage 42%", duration_us=1500, outcome="ok")
        ok.append(patrol_pb2.Result(status=patrol_pb2.OK, **base).SerializeToString())
        crit.append(patrol_pb2.Result(status=patrol_pb2.CRITICAL, **base).SerializeToString())
    return ok, crit


def _batch_frame(bodies: list[bytes]) -> bytes:
    batch = b"".join(_field(0x0A, b) for b in bodies)
    return _field(0x12, batch)


def run_agent(index: int, address: str, duration: float, batch_size: int, window: int, series: int,
              change_rate: float, rate: float, spool_dir: str | None, out: Any) -> None:
    """One agent process: Hello, then batches as fast as the ack window allows, for `duration` seconds."""
    agent_id = f"bench-{index:03d}-{os.getpid()}"
    checks = max(1, min(50, series))
    ok, crit = _templates(agent_id, series, checks)
    hello = patrol_pb2.AgentFrame(hello=patrol_pb2.Hello(
        agent_id=agent_id, hostname=agent_id, agent_version="bench",
        checks=[patrol_pb2.CheckInfo(id=f"bench.check{c}", title=f"Bench {c}", kind="bench", priority="high",
                                     system="HIS", raise_after=1, clear_after=1) for c in range(checks)]))
    spool = None
    if spool_dir:
        from agent.spool import Spool
        from checks.result import Result, Status

        spool = Spool(Path(spool_dir) / f"{agent_id}.db")
        ok_results, crit_results = [], []
        for i in range(series):
            common = dict(check_id=f"bench.check{i % checks}", key=f"k{i}", value=float(i % 100), unit="percent",
                          summary="usage 42%", duration_ms=1.5)
            ok_results.append(Result(status=Status.OK, **common))  # type: ignore[arg-type]
            crit_results.append(Result(status=Status.CRITICAL, **common))  # type: ignore[arg-type]
    rng = random.Random(index)
    status = [0] * series
    window_sem = threading.Semaphore(window)
    in_flight: deque[tuple[int, float, bool]] = deque()
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    seq = 0
    cursor = 0
    welcome = threading.Event()

    change_next = False

    def next_batch() -> tuple[list[int], bool]:
        """Series indices of the next batch; a status change is flushed alone, as the agent does."""
        nonlocal cursor, change_next
        if change_next:
            change_next = False
            i = cursor % series
            status[i] ^= 2
            cursor += 1
            return [i], True
        picked: list[int] = []
        while len(picked) < batch_size:
            if rng.random() < change_rate:
                change_next = True  # flush what we have; the change goes alone next
                if picked:
                    return picked, False
                return next_batch()
            picked.append(cursor % series)
            cursor += 1
        return picked, False

    per_result = 1.0 / rate if rate > 0 else 0.0
    next_send = time.monotonic()

    def frames() -> Any:
        nonlocal seq, next_send
        yield hello.SerializeToString()
        welcome.wait()
        while time.monotonic() < stop_at:
            window_sem.acquire()
            picked, change = next_batch()
            if per_result:
                delay = next_send - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_send += per_result * len(picked)
            if spool is not None:
                last = spool.append([crit_results[i] if status[i] else ok_results[i] for i in picked])
                rows = spool.read_after(last - len(picked), len(picked))
                frame = _batch_frame([body for _s, body in rows])
            else:
                bodies = []
                for i in picked:
                    seq += 1
                    bodies.append(_varint_seq(seq) + (crit[i] if status[i] else ok[i]))
                frame = _batch_frame(bodies)
                last = seq
            with lock:
                in_flight.append((last, time.perf_counter(), change))
            yield frame
        while True:  # wait for the last acks before closing the stream
            with lock:
                if not in_flight:
                    return
            time.sleep(0.005)

    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    call = channel.stream_stream(METHOD, request_serializer=None,
                                 response_deserializer=patrol_pb2.CollectorFrame.FromString)
    acked = 0
    latencies: list[float] = []
    change_latencies: list[float] = []
    first_ack = last_ack = 0.0
    base = 0
    for resp in call(frames()):
        if resp.HasField("welcome"):
            base = resp.welcome.high_water_seq
            seq = max(seq, base)
            if spool is not None:
                spool.advance_seq(base)
            welcome.set()
            continue
        now = time.perf_counter()
        up_to = resp.ack.up_to_seq
        if spool is not None:
            spool.ack(up_to)
        with lock:
            while in_flight and in_flight[0][0] <= up_to:
                _last, sent, change = in_flight.popleft()
                latencies.append(now - sent)
                if change:
                    change_latencies.append(now - sent)
                window_sem.release()
        if not first_ack:
            first_ack = now
        last_ack = now
        acked = up_to - base
    channel.close()
    out.put({"agent": agent_id, "acked": acked, "latencies": latencies, "change_latencies": change_latencies,
             "first_ack": first_ack, "last_ack": last_ack})


def _varint_seq(seq: int) -> bytes:
    return b"\x08" + _varint(seq)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, default=4, help="simulated agent processes")
    p.add_argument("--duration", type=float, default=15.0, help="seconds of streaming (total run stays < 60 s)")
    p.add_argument("--batch", type=int, default=100, help="results per batch")
    p.add_argument("--window", type=int, default=4, help="batches in flight per agent")
    p.add_argument("--series", type=int, default=1000, help="series per agent")
    p.add_argument("--change-rate", type=float, default=0.001, help="fraction of results that change status")
    p.add_argument("--rate", type=float, default=100_000, help="offered results/s in total (0: as fast as acks allow)")
    p.add_argument("--spool", action="store_true", help="agents append to agent.spool.Spool before sending")
    p.add_argument("--target", help="host:port of a running collector instead of starting one")
    p.add_argument("--collector-pid", type=int, help="pid of the --target collector, for RSS and CPU")
    p.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = p.parse_args()
    duration = min(args.duration, 50.0)

    with tempfile.TemporaryDirectory(prefix="xunjian-bench-") as tmpdir:
        tmp = Path(tmpdir)
        proc = None
        if args.target:
            address, pid = args.target, args.collector_pid
        else:
            started = start_collector(tmp, history="transitions", lost_after_s=600)  # the hot path alone
            proc, address, pid = started.proc, started.address, started.proc.pid
        collector = psutil.Process(pid) if pid else None
        cpu0 = sum(collector.cpu_times()[:2]) if collector else 0.0
        ctx = mp.get_context("fork")
        out: Any = ctx.Queue()
        spool_dir = str(tmp) if args.spool else None
        workers = [ctx.Process(target=run_agent, args=(i, address, duration, args.batch, args.window, args.series,
                                                      args.change_rate, args.rate / args.agents, spool_dir, out)) for i in range(args.agents)]
        for w in workers:
            w.start()
        reports = [out.get(timeout=duration + 60) for _ in workers]
        for w in workers:
            w.join(10)
        cpu_s = (sum(collector.cpu_times()[:2]) - cpu0) if collector else float("nan")
        rss_mb = collector.memory_info().rss / 1024**2 if collector else float("nan")
        if proc is not None:
            proc.terminate()
            proc.wait(20)

    acked = sum(r["acked"] for r in reports)
    start = min(r["first_ack"] for r in reports if r["first_ack"])
    end = max(r["last_ack"] for r in reports)
    latencies = [x for r in reports for x in r["latencies"]]
    changes = [x for r in reports for x in r["change_latencies"]]
    figures = {
        "results_per_s": round(acked / (end - start), 1) if end > start else 0.0,
        "ack_latency_p50_ms": round(_pct(latencies, 0.50) * 1000, 2),
        "ack_latency_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "change_to_incident_p99_ms": round(_pct(changes, 0.99) * 1000, 2),
        "collector_rss_mb": round(rss_mb, 1),
        "collector_cpu_s": round(cpu_s, 2),
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"agents {args.agents}, batch {args.batch}, window {args.window}, series/agent {args.series}, "
          f"offered {args.rate:,.0f}/s, "
          f"spool {'on' if args.spool else 'off'}, {duration:g}s")
    print(f"accepted        {figures['results_per_s']:>12,.0f} results/s ({acked:,} results)")
    print(f"ack latency     p50 {figures['ack_latency_p50_ms']} ms, p99 {figures['ack_latency_p99_ms']} ms")
    print(f"change→incident p99 {figures['change_to_incident_p99_ms']} ms "
          f"({len(changes)} changes, median {statistics.median(changes) * 1000 if changes else float('nan'):.2f} ms)")
    print(f"collector       RSS {figures['collector_rss_mb']} MB, CPU {figures['collector_cpu_s']} s "
          f"({cpu_s / duration:.2f} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
