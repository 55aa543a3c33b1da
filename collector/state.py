"""The in-memory state engine: latest result per series, consecutive counters, transitions, incident decisions.

Pure logic: callers pass the time and get records back; nothing here does I/O. The hot path is
`apply_batch`: an unchanged result costs one dictionary lookup and an attribute store (the latest
result message itself is kept and read only at scrape time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from checks.kinds import FINDINGS_KINDS
from checks.result import Status, seconds_from_ms
from collector import incidents
from collector.events import (
    AgentHeartbeat,
    AgentHello,
    BatchEffects,
    CheckRule,
    FindingSeen,
    HelloEffects,
    IncidentAction,
    ResultLike,
    RuleChange,
    Transition,
)
from collector.sanity import (
    MAX_SEQ,
    STATUS_MAX,
    SanityStats,
    check_batch,
    clamp_summary,
    clamp_value,
    safe_id,
    safe_key,
)
from collector.store import StoreSnapshot

INF = math.inf
NO_STATUS = -1
OK = int(Status.OK)
"""The checks' OK as the plain int the wire carries (protobuf enums compare as ints)."""
SeriesKey = tuple[str, str, str]
"""(check_id, target, key) within one agent."""
RULE_FIELDS = ("raise_after", "clear_after", "priority", "system", "kind")
"""The parts of a check's declaration that decide its incidents: a change of one is a config change, audited."""


@dataclass(frozen=True)
class Limits:
    """Bounds on what one agent may make the collector hold (collector.yaml `ingest`)."""

    max_series_per_agent: int = 10_000
    max_seq_ahead: int = 10_000_000
    """How far a seq may run ahead of the agent's last stored or reported one: more than a full spool holds."""
    max_summary_chars: int = 4096


class Series:
    """One (agent, check, target, key): latest result and the counters the incident rules need."""

    __slots__ = ("bad", "findings", "incident", "label_text", "latest", "ok", "rule", "since", "status")

    def __init__(self, rule: CheckRule, status: int = NO_STATUS, since: float = 0.0) -> None:
        self.rule = rule
        self.status = status
        self.since = since
        self.latest: ResultLike | None = None
        self.bad = 0
        self.ok = 0
        self.incident = False
        self.findings = not rule.kind or rule.kind.startswith(FINDINGS_KINDS)
        self.label_text: tuple[str, str, str] | None = None
        """Escaped exposition labels of this series (agent and check, key, target), cached by /metrics."""


class AgentState:
    __slots__ = ("accepted_seq", "connections", "dropped_total", "duplicates_total", "hostname", "incarnation",
                 "labels", "last_frame_at", "last_seq", "lost", "platform", "retired", "roles", "rules", "seq_base",
                 "series", "series_capped", "spool_depth", "stored_seq", "version")

    def __init__(self, agent_id: str) -> None:
        self.hostname = agent_id
        self.labels: dict[str, str] = {}
        self.roles: list[str] = []
        self.version = ""
        self.platform = ""
        self.rules: dict[tuple[str, str], CheckRule] = {}
        self.series: dict[SeriesKey, Series] = {}
        self.retired: set[tuple[str, str]] = set()
        """(check id, target) a Hello stopped declaring: results of theirs still in flight must not revive them."""
        self.accepted_seq = 0
        """Highest seq applied to the engine (possibly not yet committed)."""
        self.stored_seq = 0
        """Highest seq committed to the store: the high-water mark sent in Welcome."""
        self.last_seq = 0
        self.spool_depth = 0
        self.dropped_total = 0
        self.duplicates_total = 0
        self.last_frame_at = 0.0
        self.connections = 0
        self.lost = False
        self.incarnation = ""
        """The random id of the agent's spool; a new one restarts its seqs (a reinstalled agent)."""
        self.seq_base = 0
        """Seqs of earlier incarnations: stored history numbers this incarnation's results from here."""
        self.series_capped = 0
        """Results of new series left out because the agent reached max_series_per_agent."""


@dataclass(frozen=True)
class AgentLiveness:
    agent_id: str
    hostname: str
    last_seen: float
    lost_open: bool


@dataclass(frozen=True)
class SeriesView:
    agent_id: str
    check_id: str
    target: str
    key: str
    series: Series


