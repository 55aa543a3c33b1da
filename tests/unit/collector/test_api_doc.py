"""docs/api.md documents exactly the routes the collector serves: a new route needs its section, a removed one
loses it."""

from __future__ import annotations

import re
import time
from http import HTTPStatus
from typing import Any

from collector.http import Api
from tests.conftest import ROOT

_ROUTE_IN_HEADING = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\[?]*)")


def api() -> Api:
    none: Any = None
    return Api(none, none, none, none, time.time, dict)


def documented() -> set[tuple[str, str]]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    found = set()
    for heading in re.findall(r"^## (.+)$", text, re.MULTILINE):
        found |= {(m.group(1), m.group(2).strip()) for m in _ROUTE_IN_HEADING.finditer(heading)}
    return found


def served() -> set[tuple[str, str]]:
    return {(r.method, re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), r.pattern)) for r in api().routes()}


def test_docs_api_md_lists_every_route_and_only_those() -> None:
    assert documented() == served()


def test_an_unknown_route_and_a_wrong_method_are_json_errors() -> None:
    a = api()
    missing = a.handle("GET", "/api/v1/nothing", {})
    assert (missing.status, missing.body) == (HTTPStatus.NOT_FOUND, b'{"error": "no such endpoint: GET /api/v1/nothing"}')
    wrong = a.handle("POST", "/api/v1/agents", {})
    assert wrong.status == HTTPStatus.METHOD_NOT_ALLOWED
    assert b"use GET" in wrong.body
