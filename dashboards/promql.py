"""PromQL pieces every dashboard shares: the template-variable matchers and the status ranking."""

from __future__ import annotations

SITE = 'site=~"$site"'
"""`site` is a target label set in the Prometheus scrape config (one per collector); All matches no label."""
SYSTEM = 'system=~"$system"'
AGENT = 'agent=~"$agent"'
TARGET = 'target=~"$target"'
INSTANCE = 'instance=~"$instance"'

INTERFACE_KINDS = ("http", "tcp", "hl7.mllp", "dicom.echo", "soap")
"""Check kinds that probe a link between systems (tls.cert and dns are not links: they have their own panels)."""
INTERFACE = 'kind=~"' + "|".join(k.replace(".", "[.]") for k in INTERFACE_KINDS) + '"'
"""A regex without backslashes: `[.]` survives JSON and PromQL string escaping unchanged."""

STATUS_NAMES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
"""The Nagios status codes of xunjian_check_status."""
RANK_NAMES = {0: "OK", 1: "WARNING", 2: "UNKNOWN", 3: "CRITICAL"}
"""Status ranked by severity, as `ranked` computes it: CRITICAL above UNKNOWN (could not tell) above WARNING."""


def sel(metric: str, *matchers: str) -> str:
    """`metric{m1, m2}`; a metric without matchers stays bare."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def ranked(selector: str) -> str:
    """Status codes re-ordered by severity (0 OK, 1 WARNING, 2 UNKNOWN, 3 CRITICAL), so `max` gives the worst.

    The raw codes put UNKNOWN (3) above CRITICAL (2); a wall must show a system red when any check is CRITICAL.
    """
    return f"(({selector} == 2) + 1 or ({selector} == 3) - 1 or {selector})"


CONNECTED = "xunjian_agent_up == 1"
"""Agents with a stream open to the collector (the `instance`) that exports them."""


def connected(selector: str) -> str:
    """Only the series of agents connected now, from the collector they are connected to.

    A collector keeps exporting the last state of an agent that left it (lost, or moved to another collector,
    with xunjian_agent_up 0 there): without this, a wall would show a dead host's last OK, or an agent twice.
    """
    return f"({selector} and on (instance, agent) ({CONNECTED}))"


def status_now(selector: str) -> str:
    """Status codes of connected agents; the checks of an agent connected to no collector count as UNKNOWN (3),
    since nobody can tell what they would say now."""
    return f"({connected(selector)} or ({selector} unless on (agent) ({CONNECTED})) * 0 + 3)"


def worst_now(selector: str, by: str) -> str:
    """The worst current status by `by`, ranked (0 OK, 1 WARNING, 2 UNKNOWN, 3 CRITICAL)."""
    return f"max by ({by}) ({ranked(status_now(selector))})"


def check_value(check_id: str, *matchers: str) -> str:
    """The latest measured value of one check, across the connected agents and targets the matchers select."""
    return connected(sel("xunjian_check_value", f'check="{check_id}"', *matchers))
