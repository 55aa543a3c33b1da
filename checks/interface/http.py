"""`http`: does a web service (HIS web, insurance front-end, payment gateway) answer as its clients expect.

Built on the stdlib http.client so the agent stays light; redirects, TLS verification and the overall deadline
are handled here rather than left to a library's defaults.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.context import RunContext
from checks.interface.outcomes import ProbeFailure, guarded, timed_result
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec, Regex, Size
from checks.thresholds import Threshold, parse_threshold

USER_AGENT = "xunjian-probe/0.1"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpClientFields(CheckSpec):
    """Options every HTTP-based kind shares (http, soap): where to go, which headers, how to treat TLS and redirects."""

    url: str = Field(description="http:// or https:// URL to request.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    header_env: dict[str, str] = Field(
        default_factory=dict,
        description="Header name -> environment variable holding its value, so tokens stay out of packs "
        "(e.g. {Authorization: XJ_INSURANCE_TOKEN}).",
    )
    follow_redirects: bool = Field(True, description="Follow 301/302/303/307/308 answers to their Location.")
    max_redirects: int = Field(5, ge=0, le=30, description="More redirects than this is CRITICAL protocol_error.")
    tls_verify: bool = Field(
        True, description="Verify the server certificate and host name; false accepts self-signed certificates."
    )
    ca_file: str | None = Field(None, description="PEM file of CA certificates to trust instead of the system store.")
    max_body: Size = Field(1024 * 1024, ge=1, description="Read at most this much of the answer body, e.g. 1MiB.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {v!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in the URL would end up in results and logs; use header_env instead")
        try:
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port in URL {v!r}: {exc}") from None
        return v


@dataclass
class HttpAnswer:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes
    url: str
    redirects: int

    def text(self) -> str:
        """The body as text: the declared charset, else UTF-8, else GB18030 (common on Chinese hospital systems)."""
        charset = self.headers.get_content_charset()
        if charset:
            try:
                return self.body.decode(charset, errors="replace")
            except LookupError:
                pass
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return self.body.decode("gb18030", errors="replace")


def tls_context(spec: HttpClientFields) -> ssl.SSLContext:
    """The client TLS context; a CA file the agent cannot read is the agent's problem, hence UNKNOWN."""
    if not spec.tls_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=spec.ca_file)
    except FileNotFoundError:
        raise ProbeFailure(Status.UNKNOWN, Outcome.NOT_FOUND, f"CA file {spec.ca_file} not found on this agent") from None
    except PermissionError:
        raise ProbeFailure(Status.UNKNOWN, Outcome.PERMISSION_DENIED, f"CA file {spec.ca_file} not readable") from None
    except ssl.SSLError as exc:
        raise ProbeFailure(Status.UNKNOWN, Outcome.TLS_ERROR, f"CA file {spec.ca_file} unusable: {exc}") from None


def request_headers(spec: HttpClientFields, extra: dict[str, str]) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Connection": "close", **extra, **spec.headers}
    for name, variable in spec.header_env.items():
        value = os.environ.get(variable)
        if value is None:
            raise ProbeFailure(
                Status.UNKNOWN, Outcome.AUTH_FAILED, f"environment variable {variable} (header {name}) is not set on this agent"
            )
        headers[name] = value
    return headers


