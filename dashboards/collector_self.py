"""Collector self: ingest by the RED method (rate, errors, duration), and what a scrape of it costs."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.models import dashboard as dm

from dashboards import panels as p
from dashboards.packs import GREEN, RED, Step
from dashboards.promql import INSTANCE, SITE, sel

JOB = 'job=~"$job"'
WHERE = (SITE, JOB, INSTANCE)


def rate(metric: str) -> str:
    return f"sum by (instance) (rate({sel(metric, *WHERE)}[$__rate_interval]))"


def build() -> db.Dashboard:
    d = (
        p.dashboard("collector", "Xunjian · Collector", "Ingest of each collector by the RED method (results per "
                    "second, refusals and failures, group-commit latency) and the cost of scraping it.")
        .with_variable(p.query_variable("site", "Site", "label_values(xunjian_agent_up, site)"))
        .with_variable(p.query_variable("job", "Job", f"label_values(xunjian_ingest_streams{{{SITE}}}, job)",
                                        all_value=None))
        .with_variable(p.query_variable("instance", "Collector",
                                        f"label_values(xunjian_ingest_streams{{{SITE}, {JOB}}}, instance)"))
        .with_variable(p.console_variable())
    )
    commit = f"sum by (instance, le) (rate({sel('xunjian_ingest_commit_seconds_bucket', *WHERE)}[$__rate_interval]))"
    d = (
        d.with_row(p.row("Ingest (rate, errors, duration)"))
        .with_panel(p.graph("Results accepted", "Results per second the collector accepted (duplicates excluded).",
                            "ops", [p.query(rate("xunjian_ingest_results_total"), "{{instance}} results"),
                                    p.query(rate("xunjian_ingest_batches_total"), "{{instance}} batches", ref="B")],
                            w=8))
        .with_panel(p.graph(
            "Refused, duplicate and failed", "Per second: batches refused for exceeding ingest.max_batch_results "
            "(the agent keeps them), results dropped as duplicates (a resend after a reconnect: normal in small "
            "numbers), and store jobs that failed (results not acknowledged, the agent resends).", "ops",
            [p.query(rate("xunjian_ingest_refused_batches_total"), "{{instance}} refused batches"),
             p.query(rate("xunjian_ingest_duplicates_total"), "{{instance}} duplicate results", ref="B"),
             p.query(rate("xunjian_ingest_commit_failures_total"), "{{instance}} failed commits", ref="C")], w=8))
        .with_panel(p.graph(
            "Group commit latency", "99th and 50th percentile of one group commit of the store writer (one "
            "transaction for all pending batches); agents get their acks after it.", "s",
            [p.query(f"histogram_quantile(0.99, {commit})", "{{instance}} p99"),
             p.query(f"histogram_quantile(0.5, {commit})", "{{instance}} p50", ref="B")], w=8))
        .with_panel(p.graph("Status changes", "Check series that changed status, per second.", "ops",
                            [p.query(rate("xunjian_ingest_transitions_total"), "{{instance}}")], w=8))
        .with_panel(p.graph("Agent streams", "Agent streams open to each collector now.", "short",
                            [p.query(sel("xunjian_ingest_streams", *WHERE), "{{instance}}")], w=8))
        .with_panel(p.graph("Check series exported", "Check series on /metrics: each costs four samples a scrape.",
                            "short", [p.query(f"count by (instance) ({sel('xunjian_check_status', *WHERE)})",
                                              "{{instance}}")], w=8))
    )
    up = (p.status_tiles("Collector up", "Whether Prometheus reached each collector at its last scrape.",
                         sel("up", *WHERE), "{{instance}}", ranked=False, w=6, h=8)
          .mappings([dm.ValueMap(options={"0": dm.ValueMappingResult(text="DOWN", color=RED, index=0),
                                          "1": dm.ValueMappingResult(text="UP", color=GREEN, index=1)})])
          .thresholds(p.threshold_steps([Step(None, RED), Step(1, GREEN)])))
    return (
        d.with_row(p.row("Process and scrape cost"))
        .with_panel(up)
        .with_panel(p.graph("Scrape duration", "Seconds Prometheus took to scrape /metrics.", "s",
                            [p.query(sel("scrape_duration_seconds", *WHERE), "{{instance}}")], w=6))
        .with_panel(p.graph("Samples per scrape", "Samples in one scrape of /metrics.", "short",
                            [p.query(sel("scrape_samples_scraped", *WHERE), "{{instance}}")], w=6))
        .with_panel(p.graph("Collector CPU", "Share of one core the collector process uses.", "percentunit",
                            [p.query(rate("process_cpu_seconds_total"), "{{instance}}")], w=6))
        .with_panel(p.graph("Collector memory", "Resident memory of the collector process.", "bytes",
                            [p.query(sel("process_resident_memory_bytes", *WHERE), "{{instance}}")], w=12))
        .with_panel(p.graph("Open file descriptors", "File descriptors open (sockets, store files) and the limit.",
                            "short", [p.query(sel("process_open_fds", *WHERE), "{{instance}} open"),
                                      p.query(sel("process_max_fds", *WHERE), "{{instance}} limit", ref="B")], w=12))
    )
