"""A scripted collector on 127.0.0.1 for transport tests: a real grpc.server speaking the patrol stream.

It stores results by seq (so Welcome's high-water mark is real), acknowledges each batch or holds acks until
the test releases them, and can refuse an agent with a chosen status code. It survives restarts on the same
port, keeping what it stored, as a real collector would.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc

from protos import patrol_pb2, patrol_pb2_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ScriptedCollector(patrol_pb2_grpc.CollectorServicer):
    def __init__(self, port: int | None = None, name: str = "scripted") -> None:
        self.port = port or free_port()
        self.name = name
        self.address = f"127.0.0.1:{self.port}"
        self.lock = threading.Condition()
        self.stored: dict[int, patrol_pb2.Result] = {}
        self.hellos: list[patrol_pb2.Hello] = []
        self.batches: list[list[int]] = []
        self.heartbeats: list[patrol_pb2.Heartbeat] = []
        self.auto_ack = True
        self.welcome_hwm: int | None = None
        """Force the Welcome's high-water mark (otherwise the highest stored seq)."""
        self.refuse: tuple[grpc.StatusCode, str] | None = None
        """Abort every stream at Hello with this code."""
        self.exhausted_above: int | None = None
        """Abort with RESOURCE_EXHAUSTED when a batch has more results than this."""
        self._streams: list[queue.SimpleQueue[patrol_pb2.CollectorFrame | None]] = []
        self._server: Any = None

    # lifecycle

    def start(self) -> ScriptedCollector:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        patrol_pb2_grpc.add_CollectorServicer_to_server(self, server)
        server.add_insecure_port(self.address)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        with self.lock:
            for q in self._streams:
                q.put(None)
            self._streams.clear()

    # what tests look at

    @property
    def hwm(self) -> int:
        with self.lock:
            return max(self.stored, default=0)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until `predicate` holds (polled, since it may look at the agent side too)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.lock.wait(min(remaining, 0.02))
            return True

    def release_acks(self) -> None:
        with self.lock:
            frame = patrol_pb2.CollectorFrame(ack=patrol_pb2.Ack(up_to_seq=max(self.stored, default=0)))
            for q in self._streams:
                q.put(frame)

    # the servicer

    def Stream(self, request_iterator: Iterator[patrol_pb2.AgentFrame], context: Any) -> Iterator[Any]:
        out: queue.SimpleQueue[patrol_pb2.CollectorFrame | None] = queue.SimpleQueue()
        aborted: list[tuple[grpc.StatusCode, str]] = []
        with self.lock:
            self._streams.append(out)

        def read() -> None:
            try:
                for frame in request_iterator:
                    which = frame.WhichOneof("frame")
                    with self.lock:
                        if which == "hello":
                            self.hellos.append(frame.hello)
                            if self.refuse is not None:
                                aborted.append(self.refuse)
                                break
                            hwm = self.welcome_hwm if self.welcome_hwm is not None else max(self.stored, default=0)
                            out.put(patrol_pb2.CollectorFrame(welcome=patrol_pb2.Welcome(
                                high_water_seq=hwm, collector_id=self.name)))
                        elif which == "batch":
                            seqs = [r.seq for r in frame.batch.results]
                            if self.exhausted_above is not None and len(seqs) > self.exhausted_above:
                                aborted.append((grpc.StatusCode.RESOURCE_EXHAUSTED, f"batch of {len(seqs)} too big"))
                                self.batches.append([])
                                break
                            self.batches.append(seqs)
                            for r in frame.batch.results:
                                self.stored[r.seq] = r
                            if self.auto_ack:
                                out.put(patrol_pb2.CollectorFrame(ack=patrol_pb2.Ack(up_to_seq=max(self.stored))))
                        elif which == "heartbeat":
                            self.heartbeats.append(frame.heartbeat)
                        self.lock.notify_all()
            except Exception:
                pass
            out.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            while True:
                frame = out.get()
                if frame is None:
                    break
                yield frame
        finally:
            with self.lock:
                if out in self._streams:
                    self._streams.remove(out)
                self.lock.notify_all()
        if aborted:
            context.abort(*aborted[0])
