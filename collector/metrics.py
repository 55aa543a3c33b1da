"""/metrics: metric families built at scrape time from the state engine (no per-result metric updates).

Every family is yielded on every scrape, even empty, so HELP/TYPE lines are stable and the catalogue
test in tests/unit/collector sees them all. The catalogue itself is docs/metrics.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as PromCollector
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Sample

from checks.result import FINDING_CATEGORIES, outcome_name, seconds_from_us
from collector.events import CheckRule, ResultLike, SeriesKey
from collector.exposition import escape_value, format_value
from collector.ingest import IngestStats
from collector.notify.notifier import Notifier
from collector.sanity import CLAMP_KINDS, REFUSAL_REASONS
from collector.state import NO_STATUS, Series, StateEngine
from collector.store import FINDING_STATES, Store
from collector.writer import COMMIT_BUCKETS, CommitStats

T = TypeVar("T")
log = logging.getLogger("xunjian.collector.metrics")
YIELD_AFTER_S = 0.00025
"""Hand the GIL to the ingest loop after this much rendering (looked at every 16 series), instead of holding it
for the 1 ms switch interval; by time, not by count, as a yield itself can cost ~100 µs on a busy host."""
ACK_BUCKETS = (60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 86400.0)
"""Seconds from opening to acknowledgement; the contracts' response deadline is 15 minutes (900 s)."""
RESOLVE_BUCKETS = (300.0, 900.0, 3600.0, 14400.0, 28800.0, 86400.0, 172800.0, 259200.0, 432000.0, 604800.0,
                   1209600.0)
"""Seconds from opening to resolution: minutes, hours, then 1, 2, 3, 5, 7 and 14 days."""
DURATIONS_TTL_S = 30.0
"""The time histograms read every incident; they are rebuilt at most this often."""


