"""Real collector and agent processes for end-to-end tests: configs in a temp dir, free loopback ports, logs kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import ROOT, calendar_stand_ins

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll until `predicate` returns something truthy; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (OSError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class Process:
    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a power cut or the OOM killer."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Collector(Process):
    grpc: str = ""
    http: str = ""
    token: str = ""
    """An API token the test reads with (http.auth: tokens)."""
    config: Path | None = None
    enroll: str = ""
    """host:port of the enrollment listener, when the test gives it one."""

    def _open(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return urllib.request.urlopen(urllib.request.Request(f"http://{self.http}{path}", headers=headers), timeout=5)

    def get(self, path: str) -> Any:
        with self._open(path) as resp:
            return json.loads(resp.read())

    def text(self, path: str) -> str:
        with self._open(path) as resp:
            return str(resp.read().decode())

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`xunjian ARGS` against this collector (its URL, its token)."""
        env = dict(os.environ, XUNJIAN_URL=f"http://{self.http}", XUNJIAN_TOKEN=self.token, PYTHONPATH=str(ROOT))
        done = subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, timeout=60,
                              env=env, cwd=ROOT)
        if check:
            assert done.returncode == 0, f"xunjian {' '.join(args)}: {done.stderr}"
        return done

    def healthy(self) -> bool:
        try:
            return bool(self.get("/healthz").get("status") == "ok")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def wait_healthy(self, timeout: float = 20) -> None:
        try:
            wait_for(self.healthy, timeout=timeout, what=f"collector {self.http} healthy")
        except AssertionError:
            raise AssertionError(f"collector not healthy; its log:\n{self.output()}") from None

    def agent(self, agent_id: str) -> dict[str, Any] | None:
        for a in self.get("/api/v1/agents"):
            if a["id"] == agent_id:
                return dict(a)
        return None

    def high_water(self, agent_id: str) -> int:
        """The highest seq of the agent this collector has stored (0 before its first batch)."""
        a = self.agent(agent_id)
        return int(a["high_water_seq"]) if a else 0

    def results(self, agent_id: str) -> list[dict[str, Any]]:
        """Every stored result of one agent (store.history: all), paging by seq."""
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get(f"/api/v1/results?agent={agent_id}&after_seq={after}&limit=10000")
            if not page:
                return out
            out.extend(page)
            after = page[-1]["seq"]


@dataclass
class Fleet:
    """A temp directory holding one collector and any number of agents."""

    root: Path
    procs: list[Process] = field(default_factory=list)

    def collector(self, *, history: str = "all", lost_after: str = "3s", grpc_port: int | None = None,
                  http_port: int | None = None, name: str = "collector", extra: str = "",
                  tls: str = "{mode: insecure}", http_auth: str = "{auth: none}") -> Collector:
        """A collector; plain-text gRPC and an unauthenticated API unless `tls` / `http_auth` say otherwise."""
        grpc = f"127.0.0.1:{grpc_port or free_port()}"
        http = f"127.0.0.1:{http_port or free_port()}"
        cfg = self.root / f"{name}.yaml"
        calendar = "" if "calendar:" in extra else \
            f"calendar: {{files: [{', '.join(str(p) for p in calendar_stand_ins(self.root))}]}}\n"
        cfg.write_text(
            f'listen: {{grpc: "{grpc}", http: "{http}"}}\n'
            f"store: {{url: 'sqlite:///{self.root / (name + '.db')}', history: {history}, history_retention: 7d}}\n"
            f"agents: {{lost_after: {lost_after}}}\ntls: {tls}\nhttp: {http_auth}\n{calendar}{extra}"
        )
        c = Collector(name=name, args=[sys.executable, "-m", "xunjian", "collector", "serve", "--config", str(cfg)],
                      log=self.root / f"{name}.log", grpc=grpc, http=http, config=cfg)
        self.procs.append(c)
        return c

    def agent(self, agent_id: str, collector_addresses: list[str], checks_yaml: str, *,
              spool_max: str = "64MiB", packs: str = "[pack.yaml]", extra: str = "",
              tls: str = "{mode: insecure}") -> Process:
        adir = self.root / agent_id
        adir.mkdir(exist_ok=True)
        (adir / "pack.yaml").write_text(checks_yaml)
        cfg = adir / "agent.yaml"
        addrs = ", ".join(f'"{a}"' for a in collector_addresses)
        cfg.write_text(
            f"agent: {{id: {agent_id}, labels: {{role: test}}}}\n"
            f"collector: {{addresses: [{addrs}], heartbeat_interval: 1s, batch_wait: 50ms,"
            f" reconnect: {{initial: 100ms, max: 1s}}, tls: {tls}}}\n"
            f"spool: {{path: spool.db, max_bytes: {spool_max}}}\n"
            f"packs: {packs}\n{extra}"
        )
        p = Process(name=agent_id, args=[sys.executable, "-m", "xunjian", "agent", "run", "--config", str(cfg)],
                    log=self.root / f"{agent_id}.log")
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.output()[-4000:]}" for p in self.procs)


def steady_pack(n: int = 5, interval: str = "200ms") -> str:
    """`n` cheap memory checks: a steady stream of results (25 a second by default) whose seqs can be counted."""
    checks = "\n".join(f"  - {{id: e2e.mem{i}, kind: host.memory}}" for i in range(n))
    return f"pack: steady\ndefaults: {{interval: {interval}, timeout: 2s}}\nchecks:\n{checks}\n"
