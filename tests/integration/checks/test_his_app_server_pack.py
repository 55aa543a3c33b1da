"""builtin:his-app-server run for real on this machine, its paths and ports overridden the way agent.yaml does:
a "java" process with Tomcat's main class, an "nginx", listening sockets, an application log and an export file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.context import RunContext
from checks.pack import load_checks
from checks.result import Result, Status
from checks.yamlsource import parse_yaml

pytestmark = pytest.mark.integration


@pytest.fixture
def his_host(tmp_path: Path) -> Iterator[dict[str, object]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(sys.executable)
    (bin_dir / "nginx").symlink_to(sys.executable)
    sleep = "import time; time.sleep(120)"
    procs = [
        subprocess.Popen([str(bin_dir / "java"), "-c", sleep, "org.apache.catalina.startup.Bootstrap", "start"]),
        subprocess.Popen([str(bin_dir / "nginx"), "-c", sleep, "master"]),
    ]
    tomcat, nginx = socket.socket(), socket.socket()
    for s in (tomcat, nginx):
        s.bind(("127.0.0.1", 0))
        s.listen()
    log = tmp_path / "his-app.log"
    log.write_text("2026-11-22 01:00:00 INFO started\n")
    export = tmp_path / "export"
    export.mkdir()
    (export / "his_daily_20261121.csv").write_bytes(b"id,amount\n" + b"1,2\n" * 1000)
    try:
        yield {"tomcat_port": tomcat.getsockname()[1], "nginx_port": nginx.getsockname()[1], "log": log,
               "export": export, "state": tmp_path / "state"}
    finally:
        for p in procs:
            p.kill()
            p.wait()
        tomcat.close()
        nginx.close()


def run_pack(host: dict[str, object]) -> dict[str, list[Result]]:
    agent = parse_yaml(f"""
overrides:
  his.tomcat.port: {{port: {host["tomcat_port"]}}}
  his.nginx.port: {{port: {host["nginx_port"]}}}
  his.app.errors: {{path: "{host["log"]}"}}
  his.app.oom: {{path: "{host["log"]}"}}
  his.export.nightly.age: {{path: "{host["export"]}/his_daily_*.csv"}}
  his.export.nightly.size: {{path: "{host["export"]}/his_daily_*.csv"}}
""", "agent.yaml")
    checks = load_checks(["builtin:his-app-server"], overrides=agent.data["overrides"], overrides_source=agent)
    ctx = RunContext(state_dir=host["state"])  # type: ignore[arg-type]
    return {spec.id: spec.probe(ctx) for spec in checks.enabled()}


def test_his_app_server_pack_healthy_then_failing(his_host: dict[str, object]) -> None:
    # psutil reads /proc; give the two fresh processes a moment to have exec'd
    for _ in range(50):
        first = run_pack(his_host)
        if first["his.tomcat.process"][0].status is Status.OK and first["his.nginx.process"][0].status is Status.OK:
            break
        time.sleep(0.1)
    statuses = {cid: [r.status for r in results] for cid, results in first.items()}
    assert statuses == {cid: [Status.OK] for cid in statuses}, {cid: [r.summary for r in rs] for cid, rs in first.items()}

    log: Path = his_host["log"]  # type: ignore[assignment]
    with log.open("a") as f:
        f.write("2026-11-22 02:00:00 ERROR java.sql.SQLException: ORA-12541: TNS:no listener\n")
        f.write("2026-11-22 02:00:01 ERROR java.lang.OutOfMemoryError: Java heap space\n")
    export: Path = his_host["export"]  # type: ignore[assignment]
    old = time.time() - 31 * 3600
    for f in export.iterdir():
        os.utime(f, (old, old))
    second = run_pack(his_host)
    assert second["his.app.errors"][0].value == 1          # the OOM line is left to his.app.oom
    assert second["his.app.errors"][0].status is Status.OK  # warn is "> 5" per run
    assert second["his.app.oom"][0].status is Status.CRITICAL
    assert second["his.export.nightly.age"][0].status is Status.CRITICAL
    assert second["his.export.nightly.size"][0].status is Status.OK
