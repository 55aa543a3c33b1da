"""SOAP envelope parsing: bodies, 1.1 and 1.2 faults, namespace-aware element lookup, DTDs refused."""

from __future__ import annotations

import pytest

from checks.interface.soap import SOAP11_NS, SOAP12_NS, SoapError, SoapSpec, find_elements, parse_envelope, wrap_body


def envelope(ns: str, body: str) -> bytes:
    return f'<e:Envelope xmlns:e="{ns}"><e:Header/><e:Body>{body}</e:Body></e:Envelope>'.encode()


def test_body_and_namespace_aware_lookup() -> None:
    answer = parse_envelope(envelope(SOAP11_NS, '<r:Resp xmlns:r="urn:a"><r:code>0</r:code><code>1</code></r:Resp>'))
    assert answer.fault is None
    assert [e.text for e in find_elements(answer.body, "code")] == ["0", "1"]
    assert [e.text for e in find_elements(answer.body, "{urn:a}code")] == ["0"]
    assert find_elements(answer.body, "{urn:b}code") == []
    assert find_elements(answer.body, "Body") == []


def test_soap_1_1_fault() -> None:
    fault = parse_envelope(
        envelope(SOAP11_NS, "<e:Fault><faultcode>e:Client</faultcode><faultstring>bad token</faultstring></e:Fault>")
    ).fault
    assert fault is not None
    assert (fault.code, fault.text) == ("e:Client", "bad token")


def test_soap_1_2_fault() -> None:
    body = (
        "<e:Fault><e:Code><e:Value>e:Sender</e:Value></e:Code>"
        '<e:Reason><e:Text xml:lang="zh">参数错误</e:Text></e:Reason></e:Fault>'
    )
    fault = parse_envelope(envelope(SOAP12_NS, body)).fault
    assert fault is not None
    assert (fault.code, fault.text) == ("e:Sender", "参数错误")


def test_gbk_encoded_answer() -> None:
    xml = f'<?xml version="1.0" encoding="GBK"?><e:Envelope xmlns:e="{SOAP11_NS}"><e:Body><msg>正常</msg></e:Body></e:Envelope>'
    answer = parse_envelope(xml.encode("gbk"))
    assert find_elements(answer.body, "msg")[0].text == "正常"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not xml", "not XML"),
        (b"<html/>", "not a SOAP envelope"),
        (b'<Envelope xmlns="urn:other"><Body/></Envelope>', "not a SOAP envelope"),
        (f'<e:Envelope xmlns:e="{SOAP11_NS}"/>'.encode(), "no Body"),
        (b'<!DOCTYPE e [<!ENTITY x "y">]><e>&x;</e>', "DTD"),
    ],
)
def test_refused_answers(data: bytes, message: str) -> None:
    with pytest.raises(SoapError, match=message):
        parse_envelope(data)


def test_wrapped_body_round_trips() -> None:
    answer = parse_envelope(wrap_body('<p:ping xmlns:p="urn:p"/>', "1.2").encode())
    assert find_elements(answer.body, "{urn:p}ping")


def spec(**options: object) -> SoapSpec:
    base = {"id": "esb.soap", "kind": "soap", "url": "http://esb.example.local/ws"}
    return SoapSpec.model_validate({**base, **options})


def test_spec_needs_exactly_one_payload_and_a_resolvable_element_name() -> None:
    with pytest.raises(ValueError, match="exactly one of envelope"):
        spec()
    with pytest.raises(ValueError, match="exactly one of envelope"):
        spec(body="<a/>", envelope="<b/>")
    with pytest.raises(ValueError, match="prefixes"):
        spec(body="<a/>", expect_element="m:code")
    with pytest.raises(ValueError, match="Clark"):
        spec(body="<a/>", expect_element="{urn:a")
    with pytest.raises(ValueError, match="needs expect_element"):
        spec(body="<a/>", expect_text="0")


def test_request_headers_per_version() -> None:
    assert spec(body="<a/>", action="urn:x").request_headers()["SOAPAction"] == '"urn:x"'
    v12 = spec(body="<a/>", soap_version="1.2").request_headers()
    assert v12 == {"Content-Type": "application/soap+xml; charset=utf-8"}


def test_gb18030_without_declaration_uses_the_http_charset() -> None:
    xml = f'<e:Envelope xmlns:e="{SOAP11_NS}"><e:Body><msg>医保</msg></e:Body></e:Envelope>'
    answer = parse_envelope(xml.encode("gb18030"), "gb18030")
    assert find_elements(answer.body, "msg")[0].text == "医保"
