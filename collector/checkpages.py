"""Pages of /api/v1/checks: the check series in (agent, check, target, key) order, from a cursor.

Why not sort every series per request: at 100,000 series that alone took longer than a page may. Agents are
few (thousands), so a page sorts the agent ids, skips to the cursor's agent and sorts only the series of the
agents it reads; a page costs its size plus the fleet's agent count, not the fleet's series.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Iterator

from collector.state import NO_STATUS, OK, SeriesView, StateEngine

Position = tuple[str, str, str, str]
"""(agent, check id, target, key) of a series: the order of the pages."""


class CursorError(ValueError):
    """A cursor this API did not give."""


def cursor_of(position: Position) -> str:
    """The opaque `after` value that continues a listing after `position`."""
    return base64.urlsafe_b64encode(json.dumps(position, ensure_ascii=False).encode()).decode().rstrip("=")


def parse_cursor(text: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("after must be the cursor of a row of the previous page") from None
    if not (isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value)):
        raise CursorError("after must be the cursor of a row of the previous page")
    return value[0], value[1], value[2], value[3]


def _from(engine: StateEngine, after: Position | None, agent: str) -> Iterator[SeriesView]:
    """Series with a result, in order, strictly after `after` (read from another thread: dicts are copied)."""
    if agent:
        ids = [agent] if agent in engine.agents else []
    else:
        ids = sorted(list(engine.agents))
    start = bisect.bisect_left(ids, after[0]) if after is not None else 0
    for agent_id in ids[start:]:
        a = engine.agents.get(agent_id)
        if a is None:
            continue
        items = sorted(list(a.series.items()))
        if after is not None and agent_id == after[0]:
            items = items[bisect.bisect_right(items, (after[1], after[2], after[3]), key=lambda kv: kv[0]):]
        for (check_id, target, key), s in items:
            if s.latest is not None and s.status != NO_STATUS:
                yield SeriesView(agent_id, check_id, target, key, s)


def page(engine: StateEngine, after: Position | None, limit: int, *, agent: str = "",
         problems: bool = False) -> list[SeriesView]:
    """Up to `limit` series after `after`; with `problems`, only those whose latest status is not OK."""
    out: list[SeriesView] = []
    if limit <= 0:
        return out
    for view in _from(engine, after, agent):
        if problems and view.series.status == OK:
            continue
        out.append(view)
        if len(out) >= limit:
            break
    return out
