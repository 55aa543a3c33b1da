"""Fleet and host: the agents, and every host's utilisation, saturation and errors (the USE method)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards import panels as p
from dashboards.packs import GREEN, RED, Step
from dashboards.promql import AGENT, SITE, SYSTEM, sel, status_now
from dashboards.signals import CPU, DISK, HOST_UPTIME, INODES, LOAD, MEMORY, SWAP

NOT_OK = 'outcome!="ok"'


def build() -> db.Dashboard:
    d = (
        p.dashboard("fleet", "Xunjian · Fleet and hosts", "Agents and the health of every host they run on: "
                    "utilisation, saturation and errors per host (USE), the agents' spools and failed checks.")
        .with_variable(p.query_variable("site", "Site", "label_values(xunjian_agent_up, site)"))
        .with_variable(p.query_variable("system", "System", f"label_values(xunjian_check_status{{{SITE}}}, system)"))
        .with_variable(p.query_variable("agent", "Agent",
                                        f"label_values(xunjian_check_status{{{SITE}, {SYSTEM}}}, agent)"))
        .with_variable(p.console_variable())
    )
    agents = [SITE, AGENT]
    d = (
        d.with_row(p.row("Agents"))
        .with_panel(p.big_number("Agents up", "Agents with a stream open to a collector.",
                                 f"sum({sel('xunjian_agent_up', *agents)})", "", "none", [Step(None, "blue")], w=4, h=6))
        .with_panel(p.big_number("Agents lost", "Agents whose stream closed or whose heartbeats stopped.",
                                 f"count({sel('xunjian_agent_up', *agents)} == 0) or vector(0)", "", "none",
                                 [Step(None, GREEN), Step(1, RED)], w=4, h=6))
        .with_panel(p.value_table(
            "Seconds since each agent's last frame", "Time since the collector last heard from each agent (Hello, "
            "batch or heartbeat, every 10 s by default); the agent is lost after the collector's agents.lost_after.",
            f"time() - {sel('xunjian_agent_last_seen_timestamp_seconds', *agents)}", "s", w=16, h=6))
    )
    d = (
        d.with_row(p.row("Utilisation"))
        .with_panel(p.signal_graph(CPU, agents, "{{agent}}", w=8))
        .with_panel(p.signal_graph(MEMORY, agents, "{{agent}}", w=8))
        .with_panel(p.signal_graph(DISK, agents, "{{agent}} {{key}}", w=8))
    )
    d = (
        d.with_row(p.row("Saturation"))
        .with_panel(p.signal_graph(LOAD, agents, "{{agent}}", w=6))
        .with_panel(p.signal_graph(SWAP, agents, "{{agent}}", w=6))
        .with_panel(p.graph(
            "Agent spool depth", "Results each agent holds in its durable spool, waiting for a collector to "
            "acknowledge them (as of its last heartbeat). It grows while the collector is unreachable.", "short",
            [p.query(sel("xunjian_agent_spool_depth", *agents), "{{agent}}")], w=6))
        .with_panel(p.graph(
            "Results dropped by agents", "Results agents dropped because their spool reached its size bound: lost "
            "data. Anything above zero needs the collector back or a larger spool.", "short",
            [p.query(f"increase({sel('xunjian_agent_spool_dropped_total', *agents)}[$__rate_interval])",
                     "{{agent}}")], w=6))
    )
    return (
        d.with_row(p.row("Errors"))
        .with_panel(p.status_table(
            "Checks not OK", "Every check series whose latest status is WARNING, CRITICAL or UNKNOWN, with its "
            "agent, system, priority and key; the checks of an agent connected to no collector are UNKNOWN.",
            f"{status_now(sel('xunjian_check_status', SITE, SYSTEM, AGENT))} > 0", w=12))
        .with_panel(p.value_table(
            "Runs that did not complete", "Checks whose latest run ended otherwise than ok (timeout, "
            "connection_refused, auth_failed, permission_denied, not_found...): the check could not tell.",
            f"count by (agent, check, target, key, outcome) ({sel('xunjian_check_outcome_info', *agents, NOT_OK)})",
            "none", w=12))
        .with_panel(p.graph(
            "Slowest checks", "How long the latest run of the ten slowest check series took.", "s",
            [p.query(f"topk(10, {sel('xunjian_check_duration_seconds', *agents)})", "{{agent}} {{check}} {{key}}")],
            w=12))
        .with_panel(p.signal_bars(INODES, agents, "{{agent}} {{key}}", w=6, h=8))
        .with_panel(p.signal_bars(HOST_UPTIME, agents, "{{agent}}", w=6, h=8))
    )
