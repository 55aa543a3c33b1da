"""The log lines an operator relies on, captured from real processes in `--log-format json`: start-up, agents
connected, lost and back, incidents opened and resolved, spool pressure and drops, shutdown. Every line is one
JSON object; no secret appears."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Fleet, Process, free_port, wait_for

pytestmark = pytest.mark.e2e
WAIT = 30.0


def json_lines(p: Process) -> list[dict[str, Any]]:
    out = []
    for line in p.output().splitlines():
        record = json.loads(line)  # every line of a daemon's stderr is one JSON object
        assert {"time", "level", "logger", "message"} <= set(record), line
        out.append(record)
    return out


def events(p: Process) -> list[str]:
    return [r["event"] for r in json_lines(p) if "event" in r]


def has(p: Process, event: str, **fields: Any) -> dict[str, Any] | None:
    for r in json_lines(p):
        if r.get("event") == event and all(r.get(k) == v for k, v in fields.items()):
            return r
    return None


def json_logs(p: Process) -> Process:
    p.args += ["--log-format", "json"]
    return p


def test_main_events_are_logged_by_both_daemons(fleet: Fleet, tmp_path: Path) -> None:
    flag = tmp_path / "interface-ok.flag"
    c = fleet.collector(lost_after="2s")
    json_logs(c).start()
    c.wait_healthy()
    pack = ("pack: ward\nchecks:\n  - id: his.interface.flag\n    kind: host.file\n"
            f"    path: {flag}\n    interval: 200ms\n    priority: high\n    system: HIS\n")
    a = json_logs(fleet.agent("ward-3", [c.grpc], pack))
    a.start()
    wait_for(lambda: has(c, "incident.opened", check="his.interface.flag"), timeout=WAIT, what="incident opened")
    opened = has(c, "incident.opened")
    assert opened is not None and opened["level"] == "WARNING" and opened["priority"] == "high"
    assert opened["message"].startswith("incident opened: his.interface.flag CRITICAL on ward-3")
    flag.write_text("up")
    wait_for(lambda: has(c, "incident.resolved", check="his.interface.flag"), timeout=WAIT, what="incident resolved")

    a.kill()
    wait_for(lambda: has(c, "agent.lost", agent="ward-3"), timeout=WAIT, what="agent lost")
    again = json_logs(Process(name="ward-3 again", args=list(a.args[:-2]), log=a.log))
    fleet.procs.append(again)
    again.start()
    wait_for(lambda: has(c, "agent.back", agent="ward-3"), timeout=WAIT, what="agent back")
    assert again.stop() == 0
    assert c.stop() == 0

    start = has(c, "start")
    assert start is not None and start["grpc_port"] == int(c.grpc.rsplit(":", 1)[1])
    assert "collector started: xunjian" in start["message"] and "store" in start["message"]
    collector_events = events(c)
    for expected in ("start", "agent.connected", "incident.opened", "incident.resolved", "agent.disconnected",
                     "agent.lost", "agent.back", "shutdown", "stopped"):
        assert expected in collector_events, f"{expected} missing from {collector_events}"
    assert collector_events[-2:] == ["shutdown", "stopped"]
    agent_events = events(a)
    assert agent_events[0] == "start" and agent_events.count("start") == 2, agent_events
    assert agent_events[-2:] == ["shutdown", "stopped"]
    agent_start = has(a, "start")
    assert agent_start is not None and agent_start["checks"] == 1 and agent_start["agent"] == "ward-3"


def test_spool_pressure_and_drops_are_logged_at_the_agent_and_the_collector(fleet: Fleet) -> None:
    grpc_port = free_port()
    checks = "".join(f"  - id: load.{n}\n    kind: host.load\n    interval: 50ms\n" for n in range(20))
    a = json_logs(fleet.agent("ward-7", [f"127.0.0.1:{grpc_port}"], f"pack: busy\nchecks:\n{checks}",
                              spool_max="64KiB"))
    a.start()
    wait_for(lambda: has(a, "spool.dropped"), timeout=WAIT, what="the agent dropping the oldest results")
    pressure = [r for r in json_lines(a) if r.get("event") == "spool.pressure"]
    assert len(pressure) == 2 and all(r["level"] == "WARNING" for r in pressure)
    assert pressure[0]["used_fraction"] >= 0.5 and pressure[1]["used_fraction"] >= 0.9
    dropped = [r for r in json_lines(a) if r.get("event") == "spool.dropped"]
    assert 1 <= len(dropped) <= 6, "a repeating warning is rate-limited, not one line per append"
    c = json_logs(fleet.collector(grpc_port=grpc_port))
    c.start()
    c.wait_healthy()
    wait_for(lambda: has(c, "agent.spool_dropped", agent="ward-7"), timeout=WAIT, what="the collector seeing drops")
    line = has(c, "agent.spool_dropped")
    assert line is not None and line["level"] == "WARNING" and line["dropped"] > 0
