"""The server-room wall: large tiles readable from across the room, one glance per question.

Which system is red? Is anything open, and how urgent? Are the agents and collectors there? Is a database
full, blocked, behind or unbacked? Is an interface down or slow? Every tile links to its detail dashboard.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards import panels as p
from dashboards.packs import GREEN, RED, Step
from dashboards.promql import AGENT, INTERFACE, SITE, SYSTEM, connected, sel, status_now, worst_now
from dashboards.signals import DATABASE_WALL

STATUS = sel("xunjian_check_status", SITE, SYSTEM, AGENT)
JOB = 'job=~"$job"'


def build() -> db.Dashboard:
    d = (
        p.dashboard("wall", "Xunjian · Server-room wall", "Worst status per hospital system, open incidents, agents, "
                    "database health and interface links. Meant for a dark screen in kiosk mode.",
                    refresh="10s", time_from="now-1h")
        .with_variable(p.query_variable("site", "Site", "label_values(xunjian_agent_up, site)"))
        .with_variable(p.query_variable("system", "System", f"label_values(xunjian_check_status{{{SITE}}}, system)"))
        .with_variable(p.query_variable("agent", "Agent",
                                        f"label_values(xunjian_check_status{{{SITE}, {SYSTEM}}}, agent)"))
        .with_variable(p.query_variable("job", "Collector job", f"label_values(xunjian_ingest_streams{{{SITE}}}, job)",
                                        all_value=None))
        .with_variable(p.console_variable())
    )
    d = d.with_row(p.row("Hospital systems")).with_panel(p.status_tiles(
        "Worst status per system", "The worst current status of every check of each system (HIS, CIS, EMR, LIS, PACS, payments, "
        "insurance...): red when any check is CRITICAL, purple when one could not tell (UNKNOWN), yellow for "
        "WARNING. The checks of an agent no collector hears from count as UNKNOWN. Click a tile for its hosts or "
        "the console.",
        worst_now(STATUS, "system"), "{{system}}", ranked=True, w=24, h=7, across_the_room=True,
        links=[p.link("Hosts of ${__field.labels.system}", p.to_dashboard("fleet", "var-system=${__field.labels.system}")),
               p.link("Incidents in the console", p.CONSOLE)],
        no_value="no data: is a collector down?"))
    d = (
        d.with_row(p.row("Now"))
        .with_panel(p.big_number(
            "Collectors down", "Collector scrape targets Prometheus cannot reach. While one is down, every tile fed by "
            "it shows no data.", f"count(up{{{JOB}, {SITE}}} == 0) or vector(0)", "", "none", [Step(None, GREEN), Step(1, RED)],
            w=4, h=5, links=[p.link("Collector", p.to_dashboard("collector"))]))
        .with_panel(p.big_number(
            "Agents lost", "Agents whose stream is closed or whose heartbeats stopped (the collector opens an 'agent "
            "lost' incident for each).", f"count(xunjian_agent_up{{{SITE}, {AGENT}}} == 0) or vector(0)", "", "none",
            [Step(None, GREEN), Step(1, RED)], w=4, h=5, links=[p.link("Fleet", p.to_dashboard("fleet"))]))
        .with_panel(p.big_number(
            "Agents up", "Agents with a stream open to a collector.", f"sum(xunjian_agent_up{{{SITE}, {AGENT}}})", "",
            "none", [Step(None, "blue")], w=4, h=5, links=[p.link("Fleet", p.to_dashboard("fleet"))]))
        .with_panel(p.big_number(
            "Open incidents by priority", "Open incidents per priority (high, medium, low; 'agent lost' counts as "
            "high). The contract asks for a response within 15 minutes and resolution within 1/3/5 working days.",
            f"sum by (priority) (xunjian_incidents_open{{{SITE}}})", "{{priority}}", "none",
            [Step(None, GREEN), Step(1, "orange")], w=12, h=5, no_value="none open",
            links=[p.link("Incidents in the console", p.CONSOLE)]))
    )
    d = d.with_row(p.row("Databases"))
    for signal in DATABASE_WALL:
        d = d.with_panel(p.signal_bars(
            signal, [SITE, AGENT], "{{target}}@{{agent}} {{key}}", w=6, h=8,
            links=[p.link("Database ${__field.labels.target}", p.to_dashboard(
                "database", "var-agent=${__field.labels.agent}&var-target=${__field.labels.target}"))]))
    interface_status = sel("xunjian_check_status", SITE, SYSTEM, AGENT, INTERFACE)
    d = (
        d.with_row(p.row("Interfaces"))
        .with_panel(p.status_tiles(
            "Interface links", "Status of every link check between systems (HTTP, TCP, HL7 over MLLP, DICOM echo, "
            "SOAP): CRITICAL when the far end refuses, times out or answers wrongly.",
            status_now(interface_status), "{{check}} {{key}}", ranked=False, w=12, h=7,
            no_value="no interface checks",
            links=[p.link("Console", p.CONSOLE)]))
        .with_panel(p.bars(
            "Interface latency", "Seconds each link check took to get its answer (connect, HTTP page, HL7 ACK, "
            "DICOM echo); the check's own warn/crit decide the tile colour on the left.",
            connected(f"xunjian_check_value{{{SITE}, {AGENT}, unit=\"seconds\"}} and on (instance, agent, check, "
                      f"target, key) {interface_status}"), "{{check}} {{key}}", "s", w=12, h=7))
    )
    return (
        d.with_row(p.row("Incidents and SLA"))
        .with_panel(p.big_number(
            "Open incidents by system", "Active incidents (open or acknowledged) per system and priority; children "
            "explained by a parent (a lost agent's checks) are left out.",
            f"sum by (system, priority) (xunjian_incidents_open{{{SITE}}})", "{{system}} {{priority}}", "none",
            [Step(None, GREEN), Step(1, "orange")], w=8, h=5, no_value="none open"))
        .with_panel(p.big_number(
            "Past their deadline now", "Active incidents nobody acknowledged within the response time (15 minutes, "
            "7x24) or not resolved within their working days (1/3/5). Silenced incidents are left out.",
            f"sum by (deadline) (xunjian_incidents_overdue{{{SITE}}})", "{{deadline}}", "none",
            [Step(None, GREEN), Step(1, RED)], w=8, h=5, no_value="none",
            links=[p.link("Incidents in the console", p.CONSOLE)]))
        .with_panel(p.big_number(
            "Deadline breaches in the time shown", "Incidents that missed their response or resolution deadline in the "
            "dashboard's time range (pick the month for the contract's scorecard).",
            f"sum by (deadline) (increase(xunjian_incident_breaches_total{{{SITE}}}[$__range]))", "{{deadline}}",
            "none",
            [Step(None, GREEN), Step(1, "orange")], w=8, h=5, no_value="none"))
        .with_panel(p.bars(
            "Time to acknowledge (90th percentile)", "Of the incidents acknowledged in the time shown, by priority: 90 % "
            "were acknowledged within this time. The contract's response time is 15 minutes.",
            f"histogram_quantile(0.9, sum by (le, priority) (increase(xunjian_incident_acknowledge_seconds_bucket"
            f"{{{SITE}}}[$__range])))",
            "{{priority}}", "s", w=8, h=6))
        .with_panel(p.bars(
            "Time to resolve (90th percentile)", "Of the incidents resolved in the time shown, by priority: 90 % were "
            "resolved within this time (calendar time; the deadlines count working days).",
            f"histogram_quantile(0.9, sum by (le, priority) (increase(xunjian_incident_resolve_seconds_bucket"
            f"{{{SITE}}}[$__range])))",
            "{{priority}}", "s", w=8, h=6))
        .with_panel(p.graph(
            "Notifications", "Messages delivered and attempts failed per channel (WeCom, DingTalk, e-mail, webhook, "
            "Alertmanager), and what waits in the outbox. Failures keep the messages queued and are retried.", "none",
            [p.query(f"sum by (channel) (increase(xunjian_notifications_sent_total{{{SITE}}}[$__rate_interval]))",
                     "sent {{channel}}"),
             p.query(f"sum by (channel) (increase(xunjian_notifications_failed_total{{{SITE}}}[$__rate_interval]))",
                     "failed {{channel}}", ref="B"),
             p.query(f"sum by (stage) (xunjian_notifications_pending{{{SITE}}})", "waiting: {{stage}}", ref="C")],
            w=8, h=6))
    )
