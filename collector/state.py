"""The in-memory state engine: latest result per series, consecutive counters, transitions, incident decisions.

Pure logic: callers pass the time and get records back; nothing here does I/O. The hot path is
`apply_batch`: an unchanged result costs one dictionary lookup and a few attribute tests (the latest
result message itself is kept and read only at scrape time).

Incident decisions made here: open after raise_after bad results (and for_s seconds), resolve after clear_after
OK ones, reopen handled by the store (`reopen_within`), flapping (collector/flapping.py) holds resolution and
notifications, a failing parent check or a lost agent makes new incidents its silent children, and a lost agent's
series read UNKNOWN "agent lost" until fresh results arrive.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from checks.kinds import FINDINGS_KINDS
from checks.result import Outcome, Status, seconds_from_ms, unix_ms
from collector import flapping, incidents
from collector.events import (
    AgentHeartbeat,
    AgentHello,
    BatchEffects,
    CheckRule,
    FindingSeen,
    FlappingChange,
    HelloEffects,
    IncidentAction,
    IncidentOpen,
    ResultLike,
    RuleChange,
    SeriesKey,
    SeriesStale,
    Transition,
)
from collector.incidents import IncidentPolicy
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
from collector.workdays import WorkingCalendar
from protos import patrol_pb2

INF = math.inf
NO_STATUS = -1
OK = int(Status.OK)
"""The checks' OK as the plain int the wire carries (protobuf enums compare as ints)."""
UNKNOWN = int(Status.UNKNOWN)
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

    __slots__ = ("bad", "bad_since", "findings", "flapping", "handled", "incident", "label_text", "latest", "ok",
                 "ring", "rule", "since", "stale", "status", "text")

    def __init__(self, rule: CheckRule, status: int = NO_STATUS, since: float = 0.0) -> None:
        self.rule = rule
        self.status = status
        self.since = since
        self.latest: ResultLike | None = None
        self.bad = 0
        self.bad_since = since
        """Time of the first bad result of the current bad run (for `for_s`)."""
        self.ok = 0
        self.incident = False
        self.handled = False
        """Its incident was resolved by hand while still bad: no new one until the series has been OK."""
        self.ring = 0
        """Flapping ring (collector/flapping.py): bit 0 says whether the newest result changed state."""
        self.flapping = False
        self.stale = False
        """Its agent is lost: `latest` is a stand-in UNKNOWN "agent lost" until a fresh result arrives."""
        self.findings = not rule.kind or rule.kind.startswith(FINDINGS_KINDS)
        self.label_text: tuple[CheckRule, str, str, str, str, str] | None = None
        """The fixed parts of this series' /metrics lines (every label but unit and outcome, escaped) and the
        rule they were made from."""
        self.text: tuple[object, CheckRule, str, str, str, str] | None = None
        """/metrics lines of this series (status, value or "", duration, outcome) and the result and rule they were
        rendered from: a scrape renders again only the series whose result or rule is another object."""


class AgentState:
    __slots__ = ("accepted_seq", "connections", "dropped_total", "duplicates_total", "hostname", "incarnation",
                 "labels", "last_frame_at", "last_seq", "lost", "platform", "retired", "roles", "rules", "seq_base",
                 "series", "series_capped", "spool_depth", "stored_seq", "version", "watched_at")

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
        self.watched_at: float | None = None
        """The key of this agent's entry in the engine's liveness heap (a lower bound of last_frame_at), or None
        while it is not in the heap: silent, waiting in the engine's `_silent` set for a frame or the store."""


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


def default_policy() -> IncidentPolicy:
    """The contracts' deadlines on the shipped calendar (collector.yaml may change every part)."""
    return IncidentPolicy(WorkingCalendar.load())


