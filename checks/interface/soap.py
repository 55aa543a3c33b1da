"""`soap`: does a SOAP web service (HIS/EMR integration platform, insurance front-end) answer a call properly.

XML from the network is parsed with defusedxml and DTDs are refused: SOAP forbids them, and they are the door
for entity-expansion attacks.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import ClassVar, Literal
from xml.etree.ElementTree import Element, ParseError

from pydantic import Field, field_validator, model_validator

from checks.context import RunContext
from checks.interface.http import HttpClientFields, exchange, shown_url, status_failure
from checks.interface.outcomes import ProbeFailure, guarded, timed_result
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
_ENVELOPE_NS = {"1.1": SOAP11_NS, "1.2": SOAP12_NS}
_CLARK = re.compile(r"^\{[^{}]+\}[^{}:\s]+$")


class SoapError(ValueError):
    """An answer that is not a SOAP envelope we may parse."""


@dataclass(frozen=True, slots=True)
class SoapFault:
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class SoapAnswer:
    body: Element
    fault: SoapFault | None


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if local_name(c.tag) == name), None)


_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_EXPAT_ENCODINGS = frozenset({"utf-8", "utf8", "utf-16", "utf16", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"})


def as_expat_input(data: bytes, charset: str | None = None) -> bytes:
    """Expat reads only UTF-8/16 and Latin-1; GBK/GB18030 answers (common here) are re-encoded as UTF-8 first."""
    m = _DECLARED_ENCODING.match(data)
    declared = m.group(1).decode("ascii") if m else charset
    if not declared or declared.lower() in _EXPAT_ENCODINGS:
        return data
    try:
        text = data.decode(declared)
    except (LookupError, UnicodeDecodeError) as exc:
        raise SoapError(f"answer is not valid {declared}: {exc}") from None
    if m:
        start, end = m.span(1)
        text = data[:start].decode("ascii") + "utf-8" + text[len(data[:end].decode(declared)) :]
    return text.encode("utf-8")


def parse_envelope(data: bytes, charset: str | None = None) -> SoapAnswer:
    """The Body of a SOAP 1.1 or 1.2 envelope and its Fault, if any; SoapError for anything else.

    `charset` is the HTTP Content-Type charset, used when the XML does not declare its encoding.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    data = as_expat_input(data, charset)
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SoapError(f"answer refused: {exc} (SOAP messages must not carry a DTD)") from None
    except ParseError as exc:
        raise SoapError(f"answer is not XML: {exc}") from None
    if local_name(root.tag) != "Envelope" or not root.tag.startswith(("{" + SOAP11_NS + "}", "{" + SOAP12_NS + "}")):
        raise SoapError(f"answer is XML but not a SOAP envelope (root element {root.tag})")
    body = _child(root, "Body")
    if body is None:
        raise SoapError("SOAP envelope has no Body")
    fault = _child(body, "Fault")
    return SoapAnswer(body, _read_fault(fault) if fault is not None else None)


def _read_fault(fault: Element) -> SoapFault:
    """faultcode/faultstring (1.1) or Code/Value and Reason/Text (1.2)."""
    code_1_1 = _child(fault, "faultcode")
    if code_1_1 is not None or _child(fault, "faultstring") is not None:
        string = _child(fault, "faultstring")
        return SoapFault(_text(code_1_1), _text(string))
    code = _child(fault, "Code")
    value = _child(code, "Value") if code is not None else None
    reason = _child(fault, "Reason")
    text = _child(reason, "Text") if reason is not None else None
    return SoapFault(_text(value), _text(text))


def _text(element: Element | None) -> str:
    return "".join(element.itertext()).strip() if element is not None else ""


def find_elements(body: Element, name: str) -> list[Element]:
    """Elements under Body named `name`: Clark notation {ns}local matches exactly, a bare name any namespace."""
    if name.startswith("{"):
        return [e for e in body.iter() if e.tag == name and e is not body]
    return [e for e in body.iter() if local_name(e.tag) == name and e is not body]


def wrap_body(body: str, version: Literal["1.1", "1.2"]) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{_ENVELOPE_NS[version]}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    )


