"""Hostile-load benchmark: what a real collector process costs and how it answers while attacked on loopback.

1. Large batches: eight streams each send batches just under `ingest.max_message_bytes` (accepted) and just over
   it (refused by gRPC before parsing) for a few seconds; prints the collector's peak RSS.
2. Half-open HTTP: a thousand connections each send half a request and stop; prints /healthz latency (median,
   max over 50 probes) and whether an honest stream's batches kept being acknowledged, with the collector's thread
   count before and after.

    .venv/bin/python bench/attacks.py [--json]

Figures only; the behaviour is asserted by tests/integration/collector/test_http_security.py and
test_grpc_attacks.py.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
import psutil  # noqa: E402

from bench.collector_process import start_collector  # noqa: E402
from protos import patrol_pb2, patrol_pb2_grpc  # noqa: E402

MAX_MESSAGE = 4 * 1024 * 1024


def frames(agent_id: str, size: int, stop: threading.Event) -> Any:
    yield patrol_pb2.AgentFrame(hello=patrol_pb2.Hello(agent_id=agent_id))
    seq = 0
    per = 1000
    summary = "x" * max(1, size // per - 60)
    while not stop.is_set():
        results = []
        for i in range(per):
            seq += 1
            results.append(patrol_pb2.Result(seq=seq, check_id="big", key=f"k{i}", status=0, summary=summary))
        yield patrol_pb2.AgentFrame(batch=patrol_pb2.Batch(results=results))
        time.sleep(0.05)


def flood(port: int, agent_id: str, size: int, stop: threading.Event) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)]) as ch:
        stub: Any = patrol_pb2_grpc.CollectorStub(ch)  # type: ignore[no-untyped-call]
        try:
            for _ in stub.Stream(frames(agent_id, size, stop)):
                if stop.is_set():
                    break
        except grpc.RpcError as exc:
            return exc.code().name  # type: ignore[no-any-return]
    return "OK"


def large_batches(grpc_port: int, pid: int, seconds: float) -> dict[str, Any]:
    proc = psutil.Process(pid)
    rss_before = proc.memory_info().rss
    stop = threading.Event()
    outcomes: list[str] = []
    sizes = [int(MAX_MESSAGE * 0.9)] * 4 + [int(MAX_MESSAGE * 1.9)] * 4
    threads = [threading.Thread(target=lambda i=i, s=s: outcomes.append(flood(grpc_port, f"big-{i}", s, stop)))
               for i, s in enumerate(sizes)]
    peak = rss_before
    for t in threads:
        t.start()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    return {"rss_before_mb": round(rss_before / 2**20, 1), "rss_peak_mb": round(peak / 2**20, 1),
            "stream_outcomes": sorted(outcomes)}


def half_open(grpc_port: int, http_port: int, pid: int, n: int = 1000) -> dict[str, Any]:
    proc = psutil.Process(pid)
    threads_before = proc.num_threads()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", http_port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(s)
    latencies = []
    acked = 0
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
        stub: Any = patrol_pb2_grpc.CollectorStub(ch)  # type: ignore[no-untyped-call]

        def honest() -> Any:
            yield patrol_pb2.AgentFrame(hello=patrol_pb2.Hello(agent_id="honest"))
            for seq in range(1, 51):
                yield patrol_pb2.AgentFrame(batch=patrol_pb2.Batch(results=[
                    patrol_pb2.Result(seq=seq, check_id="c", status=0)]))
                time.sleep(0.02)

        replies = stub.Stream(honest())
        for _ in range(50):
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=10) as r:
                r.read()
            latencies.append((time.perf_counter() - t0) * 1000)
        for frame in replies:
            if frame.WhichOneof("frame") == "ack":
                acked = frame.ack.up_to_seq
    threads_during = proc.num_threads()
    for s in socks:
        s.close()
    return {"half_open": n, "healthz_p50_ms": round(statistics.median(latencies), 2),
            "healthz_max_ms": round(max(latencies), 2), "honest_acked_up_to": acked,
            "collector_threads_before": threads_before, "collector_threads_during": threads_during}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="length of the large-batch attack")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="xunjian-attacks-") as d:
        started = start_collector(Path(d))
        proc, grpc_port, http_port = started.proc, started.grpc_port, started.http_port
        try:
            figures = {"load_average": os.getloadavg()[0],
                       "large_batches": large_batches(grpc_port, proc.pid, args.seconds),
                       "half_open_http": half_open(grpc_port, http_port, proc.pid)}
        finally:
            proc.terminate()
            proc.wait(15)
    if args.json:
        print(json.dumps(figures))
    else:
        for section, values in figures.items():
            print(f"{section}: {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
