"""`xunjian up`: a collector and a local agent on loopback, with configs and data in one directory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

LOOPBACK_COLLECTOR = """\
# `xunjian up` on loopback: agents are not authenticated and every HTTP caller is admin (docs/security.md).
tls: {mode: insecure}
http: {auth: none}
"""

COLLECTOR_YAML = """\
# Written by `xunjian up`; edit freely, it is not overwritten.
listen: {{grpc: "{grpc}", http: "{http}"}}
""" + LOOPBACK_COLLECTOR.replace("{", "{{").replace("}", "}}") + """store:
  url: sqlite:///{store}
  history: transitions
  history_retention: 7d
agents: {{lost_after: 90s}}
"""

AGENT_YAML = """\
# Written by `xunjian up`; edit freely, it is not overwritten.
agent:
  id: {agent_id}
  labels: {{role: local}}
collector:
  addresses: ["{grpc}"]
  tls: {{mode: insecure}}
spool:
  path: {spool}
  max_bytes: 64MiB
packs:
  - builtin:{host_pack}
"""


def write_configs(data_dir: Path, grpc: str, http: str) -> tuple[Path, Path]:
    """Create collector.yaml and agent.yaml in `data_dir` unless the user already has them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    collector = data_dir / "collector.yaml"
    agent = data_dir / "agent.yaml"
    if not collector.exists():
        collector.write_text(COLLECTOR_YAML.format(grpc=grpc, http=http, store=(data_dir / "collector.db").resolve()))
    elif "\ntls:" not in "\n" + collector.read_text():
        with collector.open("a") as f:  # written by an older version: keep it running on loopback as before
            f.write("\n" + LOOPBACK_COLLECTOR)
        print(f"note: added the loopback settings (tls: insecure, http auth: none) to {collector}", file=sys.stderr)
    if not agent.exists():
        agent.write_text(AGENT_YAML.format(
            agent_id=json.dumps(socket.gethostname()),
            grpc=grpc,
            spool=(data_dir / "spool.db").resolve(),
            host_pack="host-windows" if sys.platform == "win32" else "host-linux",
        ))
    return collector, agent


def _healthy(http: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{http}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def run_up(data_dir: Path, *, grpc: str, http: str, log_format: str = "text", log_level: str | None = None) -> int:
    """Start both processes, print where things are, and stop both on Ctrl-C or when either dies."""
    for addr in (grpc, http):
        if not addr.startswith(("127.", "localhost:", "[::1]:")):
            print(f"error: xunjian up listens on loopback only; {addr} is not a loopback address", file=sys.stderr)
            return 2
    collector_yaml, agent_yaml = write_configs(data_dir, grpc, http)
    cmd = [sys.executable, "-m", "xunjian"]
    logs = ["--log-format", log_format, *(["--log-level", log_level] if log_level else [])]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    collector = subprocess.Popen([*cmd, "collector", "serve", "--config", str(collector_yaml), *logs], env=env)
    if not _healthy(http, timeout=20):
        code = collector.poll()
        collector.terminate()
        print(f"error: the collector did not become healthy on http://{http} (exit code {code})", file=sys.stderr)
        return 1
    agent = subprocess.Popen([*cmd, "agent", "run", "--config", str(agent_yaml), *logs], env=env)
    base = f"http://{http}"
    print(
        "\nXunjian is up (Ctrl-C stops both).\n"
        f"  console   {base}/\n"
        f"  API       {base}/api/v1/agents  /api/v1/checks  /api/v1/incidents\n"
        f"  metrics   {base}/metrics\n"
        f"  gRPC      {grpc}\n"
        f"  data      {data_dir.resolve()} (collector.yaml, agent.yaml, collector.db, spool.db)\n"
        f"  try       XUNJIAN_URL={base} {Path(sys.executable).parent / 'xunjian'} status\n",
        flush=True,
    )
    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = 0
    try:
        while not stopping:
            for name, proc in (("collector", collector), ("agent", agent)):
                rc = proc.poll()
                if rc is not None:
                    print(f"error: the {name} exited with code {rc}; stopping", file=sys.stderr)
                    code = rc or 1
                    stopping = True
            time.sleep(0.3)
    finally:
        for proc in (agent, collector):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (agent, collector):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    return code
