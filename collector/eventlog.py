"""The log lines an operator reads at 3 a.m.: agents coming and going, incidents opened and resolved.

One function per event, so the wording and the structured fields (`event`, `agent`, ...) are the same wherever
the event happens, and docs/operations.md can list them. Incidents are logged after their commit, never before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from collector.events import IncidentAction, IncidentOpen, IncidentResolve, IncidentUpdate, RuleChange
from collector.incidents import AGENT_LOST_CHECK, series_label, status_name

log = logging.getLogger("xunjian.collector.events")


def agent_connected(agent_id: str, hostname: str, version: str, checks: int, peer: str, stored_seq: int) -> None:
    log.info("agent %s connected from %s (host %s, xunjian %s, %d checks); stored up to seq %d", agent_id, peer,
             hostname, version or "?", checks, stored_seq,
             extra={"event": "agent.connected", "agent": agent_id, "peer": peer, "checks": checks})


def agent_disconnected(agent_id: str, why: str) -> None:
    log.info("agent %s disconnected: %s", agent_id, why, extra={"event": "agent.disconnected", "agent": agent_id})


def checks_ended(agent_id: str, ended: Sequence[tuple[str, str]]) -> None:
    names = ", ".join(f"{c}@{t}" if t else c for c, t in ended)
    log.info("agent %s no longer runs %d checks (%s): their series ended", agent_id, len(ended), names,
             extra={"event": "checks.removed", "agent": agent_id, "checks": len(ended)})


def frame_refused(agent_id: str, peer: str, reason: str, message: str) -> None:
    log.warning("agent %s (from %s): frame refused (%s): %s; nothing of it was applied", agent_id, peer, reason,
                message, extra={"event": "frame.refused", "agent": agent_id, "peer": peer, "reason": reason})


def results_clamped(agent_id: str, clamped: dict[str, int]) -> None:
    what = ", ".join(f"{n} {_CLAMPED.get(k, k)}" for k, n in sorted(clamped.items()))
    log.warning("agent %s: results left out: %s", agent_id, what,
                extra={"event": "results.clamped", "agent": agent_id, **clamped})


_CLAMPED = {"status": "with a status outside OK 0 .. UNKNOWN 3",
            "unsafe_id": "with an unsafe check id, target or key",
            "series_cap": "of new series beyond ingest.max_series_per_agent"}


def catalogue_changed(agent_id: str, changes: Sequence[RuleChange], added: Sequence[tuple[str, str]]) -> None:
    """A Hello changed the incident rules of known checks or added checks: a config change, also audited."""
    rules = "; ".join(f"{c.check_id}{'@' + c.target if c.target else ''} {c.field} {c.old} -> {c.new}"
                      for c in changes[:20])
    more = f" (and {len(changes) - 20} more)" if len(changes) > 20 else ""
    log.warning("agent %s changed its checks: %s%s%s", agent_id, rules or "no rule changed", more,
                f"; {len(added)} checks added" if added else "",
                extra={"event": "agent.catalogue_changed", "agent": agent_id, "rule_changes": len(changes),
                       "added": len(added)})


def incarnation_restarted(agent_id: str, old: str, new: str, seq_base: int) -> None:
    log.warning("agent %s has a new spool (incarnation %s, was %s): a reinstalled agent; its seqs start again "
                "(history numbered on from %d)", agent_id, new, old, seq_base,
                extra={"event": "agent.new_incarnation", "agent": agent_id})


def spool_dropped(agent_id: str, dropped: int, total: int) -> None:
    log.warning("agent %s dropped %d results because its spool was full (%d in total): it could not reach a "
                "collector for long, or its spool.max_bytes is too small", agent_id, dropped, total,
                extra={"event": "agent.spool_dropped", "agent": agent_id, "dropped": dropped})


def incidents_committed(actions: Sequence[IncidentAction]) -> None:
    """One line per incident opened or resolved (and per agent lost or back), once they are in the store."""
    for a in actions:
        where = series_label(a.agent_id, a.target, a.key)
        if isinstance(a, IncidentOpen):
            if a.check_id == AGENT_LOST_CHECK:
                log.warning("agent %s lost: %s", a.agent_id, a.summary,
                            extra={"event": "agent.lost", "agent": a.agent_id})
                continue
            log.warning("incident opened: %s [priority %s%s]: %s", a.title, a.priority,
                        f", system {a.system}" if a.system else "", a.summary,
                        extra={"event": "incident.opened", "agent": a.agent_id, "check": a.check_id,
                               "target": a.target, "key": a.key, "priority": a.priority,
                               "status": status_name(a.status)})
        elif isinstance(a, IncidentResolve):
            if a.check_id == AGENT_LOST_CHECK:
                log.info("agent %s back: %s", a.agent_id, a.summary, extra={"event": "agent.back", "agent": a.agent_id})
                continue
            log.info("incident resolved: %s on %s: %s", a.check_id, where, a.summary,
                     extra={"event": "incident.resolved", "agent": a.agent_id, "check": a.check_id,
                            "target": a.target, "key": a.key})
        elif isinstance(a, IncidentUpdate):
            log.info("incident on %s %s is now %s: %s", a.check_id, where, status_name(a.status), a.summary,
                     extra={"event": "incident.updated", "agent": a.agent_id, "check": a.check_id,
                            "status": status_name(a.status)})
