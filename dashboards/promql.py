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


def check_value(check_id: str, *matchers: str) -> str:
    """The latest measured value of one check, across the agents and targets the matchers select."""
    return sel("xunjian_check_value", f'check="{check_id}"', *matchers)
