"""The notifier: the collector's "notifier" component that drains the outbox.

Every pass (each second, or at once when woken) it claims the outbox rows that are due into queued messages (one
writer transaction), sends each queued message that is due through its receiver's channel, and records the attempt
in a transaction of its own. A failed attempt is retried with a doubling wait up to `retry.max`, until
`retry.give_up_after`; a receiver's rate limit (20 a minute for WeCom and DingTalk robots) holds messages back,
and a burst beyond it is grouped. Receivers are served in parallel, each one message at a time, so a slow SMTP
server does not hold up a robot.

A receiver that keeps failing makes the component unhealthy (the outbox keeps the messages); a bug in the notifier
stops the collector through `spawn`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from collector.notify.channels import ALERTMANAGER_HOLD_S, AlertmanagerChannel, Attempt, Channel, channel_for
from collector.notify.config import NotificationsConfig, Receiver
from collector.notify.outboxstore import incident_item
from collector.notify.render import Renderer, postable_alert
from collector.notify.routing import DIGEST, IncidentView, deliveries
from collector.store import Row, Store
from collector.writer import Writer
from service.lifecycle import Health, Host, LoggingHost, describe, spawn

log = logging.getLogger("xunjian.collector.notifier")
PASS_S = 1.0
WINDOW_S = 60.0
FAILING_AFTER = 3
"""Consecutive failed attempts after which a receiver makes the notifier unhealthy."""
ALERTMANAGER_REFRESH_S = 60.0
LEASE_MARGIN_S = 30.0
"""A message taken for sending is not due again for twice the longest receiver timeout plus this."""
SEND_WORKERS = 4


@dataclass
class ReceiverStats:
    sent: int = 0
    failed: int = 0
    """Failed attempts (each retry that fails counts)."""
    given_up: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    window: deque[float] = field(default_factory=deque)
    """Times of sends in the last minute (for the rate limit)."""


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Wait before the next try after `attempts` failed ones: initial, doubling, at most `maximum`."""
    return float(min(maximum, initial * 2 ** max(attempts - 1, 0)))


