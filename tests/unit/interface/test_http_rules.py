"""http's pure rules: JSON paths and expectations, what an unexpected status means, option validation."""

from __future__ import annotations

import http.client
from typing import Any

import pytest

from checks.interface.http import HttpAnswer, HttpSpec, JsonExpectation, json_lookup, json_path_tokens, status_failure
from checks.result import Outcome

DOC = {"data": {"items": [{"status": "OK", "n": 3}], "a/b": {"~x": True}}, "empty": None}


@pytest.mark.parametrize(
    ("path", "tokens"),
    [
        ("/data/items/0/status", ["data", "items", "0", "status"]),
        ("/data/a~1b/~0x", ["data", "a/b", "~x"]),
        ("data.items[0].status", ["data", "items", "0", "status"]),
        ("data.items.0.n", ["data", "items", "0", "n"]),
        ("", []),
    ],
)
def test_path_tokens(path: str, tokens: list[str]) -> None:
    assert json_path_tokens(path) == tokens


def test_lookup_and_missing_steps() -> None:
    assert json_lookup(DOC, "/data/a~1b/~0x") is True
    assert json_lookup(DOC, "data.items[0].n") == 3
    with pytest.raises(LookupError, match="no key 'nope'"):
        json_lookup(DOC, "data.nope")
    with pytest.raises(LookupError, match="no index '5' in a list of 1"):
        json_lookup(DOC, "data.items[5]")


def expectation(**fields: Any) -> JsonExpectation:
    return JsonExpectation.model_validate(fields)


def test_expectations() -> None:
    assert expectation(path="data.items[0].status", equals="OK").problem(DOC) is None
    assert expectation(path="empty", equals=None).problem(DOC) is None
    assert expectation(path="empty").problem(DOC) is None
    assert expectation(path="data.items[0].n", compare=">= 3").problem(DOC) is None
    assert expectation(path="data.items[0].n", compare="> 3").problem(DOC) == "JSON field data.items[0].n is 3, expected > 3"
    assert "expected \"UP\"" in (expectation(path="/data/items/0/status", equals="UP").problem(DOC) or "")
    assert "not a number" in (expectation(path="data.items[0].status", compare="> 1").problem(DOC) or "")
    assert "missing" in (expectation(path="nothing").problem(DOC) or "")
    assert expectation(path="/data/a~1b/~0x", equals=1).problem(DOC) is not None


def test_expectation_validation() -> None:
    with pytest.raises(ValueError, match="either equals or compare"):
        expectation(path="a", equals=1, compare="> 0")
    with pytest.raises(ValueError, match="comparison"):
        expectation(path="a", compare="10:20")


def answer(status: int) -> HttpAnswer:
    return HttpAnswer(status, "Reason", http.client.HTTPMessage(), b"", "http://his.example.local/", 0)


def test_status_meanings() -> None:
    assert status_failure(answer(200), None) is None
    assert status_failure(answer(302), None) is None
    assert status_failure(answer(204), [200, 204]) is None
    outcomes = {code: status_failure(answer(code), None) for code in (401, 403, 404, 500, 503)}
    assert {c: f.outcome if f else None for c, f in outcomes.items()} == {
        401: Outcome.AUTH_FAILED, 403: Outcome.AUTH_FAILED, 404: Outcome.NOT_FOUND,
        500: Outcome.CONTENT_MISMATCH, 503: Outcome.CONTENT_MISMATCH,
    }
    mismatch = status_failure(answer(200), [201])
    assert mismatch is not None and "expected 201" in mismatch.summary


def test_body_text_falls_back_to_gb18030() -> None:
    headers = http.client.HTTPMessage()
    assert HttpAnswer(200, "OK", headers, "登录".encode("gb18030"), "u", 0).text() == "登录"
    msg = http.client.HTTPMessage()
    msg["Content-Type"] = "text/html; charset=gbk"
    assert HttpAnswer(200, "OK", msg, "登录".encode("gbk"), "u", 0).text() == "登录"


def spec(**options: Any) -> HttpSpec:
    return HttpSpec.model_validate({"id": "his.web", "kind": "http", "url": "https://his.example.local/", **options})


def test_spec_validation_messages() -> None:
    assert spec(expect_status=200).expect_status == [200]
    with pytest.raises(ValueError, match="http:// or https:// URL"):
        spec(url="ftp://his.example.local/")
    with pytest.raises(ValueError, match="use header_env"):
        spec(url="https://mon:secret@his.example.local/")
    with pytest.raises(ValueError, match="between 100 and 599"):
        spec(expect_status=[200, 999])
    with pytest.raises(ValueError, match="bad regular expression"):
        spec(expect_regex="(")
    with pytest.raises(ValueError, match="method"):
        spec(method="DELETE")
    with pytest.raises(ValueError, match="Extra inputs"):
        spec(expect_bdy="x")
