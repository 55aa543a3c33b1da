"""soap against a scripted loopback service: a good answer, 1.1 and 1.2 faults, non-SOAP answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks.interface.soap import SOAP11_NS, SOAP12_NS
from checks.result import Outcome, Status
from tests.integration.interface.probing import run_check
from tests.integration.interface.servers import HttpServer, Reply, Route, Seen

pytestmark = pytest.mark.integration

GOOD = f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body>
  <m:GetStatusResponse xmlns:m="urn:yibao:front"><m:code>0000</m:code><m:msg>正常</m:msg></m:GetStatusResponse>
</s:Body></s:Envelope>""".encode()
FAULT_11 = f"""<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body><s:Fault>
  <faultcode>s:Server</faultcode><faultstring>医保中心连接超时</faultstring>
</s:Fault></s:Body></s:Envelope>""".encode()
FAULT_12 = f"""<env:Envelope xmlns:env="{SOAP12_NS}"><env:Body><env:Fault>
  <env:Code><env:Value>env:Receiver</env:Value></env:Code>
  <env:Reason><env:Text xml:lang="en">database unavailable</env:Text></env:Reason>
</env:Fault></env:Body></env:Envelope>""".encode()
DTD = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
BODY = '<m:GetStatus xmlns:m="urn:yibao:front"/>'


@pytest.fixture
def front() -> Iterator[HttpServer]:
    def good(seen: Seen) -> Reply:
        return Reply(200, GOOD, {"Content-Type": "text/xml; charset=utf-8"})

    routes: dict[str, Reply | Route] = {
        "/ok": good,
        "/fault11": Reply(500, FAULT_11, {"Content-Type": "text/xml; charset=utf-8"}),
        "/fault12": Reply(500, FAULT_12, {"Content-Type": "application/soap+xml"}),
        "/html": Reply(502, b"<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"}),
        "/dtd": Reply(200, DTD, {"Content-Type": "text/xml"}),
        "/text": Reply(200, b"OK", {"Content-Type": "text/plain"}),
    }
    with HttpServer(routes) as server:
        yield server


def test_good_answer_with_element_and_text(front: HttpServer) -> None:
    result = run_check(
        "soap", url=front.url("/ok"), action="urn:GetStatus", body=BODY,
        expect_element="{urn:yibao:front}code", expect_text="0000",
    )
    assert result.status is Status.OK, result.summary
    sent = front.seen[-1]
    assert sent.method == "POST"
    assert sent.headers["SOAPAction"] == '"urn:GetStatus"'
    assert sent.headers["Content-Type"].startswith("text/xml")
    assert SOAP11_NS.encode() in sent.body and b"GetStatus" in sent.body


def test_local_name_matches_any_namespace(front: HttpServer) -> None:
    result = run_check("soap", url=front.url("/ok"), body=BODY, expect_element="msg", expect_text="正常")
    assert result.status is Status.OK, result.summary


def test_wrong_text_or_missing_element_is_content_mismatch(front: HttpServer) -> None:
    wrong = run_check("soap", url=front.url("/ok"), body=BODY, expect_element="code", expect_text="9999")
    assert (wrong.status, wrong.outcome) == (Status.CRITICAL, Outcome.CONTENT_MISMATCH)
    assert "'0000'" in wrong.summary
    other_ns = run_check("soap", url=front.url("/ok"), body=BODY, expect_element="{urn:other}code")
    assert other_ns.outcome is Outcome.CONTENT_MISMATCH


def test_soap_1_2_request_headers(front: HttpServer) -> None:
    result = run_check("soap", url=front.url("/ok"), body=BODY, soap_version="1.2", action="urn:GetStatus")
    assert result.status is Status.OK, result.summary
    sent = front.seen[-1]
    assert sent.headers["Content-Type"] == 'application/soap+xml; charset=utf-8; action="urn:GetStatus"'
    assert "SOAPAction" not in sent.headers
    assert SOAP12_NS.encode() in sent.body


def test_soap_1_1_fault_reports_faultstring(front: HttpServer) -> None:
    result = run_check("soap", url=front.url("/fault11"), body=BODY, expect_element="code")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONTENT_MISMATCH)
    assert "医保中心连接超时" in result.summary and "s:Server" in result.summary


def test_soap_1_2_fault_reports_reason(front: HttpServer) -> None:
    result = run_check("soap", url=front.url("/fault12"), body=BODY, soap_version="1.2")
    assert result.status is Status.CRITICAL
    assert "database unavailable" in result.summary


def test_html_error_page_reports_the_status(front: HttpServer) -> None:
    result = run_check("soap", url=front.url("/html"), body=BODY)
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONTENT_MISMATCH)
    assert "502" in result.summary


def test_non_soap_answers_are_protocol_errors(front: HttpServer) -> None:
    for path in ("/dtd", "/text"):
        result = run_check("soap", url=front.url(path), body=BODY)
        assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.PROTOCOL_ERROR), path