class StateEngine:
    def __init__(self, *, history_all: bool = False, limits: Limits | None = None) -> None:
        self.agents: dict[str, AgentState] = {}
        self.history_all = history_all
        self.limits = limits or Limits()
        self.sanity = SanityStats()

    def agent(self, agent_id: str) -> AgentState:
        state = self.agents.get(agent_id)
        if state is None:
            state = self.agents[agent_id] = AgentState(agent_id)
        return state

    def restore(self, snap: StoreSnapshot, now: float) -> None:
        """Rebuild from the store: high-water marks, catalogue, last statuses and open incidents."""
        for rec in snap.agents:
            a = self.agent(rec.agent_id)
            a.hostname, a.labels = rec.hostname, dict(rec.labels)
            a.accepted_seq = a.stored_seq = rec.high_water_seq
            a.last_seq, a.spool_depth, a.dropped_total = rec.last_seq, rec.spool_depth, rec.dropped_total
            a.incarnation, a.seq_base = rec.incarnation, rec.seq_base
            a.last_frame_at = max(rec.last_seen, now)  # a restarted collector gives every agent lost_after to reconnect
        for agent_id, rules in snap.rules.items():
            self.agent(agent_id).rules = {(r.check_id, r.target): r for r in rules}
        for s in snap.series:
            a = self.agent(s.agent_id)
            series = Series(self._rule(a, s.check_id, s.target), s.status, s.since)
            series.bad = 0 if s.status == OK else 1
            a.series[(s.check_id, s.target, s.key)] = series
        for inc in snap.open_incidents:
            a = self.agent(inc.agent_id)
            if inc.kind == "agent_lost":
                a.lost = True
                continue
            found = a.series.get((inc.check_id, inc.target, inc.key))
            if found is not None:
                found.incident = True

    @staticmethod
    def _rule(agent: AgentState, check_id: str, target: str) -> CheckRule:
        rule = agent.rules.get((check_id, target))
        return rule if rule is not None else CheckRule(check_id, target)

    def touch(self, agent_id: str, now: float) -> list[IncidentAction]:
        """Any frame from an agent: it is alive; resolve its 'agent lost' incident if one is open."""
        a = self.agent(agent_id)
        a.last_frame_at = now
        if a.lost:
            a.lost = False
            return [incidents.agent_back(agent_id, now)]
        return []

    def hello(self, hello: AgentHello) -> HelloEffects:
        """A new stream: the agent's identity and catalogue. A check it declared before and no longer does (a reload
        removed it) has its series ended and its open incidents resolved, saying why. A change of a check's incident
        rules is reported (the caller logs and audits it); an open incident keeps the larger clear_after of before
        and after, so a new declaration cannot resolve it early. A new spool incarnation restarts the seqs."""
        a = self.agent(hello.agent_id)
        a.hostname, a.labels, a.roles = hello.hostname or hello.agent_id, dict(hello.labels), list(hello.roles)
        a.version, a.platform = hello.version, hello.platform
        a.last_seq = self._reported_seq(a, hello.last_seq)
        rules = {(r.check_id, r.target): r for r in hello.checks}
        effects = HelloEffects(ended=[k for k in a.rules if k not in rules])
        if hello.incarnation and hello.incarnation != a.incarnation:
            if a.incarnation:
                effects.new_incarnation = True
                effects.previous_incarnation = a.incarnation
                a.seq_base += a.accepted_seq
                a.accepted_seq = a.stored_seq = 0
                a.last_seq = min(hello.last_seq, self.limits.max_seq_ahead)
            a.incarnation = hello.incarnation
        effects.seq_base = a.seq_base
        if a.rules:
            effects.added = [k for k in rules if k not in a.rules]
            effects.rule_changes = _rule_changes(a.rules, rules)
        if effects.ended:
            gone = set(effects.ended)
            for key, s in list(a.series.items()):
                if (key[0], key[1]) not in gone:
                    continue
                if s.incident:
                    status = s.status if s.status != NO_STATUS else Status.UNKNOWN
                    effects.incidents.append(incidents.check_removed(hello.agent_id, *key, status, hello.at))
                del a.series[key]
            a.retired |= gone
        a.retired -= rules.keys()
        a.rules = rules
        for (check_id, target, _key), s in a.series.items():
            old = s.rule
            s.rule = self._rule(a, check_id, target)
            if s.incident and old.clear_after > s.rule.clear_after:
                s.rule = replace(s.rule, clear_after=old.clear_after)
            s.findings = not s.rule.kind or s.rule.kind.startswith(FINDINGS_KINDS)
        effects.incidents.extend(self.touch(hello.agent_id, hello.at))
        return effects

    def _reported_seq(self, a: AgentState, reported: int) -> int:
        """The last seq an agent says it assigned, believed only as far as a full spool could be ahead."""
        return min(reported, max(a.accepted_seq, a.last_seq) + self.limits.max_seq_ahead, MAX_SEQ)

    def seq_ceiling(self, agent_id: str) -> int:
        """The highest seq a batch of this agent may carry now."""
        a = self.agent(agent_id)
        return min(max(a.accepted_seq, a.last_seq) + self.limits.max_seq_ahead, MAX_SEQ)

    def heartbeat(self, beat: AgentHeartbeat) -> list[IncidentAction]:
        a = self.agent(beat.agent_id)
        a.last_seq = self._reported_seq(a, beat.last_seq)
        a.spool_depth, a.dropped_total = beat.spool_depth, beat.dropped_total
        return self.touch(beat.agent_id, beat.at)

    def apply_batch(self, agent_id: str, results: Sequence[ResultLike], now: float) -> BatchEffects:
        """Dedupe by high-water mark, update series, decide transitions and incidents.

        Raises FrameRefused (collector/sanity.py) before changing anything when seqs do not strictly increase or run
        beyond reach, or a status is outside the enum. Non-finite values and long summaries are clamped; results
        of a new series with an unsafe id, or beyond the agent's series cap, are left out and counted.
        """
        a = self.agent(agent_id)
        if results:
            check_batch(results, self.seq_ceiling(agent_id))
        effects = BatchEffects(agent_id, a.accepted_seq, now, from_seq=a.accepted_seq, seq_base=a.seq_base)
        effects.incidents.extend(self.touch(agent_id, now))
        if not results:
            return effects
        hwm = a.accepted_seq
        if results[0].seq <= hwm:
            fresh = [r for r in results if r.seq > hwm]
            effects.duplicates = len(results) - len(fresh)
            a.duplicates_total += effects.duplicates
            results = fresh
            if not results:
                return effects
        series = a.series
        limits, sanity = self.limits, self.sanity
        max_summary = limits.max_summary_chars
        left_out: list[ResultLike] = []
        for r in results:
            if not -INF < r.value < INF:  # NaN fails both comparisons; an unset value reads 0.0
                clamp_value(r, sanity)
            if len(r.summary) > max_summary:
                clamp_summary(r, max_summary, sanity)
            k = (r.check_id, r.target, r.key)
            status = r.status
            s = series.get(k)
            if s is None:
                if a.retired and (k[0], k[1]) in a.retired:
                    continue  # sent before the reload that removed the check; its series has ended
                refused = self._new_series_refused(a, k, status)
                if refused:
                    left_out.append(self._leave_out(r, refused, effects))
                    continue
                s = series[k] = Series(self._rule(a, k[0], k[1]))
            elif status != s.status and not 0 <= status <= STATUS_MAX:
                left_out.append(self._leave_out(r, "status", effects))
                continue  # an equal status was checked when the series took it
            s.latest = r
            if status == s.status:
                if status == OK:
                    if s.incident:
                        s.ok += 1
                        if incidents.should_resolve(s.ok, s.rule):
                            s.incident = False
                            effects.incidents.append(incidents.resolve_check_incident(
                                agent_id, k[0], k[1], k[2], status, r.summary, now))
                else:
                    s.bad += 1
                    if not s.incident and incidents.should_open(s.bad, s.rule):
                        s.incident = True
                        effects.incidents.append(incidents.open_check_incident(
                            agent_id, s.rule, k[1], k[2], status, r.summary, now))
            else:
                self._change(agent_id, k, s, r, effects, now)
            if s.findings and r.findings:
                engine = s.rule.labels.get("engine", "")
                effects.findings.extend(FindingSeen(agent_id, k[1], k[0], engine, f, now) for f in r.findings)
        if self.history_all:
            effects.history = list(results) if not left_out else [r for r in results if r not in left_out]
        a.accepted_seq = effects.high_water_seq = max(hwm, results[-1].seq)
        effects.accepted = len(results)
        return effects

    def _leave_out(self, r: ResultLike, why: str, effects: BatchEffects) -> ResultLike:
        """A result clamped away (frame sanity): counted, never applied, not kept in history."""
        self.sanity.clamp(why)
        effects.clamped[why] = effects.clamped.get(why, 0) + 1
        return r

    def _new_series_refused(self, a: AgentState, k: SeriesKey, status: int) -> str | None:
        """Why a result may not open a new series: a status outside the enum, an unsafe id, or the agent is at its
        series cap."""
        if not 0 <= status <= STATUS_MAX:
            return "status"
        if not safe_id(k[0]) or (k[1] and not safe_id(k[1])) or not safe_key(k[2]):
            return "unsafe_id"
        if len(a.series) >= self.limits.max_series_per_agent:
            a.series_capped += 1
            return "series_cap"
        return None

    @staticmethod
    def _change(agent_id: str, k: SeriesKey, s: Series, r: ResultLike, effects: BatchEffects, now: float) -> None:
        status, previous = r.status, s.status
        at = seconds_from_ms(r.started_unix_ms) if r.started_unix_ms else now
        effects.transitions.append(Transition(
            agent_id, k[0], k[1], k[2], effects.seq_base + r.seq, None if previous == NO_STATUS else previous, status, at, r.summary,
            r.value if r.HasField("value") else None))
        s.status, s.since = status, at
        if status == OK:
            s.bad, s.ok = 0, 1
            if s.incident and incidents.should_resolve(s.ok, s.rule):
                s.incident = False
                effects.incidents.append(incidents.resolve_check_incident(agent_id, k[0], k[1], k[2], status,
                                                                          r.summary, now))
            return
        s.ok = 0
        s.bad = s.bad + 1 if previous not in (OK, NO_STATUS) else 1
        if s.incident:
            effects.incidents.append(incidents.update_check_incident(agent_id, k[0], k[1], k[2], status, r.summary,
                                                                     now))
        elif incidents.should_open(s.bad, s.rule):
            s.incident = True
            effects.incidents.append(incidents.open_check_incident(agent_id, s.rule, k[1], k[2], status, r.summary,
                                                                   now))

    def committed(self, agent_id: str, seq: int) -> None:
        a = self.agent(agent_id)
        a.stored_seq = max(a.stored_seq, seq)

    def forget(self, agent_id: str) -> None:
        """Drop an agent whose memory ran ahead of a failed commit (its other streams then fail their commits)."""
        self.agents.pop(agent_id, None)

    def reload_agent(self, agent_id: str, snap: StoreSnapshot, now: float) -> None:
        """After a failed commit: take the store's word for this agent (keeping its open streams counted)."""
        previous = self.agents.pop(agent_id, None)
        self.restore(snap, now)
        if previous is not None:
            a = self.agent(agent_id)
            a.connections = previous.connections
            a.roles, a.version, a.platform = previous.roles, previous.version, previous.platform
            a.series_capped = previous.series_capped
            a.retired = previous.retired
            for k, s in a.series.items():  # keep the last results for /metrics until new ones arrive
                old = previous.series.get(k)
                if old is not None:
                    s.latest = old.latest

    def lost_agents(self, now: float, lost_after: float,
                    stored: Sequence[AgentLiveness] | None = None) -> list[IncidentAction]:
        """Open 'agent lost' for agents silent longer than `lost_after`, resolve it for those heard from again.

        `stored` is what the store says (last frame at any collector sharing it, and whether a lost incident
        is open), so collectors sharing a store agree; without it only this collector's memory counts.
        """
        views = {agent_id: AgentLiveness(agent_id, a.hostname, a.last_frame_at, a.lost)
                 for agent_id, a in list(self.agents.items())}
        for row in stored or ():
            mine = views.get(row.agent_id)
            views[row.agent_id] = row if mine is None else AgentLiveness(
                row.agent_id, mine.hostname, max(mine.last_seen, row.last_seen), row.lost_open or mine.lost_open)
        actions: list[IncidentAction] = []
        for agent_id, view in views.items():
            silent = now - view.last_seen
            known = self.agents.get(agent_id)
            if silent > lost_after:
                if not view.lost_open:
                    actions.append(incidents.agent_lost_incident(agent_id, view.hostname, silent, lost_after, now))
                if known is not None:
                    known.lost = True
            else:
                if view.lost_open:
                    actions.append(incidents.agent_back(agent_id, now))
                if known is not None:
                    known.lost = False
        return actions

    def series_views(self) -> list[SeriesView]:
        """A snapshot safe to read from another thread (copies the dict items under the GIL)."""
        out = []
        for agent_id, a in list(self.agents.items()):
            for (check_id, target, key), s in list(a.series.items()):
                out.append(SeriesView(agent_id, check_id, target, key, s))
        return out


def _rule_changes(old: dict[tuple[str, str], CheckRule], new: dict[tuple[str, str], CheckRule]) -> list[RuleChange]:
    changes = []
    for key, rule in new.items():
        before = old.get(key)
        if before is None:
            continue
        for name in RULE_FIELDS:
            was, now = getattr(before, name), getattr(rule, name)
            if was != now:
                changes.append(RuleChange(key[0], key[1], name, str(was), str(now)))
    return changes