def shown_url(url: str) -> str:
    """A URL as summaries and errors show it: no user:password and no query values (webhook and robot URLs carry
    their keys there), so a secret in a URL never reaches a result, a log or the collector."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = "&".join(f"{p.split('=', 1)[0]}=…" if "=" in p else p for p in parts.query.split("&")) if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}" + (f"?{query}" if query else "")


def exchange(
    spec: HttpClientFields, ctx: RunContext, method: str, body: bytes | None, extra_headers: dict[str, str]
) -> HttpAnswer:
    """One request, following redirects per the spec, each hop bounded by what is left of the run's deadline."""
    context = tls_context(spec)
    headers = request_headers(spec, extra_headers)
    url = spec.url
    redirects = 0
    while True:
        answer = _one_request(spec, ctx, context, method, url, body, headers)
        location = answer.headers.get("Location")
        if not (spec.follow_redirects and answer.status in _REDIRECTS and location):
            answer.redirects = redirects
            return answer
        if redirects >= spec.max_redirects:
            raise ProbeFailure(
                Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"more than {spec.max_redirects} redirects, last to {location}"
            )
        redirects += 1
        previous, url = url, urljoin(url, location)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR,
                               f"redirected to a non-HTTP URL {shown_url(url)}")
        if _origin(url) != _origin(previous):
            secret = {"authorization", "cookie", "proxy-authorization"} | {n.lower() for n in spec.header_env}
            headers = {k: v for k, v in headers.items() if k.lower() not in secret}
        if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "soapaction")}


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: credentials are not carried to another origin on a redirect."""
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _one_request(
    spec: HttpClientFields,
    ctx: RunContext,
    context: ssl.SSLContext,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
) -> HttpAnswer:
    parts = urlsplit(url)
    host = parts.hostname or ""
    timeout = ctx.remaining(spec.timeout)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port or 443, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, parts.port or 80, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = b"" if method == "HEAD" else response.read(spec.max_body)
        return HttpAnswer(response.status, response.reason, response.headers, data, url, 0)
    except http.client.HTTPException as exc:
        if isinstance(exc, ConnectionError):
            raise
        raise ProbeFailure(
            Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{host}:{parts.port or conn.port} did not answer HTTP: {exc!r}"
        ) from None
    finally:
        conn.close()


def status_failure(answer: HttpAnswer, expected: list[int] | None) -> ProbeFailure | None:
    """None when the status is expected (by default any status below 400); else the failure it means."""
    ok = answer.status in expected if expected else answer.status < 400
    if ok:
        return None
    wanted = "/".join(str(s) for s in expected) if expected else "below 400"
    summary = f"{shown_url(answer.url)} answered {answer.status} {answer.reason}, expected {wanted}"
    if answer.status in (401, 403):
        return ProbeFailure(Status.CRITICAL, Outcome.AUTH_FAILED, summary)
    if answer.status == 404:
        return ProbeFailure(Status.CRITICAL, Outcome.NOT_FOUND, summary)
    return ProbeFailure(Status.CRITICAL, Outcome.CONTENT_MISMATCH, summary)


class JsonExpectation(BaseModel):
    """One field of a JSON answer and what it must be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(
        description='JSON pointer ("/data/status") or dotted path ("data.items[0].status", "data.items.0.status").'
    )
    equals: Any = Field(None, description="The value the field must have (string, number, boolean or null).")
    compare: str | None = Field(None, description='A comparison the numeric field must satisfy, e.g. "> 0", "<= 100".')

    @field_validator("compare")
    @classmethod
    def _comparison(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.match(r"^\s*(>=|<=|==|!=|>|<|=)", v):
            raise ValueError(f'expected a comparison such as "> 0" or "== 1", got {v!r}')
        parse_threshold(v)
        return v

    @model_validator(mode="after")
    def _one_test(self) -> JsonExpectation:
        if "equals" in self.model_fields_set and self.compare is not None:
            raise ValueError("give either equals or compare, not both")
        return self

    def problem(self, document: Any) -> str | None:
        """None when the document satisfies this expectation, else what is wrong."""
        try:
            value = json_lookup(document, self.path)
        except LookupError as exc:
            return f"JSON field {self.path} missing: {exc}"
        if "equals" in self.model_fields_set:
            if value != self.equals or isinstance(value, bool) != isinstance(self.equals, bool):
                return f"JSON field {self.path} is {json.dumps(value, ensure_ascii=False)}, expected {json.dumps(self.equals, ensure_ascii=False)}"
            return None
        if self.compare is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"JSON field {self.path} is {json.dumps(value, ensure_ascii=False)}, not a number to compare {self.compare}"
            comparison: Threshold = parse_threshold(self.compare)
            if not comparison.matches(float(value)):
                return f"JSON field {self.path} is {value}, expected {self.compare}"
        return None


_DOTTED_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_path_tokens(path: str) -> list[str]:
    """Split a JSON pointer (RFC 6901) or a dotted path with [n] indexes into its steps."""
    if path == "" or path == "/":
        return [] if path == "" else [""]
    if path.startswith("/"):
        return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
    tokens: list[str] = []
    pos = 0
    while pos < len(path):
        if path[pos] == ".":
            pos += 1
            continue
        m = _DOTTED_TOKEN.match(path, pos)
        if not m:
            raise ValueError(f"bad JSON path {path!r} at position {pos}")
        tokens.append(m.group(1) if m.group(1) is not None else m.group(2))
        pos = m.end()
    return tokens


def json_lookup(document: Any, path: str) -> Any:
    """The value at `path`; LookupError naming the step that is missing."""
    value = document
    for step in json_path_tokens(path):
        if isinstance(value, dict):
            if step not in value:
                raise KeyError(f"no key {step!r}")
            value = value[step]
        elif isinstance(value, list):
            if not step.isdigit() or int(step) >= len(value):
                raise IndexError(f"no index {step!r} in a list of {len(value)}")
            value = value[int(step)]
        else:
            raise KeyError(f"cannot take {step!r} of {json.dumps(value, ensure_ascii=False)}")
    return value


class HttpSpec(HttpClientFields):
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Requests a URL and checks the answer: status (by default anything below 400), a body substring or "
        "regular expression, and fields of a JSON body. The value is the time in seconds until the whole answer "
        'was read, redirects included, so warn/crit read like "> 2s". 401/403 are CRITICAL auth_failed, 404 '
        "CRITICAL not_found, any other unexpected status or body CRITICAL content_mismatch; refused, timed-out "
        "and TLS-failed connections are CRITICAL too. Only GET, HEAD, POST and OPTIONS are allowed: a patrol "
        "check must not change anything."
    )

    example: ClassVar[str] = (
        "id: his.web.login\n"
        "kind: http\n"
        "url: https://his.example.local/login\n"
        "expect_status: 200\n"
        "expect_body: 登录\n"
        'warn: "> 2s"\n'
        'crit: "> 5s"\n'
    )

    kind: Literal["http"] = "http"
    method: Literal["GET", "HEAD", "POST", "OPTIONS"] = Field("GET", description="HTTP method.")
    body: str | None = Field(None, description="Request body (UTF-8), e.g. a JSON health query.")
    content_type: str | None = Field(None, description="Content-Type of the body, e.g. application/json.")
    expect_status: list[int] | None = Field(
        None, description="Status code or list of codes that count as up; default: any status below 400."
    )
    expect_body: str | None = Field(None, description="A substring the body must contain, e.g. 登录.")
    expect_regex: Regex | None = Field(None, description="A regular expression the body must match (re.search).")
    expect_json: list[JsonExpectation] = Field(
        default_factory=list, description="Fields of a JSON body and the values or comparisons they must satisfy."
    )

    @field_validator("expect_status", mode="before")
    @classmethod
    def _status_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, (int, str)) else v

    @field_validator("expect_status")
    @classmethod
    def _status_range(cls, v: list[int] | None) -> list[int] | None:
        for code in v or []:
            if not 100 <= code <= 599:
                raise ValueError(f"expected HTTP status codes between 100 and 599, got {code}")
        return v

    def probe(self, ctx: RunContext) -> list[Result]:
        def run(started_at: float, t0: float) -> Result:
            extra = {"Content-Type": self.content_type} if self.content_type else {}
            body = self.body.encode("utf-8") if self.body is not None else None
            answer = exchange(self, ctx, self.method, body, extra)
            seconds = time.monotonic() - t0
            failure = status_failure(answer, self.expect_status) or self._content_failure(answer)
            if failure:
                raise failure
            via = f" after {answer.redirects} redirect(s)" if answer.redirects else ""
            return timed_result(
                self, seconds, f"{answer.status} {answer.reason} in {seconds:.3f} s{via}", started_at, t0,
                {"status_code": float(answer.status), "body_bytes": float(len(answer.body)),
                 "redirects": float(answer.redirects)},
            )

        return guarded(self, ctx, shown_url(self.url), run)

    def _content_failure(self, answer: HttpAnswer) -> ProbeFailure | None:
        if self.expect_body is None and self.expect_regex is None and not self.expect_json:
            return None
        text = answer.text()
        problem = None
        if self.expect_body is not None and self.expect_body not in text:
            problem = f"body does not contain {self.expect_body!r}"
        elif self.expect_regex is not None and not re.search(self.expect_regex, text):
            problem = f"body does not match /{self.expect_regex}/"
        elif self.expect_json:
            try:
                document = json.loads(text)
            except ValueError as exc:
                problem = f"body is not JSON: {exc}"
            else:
                problems = [p for p in (e.problem(document) for e in self.expect_json) if p]
                problem = "; ".join(problems) or None
        if problem is None:
            return None
        return ProbeFailure(Status.CRITICAL, Outcome.CONTENT_MISMATCH, f"{answer.status} from {shown_url(answer.url)}, but {problem}")


SPECS: dict[str, type[CheckSpec]] = {"http": HttpSpec}