class PatrolMetrics(PromCollector):
    """The custom collector: check series, agents, incidents, findings and ingest self-metrics."""

    def __init__(self, engine: StateEngine, store: Store, ingest: IngestStats, commits: CommitStats,
                 clock: Callable[[], float], *, notifier: Notifier | None = None) -> None:
        self.engine = engine
        self.store = store
        self.ingest = ingest
        self.commits = commits
        self.clock = clock
        self.notifier = notifier
        self._durations: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        yield from self._checks()
        yield from self._agents()
        yield from self._incidents()
        yield from self._notifications()
        yield from self._findings()
        yield from self._ingest()

    def _checks(self) -> Iterator[Metric]:
        shared = _SeriesText(self.engine)
        yield SeriesFamily("xunjian_check_status", "Latest status of a check series: 0 OK, 1 WARNING, 2 CRITICAL, "
                           "3 UNKNOWN.", "gauge", "status", shared)
        yield SeriesFamily("xunjian_check_value", "Latest measured value of a check series, in the unit named by "
                           "the unit label.", "gauge", "value", shared)
        yield SeriesFamily("xunjian_check_duration_seconds", "How long the latest run of the check took.", "gauge",
                           "duration", shared)
        yield SeriesFamily("xunjian_check_outcome", "Outcome of the latest run (ok, timeout, connection_refused, "
                           "...).", "info", "outcome", shared)

    def _agents(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("xunjian_agent_up", "1 when the agent has a stream open and is not lost.",
                               labels=["agent"])
        seen = GaugeMetricFamily("xunjian_agent_last_seen_timestamp_seconds", "Unix time of the agent's last frame.",
                                 labels=["agent"])
        depth = GaugeMetricFamily("xunjian_agent_spool_depth", "Results in the agent's spool waiting for an ack, "
                                  "as of its last heartbeat.", labels=["agent"])
        dropped = CounterMetricFamily("xunjian_agent_spool_dropped", "Results the agent dropped because its spool "
                                      "bound was reached, as of its last heartbeat.", labels=["agent"])
        for agent_id, a in sorted(list(self.engine.agents.items())):
            up.add_metric([agent_id], 1 if a.connections > 0 and not a.lost else 0)
            seen.add_metric([agent_id], a.last_frame_at)
            depth.add_metric([agent_id], a.spool_depth)
            dropped.add_metric([agent_id], a.dropped_total)
        yield from (up, seen, depth, dropped)

    def _read(self, what: str, read: Callable[[], list[T]]) -> list[T]:
        try:
            return read()
        except Exception as exc:  # a scrape must not fail because the store is busy
            log.warning("%s unavailable: %s", what, exc)
            return []

    def _incidents(self) -> Iterator[Metric]:
        open_ = GaugeMetricFamily("xunjian_incidents_open", "Active incidents (open or acknowledged; agent lost "
                                  "included, children explained by a parent left out) by priority and system.",
                                  labels=["priority", "system"])
        for row in sorted(self._read("incident counts", self.store.incident_counts),
                          key=lambda r: (r["priority"], r["system"])):
            open_.add_metric([row["priority"], row["system"]], int(row["n"]))
        yield open_
        overdue = GaugeMetricFamily("xunjian_incidents_overdue", "Active incidents past a deadline now: response "
                                    "(not acknowledged in time) or resolution (working days).",
                                    labels=["deadline", "priority", "system"])
        now = self.clock()
        counts: dict[tuple[str, str, str], int] = {}
        for inc in self._read("overdue incidents", lambda: self.store.overdue_incidents(now)):
            if inc.suppressed or inc.silence_id is not None:
                continue
            system = str(inc.labels.get("system", ""))
            if inc.status == "open" and inc.response_due_at is not None and now > inc.response_due_at:
                key = ("response", inc.priority, system)
                counts[key] = counts.get(key, 0) + 1
            if inc.resolution_due_at is not None and now > inc.resolution_due_at:
                key = ("resolution", inc.priority, system)
                counts[key] = counts.get(key, 0) + 1
        for key, n in sorted(counts.items()):
            overdue.add_metric(list(key), n)
        yield overdue
        breaches = CounterMetricFamily("xunjian_incident_breaches", "Incidents that missed a deadline: response "
                                       "(15 minutes, 7x24) or resolution (1/3/5 working days).",
                                       labels=["deadline", "priority", "system"])
        for row in sorted(self._read("breach counts", self.store.breach_counts),
                          key=lambda r: (r["priority"], r["system"])):
            for deadline in ("response", "resolution"):
                breaches.add_metric([deadline, row["priority"], row["system"]], int(row[deadline] or 0))
        yield breaches
        yield from self._durations_families()

    def _durations_families(self) -> list[Metric]:
        now = self.clock()
        if self._durations is not None and now - self._durations[0] < DURATIONS_TTL_S:
            return self._durations[1]
        rows = self._read("incident durations", self.store.incident_durations)
        families: list[Metric] = []
        for name, column, bounds, help_ in (
                ("xunjian_incident_acknowledge_seconds", "ack_s", ACK_BUCKETS,
                 "Time from an incident opening to its acknowledgement."),
                ("xunjian_incident_resolve_seconds", "resolve_s", RESOLVE_BUCKETS,
                 "Time from an incident opening to its resolution (automatic or by hand).")):
            family = HistogramMetricFamily(name, help_, labels=["priority"])
            by_priority: dict[str, list[float]] = {}
            for row in rows:
                if row[column] is not None:
                    by_priority.setdefault(str(row["priority"]), []).append(max(float(row[column]), 0.0))
            for priority, values in sorted(by_priority.items()):
                buckets = [(repr(b), sum(1 for v in values if v <= b)) for b in bounds]
                buckets.append(("+Inf", len(values)))
                family.add_metric([priority], buckets, sum(values))
            families.append(family)
        self._durations = (now, families)
        return families

    def _notifications(self) -> Iterator[Metric]:
        sent = CounterMetricFamily("xunjian_notifications_sent", "Messages delivered, by channel and receiver.",
                                   labels=["channel", "receiver"])
        failed = CounterMetricFamily("xunjian_notifications_failed", "Delivery attempts that failed (each retry "
                                     "counts), by channel and receiver.", labels=["channel", "receiver"])
        given_up = CounterMetricFamily("xunjian_notifications_given_up", "Messages given up after "
                                       "notifications.retry.give_up_after, by channel and receiver.",
                                       labels=["channel", "receiver"])
        notifier = self.notifier
        if notifier is not None:
            for name, receiver in sorted(notifier.receivers.items()):
                stats = notifier.stats.get(name)
                if stats is None:
                    continue
                sent.add_metric([receiver.type, name], stats.sent)
                failed.add_metric([receiver.type, name], stats.failed)
                given_up.add_metric([receiver.type, name], stats.given_up)
        yield from (sent, failed, given_up)
        backlog = self._read("outbox backlog", lambda: [self.store.outbox_backlog()])
        pending = GaugeMetricFamily("xunjian_notifications_pending", "Incident events waiting in the outbox (group "
                                    "wait, rate limit) and messages queued for delivery or retry.", labels=["stage"])
        row = backlog[0] if backlog else {"pending": 0, "queued": 0}
        pending.add_metric(["outbox"], int(row["pending"] or 0))
        pending.add_metric(["queued"], int(row["queued"] or 0))
        yield pending

    def _findings(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("xunjian_findings", "Findings by review state and category (dba, migration, "
                                   "payment, insurance).", labels=["state", "category"])
        try:
            counts = self.store.finding_counts()
        except Exception as exc:  # a scrape must not fail because the store is busy
            log.warning("finding counts unavailable: %s", exc)
            counts = {}
        categories = dict.fromkeys([*FINDING_CATEGORIES, *(c for c, _ in counts)])
        for category in categories:
            for state in FINDING_STATES:
                family.add_metric([state, category], counts.get((category, state), 0))
        yield family

    def _ingest(self) -> Iterator[Metric]:
        s, c = self.ingest, self.commits
        yield CounterMetricFamily("xunjian_ingest_results", "Results accepted (duplicates excluded).",
                                  value=s.results_total)
        yield CounterMetricFamily("xunjian_ingest_batches", "Batches received.", value=s.batches_total)
        yield CounterMetricFamily("xunjian_ingest_duplicates", "Results dropped because their seq was at or below "
                                  "the agent's high-water mark.", value=s.duplicates_total)
        yield CounterMetricFamily("xunjian_ingest_transitions", "Status changes of check series.",
                                  value=s.transitions_total)
        yield CounterMetricFamily("xunjian_ingest_refused_batches", "Batches refused for exceeding "
                                  "max_batch_results.", value=s.refused_batches_total)
        yield GaugeMetricFamily("xunjian_ingest_streams", "Agent streams open now.", value=s.streams)
        sanity = self.engine.sanity
        refused = CounterMetricFamily("xunjian_ingest_refused_frames", "Frames refused by frame sanity (nothing of "
                                      "them applied), by reason.", labels=["reason"])
        for reason in REFUSAL_REASONS:
            refused.add_metric([reason], sanity.refused.get(reason, 0))
        yield refused
        clamped = CounterMetricFamily("xunjian_ingest_clamped_results", "Results clamped (value dropped, summary "
                                      "cut) or left out (unsafe id, series cap) by frame sanity.", labels=["what"])
        for what in CLAMP_KINDS:
            clamped.add_metric([what], sanity.clamped.get(what, 0))
        yield clamped
        yield CounterMetricFamily("xunjian_ingest_hello_timeouts", "Streams closed because no Hello came in time.",
                                  value=s.hello_timeouts_total)
        yield CounterMetricFamily("xunjian_ingest_refused_streams", "Streams refused before their Hello was stored "
                                  "(revoked or retired identity, too many streams of one agent).",
                                  value=s.streams_refused_total)
        yield CounterMetricFamily("xunjian_ingest_impersonations", "Hellos refused because they named another agent "
                                  "than the client certificate.", value=s.impersonations_total)
        yield CounterMetricFamily("xunjian_ingest_commit_failures", "Store jobs that failed and were not acked.",
                                  value=c.failures_total)
        cumulative, buckets = 0, []
        for bound, n in zip([*COMMIT_BUCKETS, float("inf")], list(c.bucket_counts), strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        yield HistogramMetricFamily("xunjian_ingest_commit_seconds", "Duration of one group commit of the store "
                                    "writer.", buckets=buckets, sum_value=c.seconds_sum)


class _SeriesText:
    """One pass over the check series for the four series families: samples on demand, or text lines fast.

    The text lines of a series are kept on the series (Series.text) with the result and rule they came from; a
    scrape reuses them while both are the same objects, so it formats only the series that got a result since
    the last scrape. A removed check or a retired agent takes its series, and so its lines, with it.
    """

    def __init__(self, engine: StateEngine) -> None:
        self.engine = engine
        self._lines: dict[str, list[str]] | None = None

    def samples(self, part: str) -> list[Sample]:
        out = []
        for v in self.engine.series_views():
            s, r = v.series, v.series.latest
            if r is None or s.status == NO_STATUS:
                continue
            labels = {"agent": v.agent_id, "check": v.check_id, "target": v.target, "key": v.key}
            if part == "status":
                out.append(Sample("xunjian_check_status", {**labels, **_rule_labels(s.rule)}, float(r.status)))
            elif part == "value" and r.HasField("value"):
                out.append(Sample("xunjian_check_value", {**labels, "unit": r.unit}, r.value))
            elif part == "duration":
                out.append(Sample("xunjian_check_duration_seconds", labels, seconds_from_us(r.duration_us)))
            elif part == "outcome":
                out.append(Sample("xunjian_check_outcome_info", {**labels, "outcome": outcome_name(r.outcome)}, 1.0))
        return out

    def lines(self, part: str) -> list[str]:
        if self._lines is None:
            self._lines = self._render()
        return self._lines[part]

    def _render(self) -> dict[str, list[str]]:
        status: list[str] = []
        value: list[str] = []
        duration: list[str] = []
        outcome: list[str] = []
        visited = 0
        mark = time.perf_counter()
        for agent_id, a in list(self.engine.agents.items()):
            for k, s in list(a.series.items()):
                r = s.latest
                if r is None or s.status == NO_STATUS:
                    continue
                text = s.text
                if text is None or text[0] is not r or text[1] is not s.rule:
                    text = s.text = _series_lines(agent_id, k, s, r)
                visited += 1
                if visited % 16 == 0 and time.perf_counter() - mark > YIELD_AFTER_S:
                    time.sleep(0)  # a scrape must not stall acks
                    mark = time.perf_counter()
                status.append(text[2])
                if text[3]:
                    value.append(text[3])
                duration.append(text[4])
                outcome.append(text[5])
        return {"status": status, "value": value, "duration": duration, "outcome": outcome}


def _series_lines(agent_id: str, k: SeriesKey, s: Series, r: ResultLike) -> tuple[object, CheckRule, str, str, str, str]:
    """The four exposition lines of one series (value "" without a value), with what they were made from."""
    esc, fmt = escape_value, format_value
    fixed = s.label_text
    if fixed is None or fixed[0] is not s.rule:
        fixed = s.label_text = _fixed_text(agent_id, k, s.rule)
    _, status, value, duration, outcome, outcome_end = fixed
    return (r, s.rule, f"{status}{fmt(float(r.status))}\n",
            f'{value}{esc(r.unit)}"}} {fmt(r.value)}\n' if r.HasField("value") else "",
            f"{duration}{fmt(seconds_from_us(r.duration_us))}\n",
            f"{outcome}{esc(outcome_name(r.outcome))}{outcome_end}")


def _fixed_text(agent_id: str, k: SeriesKey, rule: CheckRule) -> tuple[CheckRule, str, str, str, str, str]:
    """What a series' lines hold while its rule stays: every label but the unit and the outcome, escaped once."""
    esc = escape_value
    check_id, target, key_ = k
    ac, key, tgt = f'agent="{esc(agent_id)}",check="{esc(check_id)}"', f'key="{esc(key_)}"', f'target="{esc(target)}"'
    rl = _rule_labels(rule)
    return (rule,
            f'xunjian_check_status{{{ac},engine="{esc(rl["engine"])}",{key},kind="{esc(rl["kind"])}",'
            f'priority="{esc(rl["priority"])}",system="{esc(rl["system"])}",{tgt}}} ',
            f'xunjian_check_value{{{ac},{key},{tgt},unit="',
            f"xunjian_check_duration_seconds{{{ac},{key},{tgt}}} ",
            f'xunjian_check_outcome_info{{{ac},{key},outcome="',
            f'",{tgt}}} 1.0\n')


def _rule_labels(rule: CheckRule) -> dict[str, str]:
    """What the check declared in Hello, as labels of its status series: dashboards and alert rules select by
    system, priority (the incident priority), kind (e.g. the interface kinds) and engine (DB checks)."""
    return {"engine": rule.labels.get("engine", ""), "kind": rule.kind, "priority": rule.priority,
            "system": rule.system}


class SeriesFamily(Metric):
    """A per-series family: Sample objects on demand (generate_latest, tests) or text lines from cached labels
    (collector/exposition.py), so a scrape does not format every label of every series again."""

    def __init__(self, name: str, documentation: str, typ: str, part: str, shared: _SeriesText) -> None:
        self.name = name
        self.documentation = documentation
        self.unit = ""
        self.type = typ
        self._part = part
        self._shared = shared

    @property
    def samples(self) -> list[Sample]:
        return self._shared.samples(self._part)

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        raise AttributeError("samples of a series family are computed")

    def text_lines(self) -> list[str]:
        return self._shared.lines(self._part)


def build_registry(metrics: PatrolMetrics, *, process: bool = True) -> CollectorRegistry:
    """A registry of our own (not the global one), so tests and several collectors in one process work."""
    from prometheus_client import ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    if process:
        ProcessCollector(registry=registry)
    return registry
