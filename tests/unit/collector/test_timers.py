"""The collector's timers on an injected clock: due order, periods, one-shot deadlines, a failing job."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from collector.loop import EventLoop
from collector.sqlite import unavailable
from collector.timers import Timers
from service.lifecycle import LoggingHost


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def timers(clock: Clock) -> Timers:
    return Timers(EventLoop(), clock, unavailable)


def test_jobs_run_when_due_in_due_order_and_periodic_ones_again() -> None:
    clock = Clock()
    t = timers(clock)
    ran: list[str] = []

    async def lost_agents() -> None:
        ran.append("lost")

    t.every("lost-agent check", 10.0, lost_agents)
    t.every("housekeeping", 60.0, lambda: ran.append("housekeeping"), first_in=5.0)
    t.at("response deadline", clock.now + 7.0, lambda: ran.append("deadline"))

    async def scenario() -> None:
        assert await t.run_due() == 5.0
        assert ran == ["lost"]
        clock.now += 10.0
        await t.run_due()
        assert ran == ["lost", "housekeeping", "deadline", "lost"]
        clock.now += 60.0
        await t.run_due()
        assert ran.count("deadline") == 1, "a one-shot timer runs once"
        assert ran.count("housekeeping") == 2
        assert ran.count("lost") == 3, "a late periodic job runs once, not once per missed period"

    asyncio.run(scenario())


def test_reschedule_and_cancel() -> None:
    clock = Clock()
    t = timers(clock)
    ran: list[str] = []
    lost = t.every("lost", 10.0, lambda: ran.append("lost"), first_in=10.0)
    gone = t.every("gone", 1.0, lambda: ran.append("gone"), first_in=1.0)
    t.cancel(gone)
    t.reschedule(lost, 2.0)

    async def scenario() -> None:
        clock.now += 2.0
        await t.run_due()

    asyncio.run(scenario())
    assert ran == ["lost"]
    assert t.find("lost") is not None and t.find("lost").every == 2.0  # type: ignore[union-attr]


def test_a_store_failure_makes_the_timers_unhealthy_until_the_job_works_again() -> None:
    clock = Clock()
    t = timers(clock)
    broken = [True]

    def job() -> None:
        if broken[0]:
            raise sqlite3.OperationalError("database or disk is full")

    t.every("housekeeping", 60.0, job)
    asyncio.run(t.run_due())
    health = t.health()
    assert not health.ok and health.detail == "housekeeping: OperationalError: database or disk is full"
    broken[0] = False
    clock.now += 60.0
    asyncio.run(t.run_due())
    assert t.health().ok


def test_any_other_error_is_a_bug_that_stops_the_collector() -> None:
    clock = Clock()
    t = timers(clock)
    host = LoggingHost()
    t._host = host  # what start() sets; the loop itself is not needed to run due jobs

    def job() -> None:
        raise KeyError("agent")

    t.every("lost-agent check", 10.0, job)
    asyncio.run(t.run_due())
    assert host.failures == [("timer lost-agent check", "KeyError: 'agent'")]


def test_without_a_host_a_bug_raises() -> None:
    t = timers(Clock())
    t.every("x", 1.0, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(t.run_due())