class SoapSpec(HttpClientFields):
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "POSTs a SOAP 1.1 (text/xml + SOAPAction) or 1.2 (application/soap+xml; action=...) envelope and checks "
        "the answer: a SOAP Fault is CRITICAL content_mismatch with its faultstring (or Reason text); otherwise "
        "`expect_element` must be present in the Body (a local name matches in any namespace, {ns}name in "
        "exactly that one) and, with `expect_text`, have that text; a missing element or other text is CRITICAL "
        "content_mismatch. An answer that is not a SOAP envelope is CRITICAL protocol_error. The value is the "
        'round-trip time in seconds ("> 2s"). Same TLS, redirect and header options as `http`.'
    )
    example: ClassVar[str] = (
        "id: emr.soap.ping\n"
        "kind: soap\n"
        "url: http://esb.example.local/services/Echo\n"
        "action: urn:echo\n"
        "body: '<e:echo xmlns:e=\"urn:echo\">ping</e:echo>'\n"
        "expect_element: echoResponse\n"
    )

    kind: Literal["soap"] = "soap"
    soap_version: Literal["1.1", "1.2"] = Field("1.1", description="SOAP 1.1 (text/xml) or 1.2 (application/soap+xml).")
    action: str = Field("", description="SOAPAction (1.1 header) or the action parameter of the 1.2 content type.")
    envelope: str | None = Field(None, description="The whole envelope to send, as XML text.")
    body: str | None = Field(None, description="Only the Body content; wrapped in an envelope of soap_version.")
    expect_element: str | None = Field(
        None, description="Element that must be in the answer's Body: a local name or {namespace}name."
    )
    expect_text: str | None = Field(None, description="Text the expected element must have (whitespace stripped).")

    @field_validator("expect_element")
    @classmethod
    def _element_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith("{") and not _CLARK.match(v):
            raise ValueError(f"expected {{namespace}}name (Clark notation), got {v!r}")
        if not v.startswith("{") and (":" in v or not v.strip()):
            raise ValueError(f"expected a local name or {{namespace}}name; prefixes such as {v!r} are not resolved")
        return v

    @model_validator(mode="after")
    def _one_payload(self) -> SoapSpec:
        if (self.envelope is None) == (self.body is None):
            raise ValueError("give exactly one of envelope (whole message) or body (Body content)")
        if self.expect_text is not None and self.expect_element is None:
            raise ValueError("expect_text needs expect_element")
        return self

    def request_headers(self) -> dict[str, str]:
        if self.soap_version == "1.1":
            return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{self.action}"'}
        action = f'; action="{self.action}"' if self.action else ""
        return {"Content-Type": f"application/soap+xml; charset=utf-8{action}"}

    def probe(self, ctx: RunContext) -> list[Result]:
        def run(started_at: float, t0: float) -> Result:
            payload = self.envelope if self.envelope is not None else wrap_body(self.body or "", self.soap_version)
            answer = exchange(self, ctx, "POST", payload.encode("utf-8"), self.request_headers())
            seconds = time.monotonic() - t0
            try:
                soap = parse_envelope(answer.body, answer.headers.get_content_charset())
            except SoapError as exc:
                raise status_failure(answer, None) or ProbeFailure(
                    Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{answer.status} from {shown_url(answer.url)}: {exc}"
                ) from None
            if soap.fault is not None:
                raise ProbeFailure(
                    Status.CRITICAL, Outcome.CONTENT_MISMATCH,
                    f"SOAP Fault {soap.fault.code or '(no code)'}: {soap.fault.text or '(no faultstring)'}",
                )
            failure = status_failure(answer, None) or self._content_failure(soap)
            if failure:
                raise failure
            return timed_result(
                self, seconds, f"{answer.status} SOAP answer in {seconds:.3f} s", started_at, t0,
                {"status_code": float(answer.status), "body_bytes": float(len(answer.body))},
            )

        return guarded(self, ctx, shown_url(self.url), run)

    def _content_failure(self, soap: SoapAnswer) -> ProbeFailure | None:
        if self.expect_element is None:
            return None
        found = find_elements(soap.body, self.expect_element)
        if not found:
            return ProbeFailure(Status.CRITICAL, Outcome.CONTENT_MISMATCH, f"no {self.expect_element} in the SOAP Body")
        if self.expect_text is None:
            return None
        texts = [_text(e) for e in found]
        if self.expect_text in texts:
            return None
        return ProbeFailure(
            Status.CRITICAL, Outcome.CONTENT_MISMATCH,
            f"{self.expect_element} is {texts[0]!r}, expected {self.expect_text!r}",
        )


SPECS: dict[str, type[CheckSpec]] = {"soap": SoapSpec}
