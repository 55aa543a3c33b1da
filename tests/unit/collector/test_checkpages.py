"""Pages of /api/v1/checks: every series once, in order, from any cursor; bad cursors are refused."""

from __future__ import annotations

import pytest

from collector import checkpages
from collector.events import AgentHello, CheckRule
from collector.state import StateEngine
from protos import patrol_pb2


def fleet(agents: int, series: int) -> StateEngine:
    engine = StateEngine()
    for n in range(agents):
        agent_id = f"ward-{n:03d}"
        engine.hello(AgentHello(agent_id, agent_id, {}, [], "0.1", "linux", 0, [CheckRule("host.disk")], 1000.0))
        engine.apply_batch(agent_id, [patrol_pb2.Result(seq=i + 1, check_id="host.disk", key=f"/d{i:02d}",
                                                        status=2 if (n + i) % 7 == 0 else 0)  # type: ignore[arg-type]
                                      for i in range(series)], 1001.0)
    return engine


def walk(engine: StateEngine, limit: int, **kw: object) -> list[list[checkpages.Position]]:
    pages, after = [], None
    while True:
        got = checkpages.page(engine, after, limit, **kw)  # type: ignore[arg-type]
        pages.append([(v.agent_id, v.check_id, v.target, v.key) for v in got])
        if len(got) < limit:
            return pages
        after = checkpages.parse_cursor(checkpages.cursor_of(pages[-1][-1]))


def test_pages_cover_every_series_once_in_order() -> None:
    engine = fleet(agents=12, series=25)
    everything = sorted((v.agent_id, v.check_id, v.target, v.key) for v in engine.series_views())
    for limit in (1, 7, 25, 40, 300, 1000):
        pages = walk(engine, limit)
        assert [p for page in pages for p in page] == everything, f"limit {limit}"
        assert all(len(page) == limit for page in pages[:-1])


def test_a_page_for_one_agent_and_for_problems_only() -> None:
    engine = fleet(agents=5, series=10)
    mine = [p for page in walk(engine, 3, agent="ward-002") for p in page]
    assert [p[3] for p in mine] == [f"/d{i:02d}" for i in range(10)] and {p[0] for p in mine} == {"ward-002"}
    assert walk(engine, 3, agent="nobody") == [[]]
    bad = [p for page in walk(engine, 4, problems=True) for p in page]
    assert bad == sorted(p for p in bad) and len(bad) == sum(
        1 for n in range(5) for i in range(10) if (n + i) % 7 == 0)


def test_a_cursor_of_a_series_that_went_away_still_continues_after_it() -> None:
    engine = fleet(agents=3, series=4)
    first = checkpages.page(engine, None, 5)
    gone = first[-1]
    del engine.agents[gone.agent_id].series[(gone.check_id, gone.target, gone.key)]
    rest = checkpages.page(engine, (gone.agent_id, gone.check_id, gone.target, gone.key), 100)
    assert len(first) + len(rest) == 12, "the page already read held it; the rest follow it"
    assert (rest[0].agent_id, rest[0].key) > (gone.agent_id, gone.key)


@pytest.mark.parametrize("text", ["x", "!!!", checkpages.cursor_of(("a", "b", "c", "d"))[:-3], "WzEsMiwzLDRd"])
def test_a_cursor_this_api_did_not_give_is_refused(text: str) -> None:
    with pytest.raises(checkpages.CursorError, match="after must be the cursor of a row of the previous page"):
        checkpages.parse_cursor(text)