class Notifier:
    name = "notifier"

    def __init__(self, store: Store, writer: Writer, config: NotificationsConfig, secrets: Mapping[str, Mapping[str, str]],
                 *, console_url: str, tz: ZoneInfo, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.writer = writer
        self.clock = clock
        self.tz = tz
        self.stats: dict[str, ReceiverStats] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._refreshed_at = 0.0
        self.configure(config, secrets, console_url)

    def configure(self, config: NotificationsConfig, secrets: Mapping[str, Mapping[str, str]], console_url: str) -> None:
        """Take a (re)loaded notifications config; messages already queued keep their receiver by name."""
        with self._lock:
            self.config = config
            self.console_url = console_url
            self.receivers = {r.name: r for r in config.receivers}
            self.channels: dict[str, Channel] = {
                r.name: channel_for(r, secrets.get(r.name, {}), self._renderer(r), self.clock) for r in config.receivers}
            for r in config.receivers:
                self.stats.setdefault(r.name, ReceiverStats())

    def _renderer(self, receiver: Receiver) -> Renderer:
        return Renderer(receiver.language or self.config.language, self.console_url, self.tz)

    # lifecycle

    def start(self, host: Host | None = None) -> None:
        self._pool = ThreadPoolExecutor(SEND_WORKERS, thread_name_prefix="xunjian-notify")
        self._thread = spawn("xunjian-notifier", self._run, host or LoggingHost(log), self.name)

    def stop(self, timeout: float = 10.0) -> bool:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return self._thread is None or not self._thread.is_alive()

    def health(self) -> Health:
        failing = [f"{name}: {s.last_error}" for name, s in sorted(self.stats.items())
                   if s.consecutive_failures >= FAILING_AFTER and name in self.receivers]
        if failing:
            return Health(False, "receivers failing (messages kept in the outbox): " + "; ".join(failing))
        return Health(True, f"{len(self.receivers)} receivers")

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception as exc:
                if not self.store.is_unavailable(exc):
                    raise
                log.error("notifications wait: the store failed: %s", describe(exc),
                          extra={"event": "notify.store_error"})
            self._wake.wait(PASS_S)
            self._wake.clear()

    # one pass

    def run_once(self) -> tuple[int, int]:
        """Claim what is due, send what is queued and due; (messages queued, attempts made)."""
        now = self.clock()
        with self._lock:
            config, channels = self.config, dict(self.channels)
        budgets = {name: self._budget(name, now) for name in self.receivers}
        queued = self.writer.submit(lambda tx: tx.claim_outbox(now, config, budgets)).result()
        lease = max((r.timeout for r in config.receivers), default=10.0) * 2 + LEASE_MARGIN_S
        due = self.writer.submit(lambda tx: tx.take_due(now, lease)).result()
        by_receiver: dict[str, list[Row]] = {}
        for row in due:
            by_receiver.setdefault(str(row["receiver"]), []).append(row)
        attempts = 0
        jobs = [(name, rows) for name, rows in by_receiver.items()]
        if self._pool is not None and len(jobs) > 1:
            for n in self._pool.map(lambda job: self._send_all(job[0], job[1], channels, config), jobs):
                attempts += n
        else:
            for name, rows in jobs:
                attempts += self._send_all(name, rows, channels, config)
        if self.clock() - self._refreshed_at >= ALERTMANAGER_REFRESH_S:
            self.refresh_alertmanagers()
        return queued, attempts

    def _budget(self, receiver: str, now: float) -> int | None:
        r = self.receivers.get(receiver)
        if r is None or r.per_minute == 0:
            return None
        window = self.stats.setdefault(receiver, ReceiverStats()).window
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        return max(r.per_minute - len(window), 0)

    def _send_all(self, name: str, rows: list[Row], channels: Mapping[str, Channel], config: NotificationsConfig) -> int:
        made = 0
        for row in rows:
            if self._stopping.is_set():
                break
            channel = channels.get(name)
            now = self.clock()
            if channel is None:
                self._record(row, Attempt(False, "no receiver", f"receiver {name} is no longer configured"), 0.0,
                             None, now)
                continue
            budget = self._budget(name, now)
            if budget is not None and budget <= 0:
                window = self.stats[name].window
                until = window[0] + WINDOW_S if window else now + WINDOW_S
                self._defer(int(row["id"]), until)
                continue
            content = row["content"] if isinstance(row["content"], dict) else json.loads(row["content"])
            items = content.get("incidents", [])
            started = time.perf_counter()
            self.stats[name].window.append(now)
            attempt = channel.send(items, str(row["group_key"]), digest=row["group_key"] == DIGEST)
            took_ms = (time.perf_counter() - started) * 1000
            made += 1
            retry_at = None
            if not attempt.ok:
                waited = now - float(row["created_at"])
                if waited < config.retry.give_up_after:
                    retry_at = now + max(backoff(int(row["attempts"]) + 1, config.retry.initial, config.retry.max),
                                         attempt.retry_after)
            self._record(row, attempt, took_ms, retry_at, now)
        return made

    def _defer(self, notification_id: int, until: float) -> None:
        self.writer.submit(lambda tx: tx.defer_notification(notification_id, until)).result()

    def _record(self, row: Row, attempt: Attempt, took_ms: float, retry_at: float | None, now: float) -> None:
        notification_id, name = int(row["id"]), str(row["receiver"])
        self.writer.submit(lambda tx: tx.record_attempt(notification_id, now, attempt.ok, attempt.status,
                                                        attempt.response, took_ms, retry_at=retry_at)).result()
        stats = self.stats.setdefault(name, ReceiverStats())
        extra = {"event": "notify.sent" if attempt.ok else "notify.failed", "receiver": name,
                 "notification": notification_id, "channel": row["channel"]}
        if attempt.ok:
            stats.sent += 1
            stats.consecutive_failures = 0
            log.info("notification %d sent to %s (%s): %s", notification_id, name, row["channel"], attempt.status,
                     extra=extra)
            return
        stats.failed += 1
        stats.consecutive_failures += 1
        stats.last_error = f"{attempt.status}: {attempt.response[:200]}"
        if retry_at is None:
            stats.given_up += 1
            log.error("notification %d to %s given up after %d attempts: %s", notification_id, name,
                      int(row["attempts"]) + 1, stats.last_error, extra=extra)
        else:
            log.warning("notification %d to %s failed (%s); retrying in %.0fs", notification_id, name,
                        stats.last_error, retry_at - now, extra=extra)

    # Alertmanager keeps an alert firing only while it is posted again

    def refresh_alertmanagers(self) -> int:
        """Post every open, notifiable incident routed to an Alertmanager receiver again (firing for
        ALERTMANAGER_HOLD_S more); returns the alerts posted."""
        now = self.clock()
        self._refreshed_at = now
        with self._lock:
            config = self.config
            managers: dict[str, AlertmanagerChannel] = {
                n: c for n, c in self.channels.items() if isinstance(c, AlertmanagerChannel)}
        if not managers:
            return 0
        alerts: dict[str, list[dict[str, Any]]] = {}
        for inc in self.store.active_incidents():
            if inc.opened_at > now - config.group_wait:
                continue
            view = IncidentView(inc.id, inc.status, inc.labels, inc.suppressed, inc.silence_id, inc.flapping)
            if inc.suppressed or inc.silence_id is not None or inc.flapping:
                continue
            names = {d.receiver for d in deliveries("opened", 0, view, config, ())} & managers.keys()
            if not names:
                continue
            row = self.store.get_incident(inc.id)
            if row is None:
                continue
            for name in names:
                item = incident_item(row, "opened", 0)
                alerts.setdefault(name, []).append(postable_alert(item, managers[name].renderer,
                                                                  now + ALERTMANAGER_HOLD_S))
        posted = 0
        for name, batch in alerts.items():
            attempt = managers[name].post(batch)
            if attempt.ok:
                posted += len(batch)
            else:
                log.warning("re-posting %d open incidents to %s failed: %s %s", len(batch), name, attempt.status,
                            attempt.response[:200], extra={"event": "notify.refresh_failed", "receiver": name})
        return posted