class StateEngine:
    def __init__(self, *, history_all: bool = False, limits: Limits | None = None,
                 policy: IncidentPolicy | None = None) -> None:
        self.agents: dict[str, AgentState] = {}
        self.history_all = history_all
        self.limits = limits or Limits()
        self.sanity = SanityStats()
        self.policy = policy or default_policy()
        self._liveness: list[tuple[float, str]] = []
        """(last frame at, agent id) per agent, oldest first: the lost-agent check pops only those whose entry is
        older than the cut-off, so it costs what went silent or was seen since, not the size of the fleet."""
        self._silent: set[str] = set()
        """Agents silent longer than lost_after at the last check (out of the heap until a frame or the store
        says they are alive)."""

    def agent(self, agent_id: str) -> AgentState:
        state = self.agents.get(agent_id)
        if state is None:
            state = self.agents[agent_id] = AgentState(agent_id)
            self._watch(agent_id, state)
        return state

    def _watch(self, agent_id: str, a: AgentState, seen: float | None = None) -> None:
        """Put the agent in the liveness heap, keyed by when it was last seen (a lower bound is enough)."""
        a.watched_at = a.last_frame_at if seen is None else seen
        heapq.heappush(self._liveness, (a.watched_at, agent_id))
        self._silent.discard(agent_id)

    def restore(self, snap: StoreSnapshot, now: float) -> None:
        """Rebuild from the store: high-water marks, catalogue, last statuses and open incidents."""
        stored_seen: dict[str, float] = {}
        for rec in snap.agents:
            stored_seen[rec.agent_id] = rec.last_seen
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
                found.flapping = inc.flapping
                found.ring = int(inc.flapping)  # the ring is not stored: a fresh one decides at the next result
        for agent_id, a in self.agents.items():
            if a.lost:  # its series were marked stale when it was lost
                for series in a.series.values():
                    series.stale = series.status == UNKNOWN
                # still lost: its own last frame, so the first check neither resolves nor reopens its incident
                a.last_frame_at = stored_seen.get(agent_id, a.last_frame_at)

    @staticmethod
    def _rule(agent: AgentState, check_id: str, target: str) -> CheckRule:
        rule = agent.rules.get((check_id, target))
        return rule if rule is not None else CheckRule(check_id, target)

    def touch(self, agent_id: str, now: float) -> list[IncidentAction]:
        """Any frame from an agent: it is alive; resolve its 'agent lost' incident if one is open."""
        a = self.agent(agent_id)
        a.last_frame_at = now
        if a.watched_at is None:
            self._watch(agent_id, a)
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
            if status == s.status and not s.stale:
                if s.ring:  # never 0 while flapping: only a series that changed lately pays for this
                    self._flap(agent_id, k, s, False, effects, now)
                if status == OK:
                    if s.incident and not s.flapping:
                        s.ok += 1
                        if incidents.should_resolve(s.ok, s.rule):
                            s.incident = False
                            effects.incidents.append(incidents.resolve_check_incident(
                                agent_id, k[0], k[1], k[2], status, r.summary, now))
                else:
                    s.bad += 1
                    if not s.incident and not s.handled and incidents.should_open(
                            s.bad, s.rule, _at(r, now) - s.bad_since if s.rule.for_s else 0.0):
                        effects.incidents.append(self._open(a, agent_id, k, s, status, r.summary, now))
            else:
                self._change(a, agent_id, k, s, r, effects, now)
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

    def _change(self, a: AgentState, agent_id: str, k: SeriesKey, s: Series, r: ResultLike, effects: BatchEffects,
                now: float) -> None:
        status, previous = r.status, s.status
        at = _at(r, now)
        effects.transitions.append(Transition(
            agent_id, k[0], k[1], k[2], effects.seq_base + r.seq, None if previous == NO_STATUS else previous, status, at, r.summary,
            r.value if r.HasField("value") else None))
        was_stale, s.stale = s.stale, False
        if not was_stale and previous != NO_STATUS and self.policy.flapping.enabled:
            self._flap(agent_id, k, s, True, effects, now)
        s.status, s.since = status, at
        if status == OK:
            s.bad, s.ok, s.handled = 0, 1, False
            if s.incident and not s.flapping and incidents.should_resolve(s.ok, s.rule):
                s.incident = False
                effects.incidents.append(incidents.resolve_check_incident(agent_id, k[0], k[1], k[2], status,
                                                                          r.summary, now))
            return
        s.ok = 0
        if previous in (OK, NO_STATUS):
            s.bad, s.bad_since = 1, at
        else:
            s.bad += 1
        if s.incident:
            effects.incidents.append(incidents.update_check_incident(agent_id, k[0], k[1], k[2], status, r.summary,
                                                                     now))
        elif not s.handled and incidents.should_open(s.bad, s.rule, at - s.bad_since):
            effects.incidents.append(self._open(a, agent_id, k, s, status, r.summary, now))

    def _flap(self, agent_id: str, k: SeriesKey, s: Series, changed: bool, effects: BatchEffects, now: float) -> None:
        s.ring = flapping.record(s.ring, changed)
        pct = flapping.percent(s.ring)
        now_flapping = flapping.is_flapping(s.flapping, pct, self.policy.flapping)
        if now_flapping != s.flapping:
            s.flapping = now_flapping
            effects.incidents.append(FlappingChange(agent_id, k[0], k[1], k[2], now_flapping, pct, now))

    def _open(self, a: AgentState, agent_id: str, k: SeriesKey, s: Series, status: int, summary: str,
              now: float) -> IncidentOpen:
        """Open the series' incident: a silent child when its parent check is failing, the parent of those of its
        children already open."""
        s.incident = True
        suppressed = parent = ""
        if a.lost:
            suppressed, parent = incidents.AGENT_LOST, incidents.AGENT_LOST_CHECK
        elif s.rule.parent and self._failing(a, s.rule.parent, k[1]):
            suppressed, parent = f"parent check {s.rule.parent} is failing", s.rule.parent
        adopt = tuple(ck for ck, cs in a.series.items()
                      if cs.incident and ck[1] == k[1] and cs.rule.parent == k[0] and ck != k)
        return incidents.open_check_incident(agent_id, a.hostname, a.labels, s.rule, k[1], k[2], status, summary, now,
                                             self.policy, suppressed=suppressed, parent_check=parent,
                                             flapping=s.flapping, adopt=adopt)

    @staticmethod
    def _failing(a: AgentState, check_id: str, target: str) -> bool:
        """Whether a series of `check_id` on `target` is bad now (the parent of a dependency)."""
        return any(ck[0] == check_id and ck[1] == target and cs.status not in (OK, NO_STATUS)
                   for ck, cs in a.series.items())

    def _mark_stale(self, agent_id: str, a: AgentState, now: float) -> list[IncidentAction]:
        """The agent is lost: each series reads UNKNOWN "agent lost"; those without an incident get a silent child
        incident of the 'agent lost' one."""
        actions: list[IncidentAction] = []
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(a.last_frame_at)) if a.last_frame_at else "never"
        summary = f"{incidents.AGENT_LOST}: no result since {when}"
        for k, s in list(a.series.items()):
            if s.status == NO_STATUS or s.stale:
                continue
            old = s.latest
            actions.append(SeriesStale(agent_id, k[0], k[1], k[2], a.seq_base + (old.seq if old is not None else 0),
                                       s.status, now, summary))
            s.latest = patrol_pb2.Result(seq=old.seq if old is not None else 0, check_id=k[0], target=k[1], key=k[2],
                                         status=patrol_pb2.UNKNOWN, summary=summary, outcome=Outcome.AGENT_LOST.value,
                                         started_unix_ms=unix_ms(now), unit=old.unit if old is not None else "")
            if s.status == OK:
                s.bad, s.bad_since = 1, now
            s.status, s.since, s.ok, s.stale = UNKNOWN, now, 0, True
            if not s.incident:
                s.incident = True
                actions.append(incidents.open_check_incident(
                    agent_id, a.hostname, a.labels, s.rule, k[1], k[2], UNKNOWN, summary, now, self.policy,
                    suppressed=incidents.AGENT_LOST, parent_check=incidents.AGENT_LOST_CHECK, flapping=s.flapping))
        return actions

    def resolved_by_hand(self, agent_id: str, check_id: str, target: str, key: str) -> None:
        """An operator resolved the series' incident: while the series stays bad it opens no new one."""
        a = self.agents.get(agent_id)
        s = a.series.get((check_id, target, key)) if a is not None else None
        if s is not None and s.incident:
            s.incident = False
            s.handled = s.status not in (OK, NO_STATUS)


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

        `stored` is what the store says, so collectors sharing a store agree: the agents it last saw before the
        cut-off and those with a lost incident open (Store.agent_liveness); an agent not in it was seen by some
        collector since the cut-off. Without it only this collector's memory counts. The cost is the agents whose
        heap entry came due, the silent ones and the rows given, not the size of the fleet.
        """
        cutoff = now - lost_after
        self._pop_due(cutoff)
        rows = {row.agent_id: row for row in stored or ()}
        actions: list[IncidentAction] = []
        for agent_id in [*sorted(self._silent - rows.keys()), *rows]:
            known = self.agents.get(agent_id)
            row = rows.get(agent_id)
            if known is None:
                if row is None:
                    self._silent.discard(agent_id)
                    continue
                view = row
            else:
                store_seen = row.last_seen if row is not None else (cutoff if stored is not None else 0.0)
                view = AgentLiveness(agent_id, known.hostname, max(known.last_frame_at, store_seen),
                                     known.lost or (row is not None and row.lost_open))
            silent = now - view.last_seen
            if silent > lost_after:
                if not view.lost_open:
                    labels = known.labels if known is not None else {}
                    adopt = tuple(k for k, s in known.series.items() if s.incident) if known is not None else ()
                    rules = known.rules.values() if known is not None else ()
                    actions.append(incidents.agent_lost_incident(agent_id, view.hostname, labels, silent, lost_after,
                                                                 now, self.policy, adopt, rules))
                    if known is not None:
                        known.lost = True
                        actions.extend(self._mark_stale(agent_id, known, now))
                if known is not None:
                    known.lost = True
            else:
                if view.lost_open:
                    actions.append(incidents.agent_back(agent_id, now))
                if known is not None:
                    known.lost = False
                    if known.watched_at is None:  # alive at another collector: look again when that runs out
                        self._watch(agent_id, known, view.last_seen)
        return actions

    def _pop_due(self, cutoff: float) -> None:
        """Move the agents not heard from since `cutoff` from the liveness heap to the silent set; re-file those
        heard from since their entry was made."""
        heap, agents = self._liveness, self.agents
        while heap and heap[0][0] < cutoff:
            seen, agent_id = heapq.heappop(heap)
            a = agents.get(agent_id)
            if a is None or a.watched_at != seen:
                continue  # forgotten, or an older entry of an agent filed again
            if a.last_frame_at >= cutoff:
                self._watch(agent_id, a)
            else:
                a.watched_at = None
                self._silent.add(agent_id)
        if len(heap) > 2 * len(agents) + 64:  # entries of forgotten agents: rebuild rather than let them pile up
            self._liveness = [(a.watched_at, i) for i, a in agents.items() if a.watched_at is not None]
            heapq.heapify(self._liveness)

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


def _at(r: ResultLike, now: float) -> float:
    """When a result was taken (the agent's clock), or `now` for one without a start time."""
    return seconds_from_ms(r.started_unix_ms) if r.started_unix_ms else now
