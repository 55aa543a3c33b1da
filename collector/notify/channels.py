"""The channels that deliver a message: generic webhook (our JSON or Alertmanager's webhook v4), WeCom group robot,
DingTalk robot, e-mail over SMTP, and an existing Alertmanager's v2 API.

One send is one HTTP request or SMTP session with the receiver's timeout; it returns an `Attempt` (ok, a short
status, the receiver's answer) and never raises for a failure of the receiver. WeCom and DingTalk answer HTTP 200
with a JSON `errcode`: anything but 0 is a failure. Secrets go into the request only; answers and errors are
scrubbed of them before they are recorded or logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from checks.sql.secrets import scrub
from collector.notify.config import Receiver
from collector.notify.render import Item, Renderer, postable_alert, webhook_v4, xunjian_json

WECOM_MARKDOWN_MAX = 4096
WECOM_TEXT_MAX = 2048
DINGTALK_MAX = 18000
"""Bytes a robot accepts in one message body's content; longer text is cut with a note."""
DINGTALK_TOO_FAST = 130101
USER_AGENT = "xunjian-notifier"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status: str
    """HTTP status and errcode, SMTP reply, or the kind of connection error."""
    response: str
    retry_after: float = 0.0
    """Seconds the receiver asked us to wait (rate limited), 0 when it did not say."""


def cut(text: str, limit: int) -> str:
    """`text` within `limit` UTF-8 bytes, cut on a character boundary with a marker."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit - 16].decode("utf-8", "ignore") + "\n…(truncated)"


def tls_context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or None)


def post_json(url: str, payload: Any, timeout: float, headers: Mapping[str, str] | None = None,
              ca_file: str = "") -> tuple[int, str]:
    """POST JSON; (HTTP status, body text). Raises OSError for connection problems."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT, **(headers or {})})
    context = tls_context(ca_file) if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return int(resp.status), resp.read(64 * 1024).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(64 * 1024).decode("utf-8", "replace")


def _http(send: Callable[[], tuple[int, str]], check_errcode: bool) -> Attempt:
    try:
        code, text = send()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(False, "connection error", scrub(f"{type(exc).__name__}: {reason}"))
    text = scrub(text.strip())
    if not 200 <= code < 300:
        return Attempt(False, f"HTTP {code}", text)
    if not check_errcode:
        return Attempt(True, f"HTTP {code}", text)
    try:
        answer = json.loads(text)
        errcode = int(answer.get("errcode", -1))
    except (ValueError, AttributeError, TypeError):
        return Attempt(False, f"HTTP {code} not JSON", text)
    if errcode != 0:
        wait = 60.0 if errcode == DINGTALK_TOO_FAST or errcode == 45009 else 0.0
        return Attempt(False, f"HTTP {code} errcode {errcode}", text, retry_after=wait)
    return Attempt(True, f"HTTP {code} errcode 0", text)


class Channel:
    """One receiver's channel: `send(items, group_key, digest)`."""

    def __init__(self, receiver: Receiver, secrets: Mapping[str, str], renderer: Renderer,
                 clock: Callable[[], float] = time.time) -> None:
        self.receiver = receiver
        self.secrets = secrets
        self.renderer = renderer
        self.clock = clock

    def send(self, items: Sequence[Item], group_key: str, digest: bool = False) -> Attempt:
        raise NotImplementedError

    def _bearer(self) -> dict[str, str]:
        token = self.secrets.get("token", "")
        return {"Authorization": f"Bearer {token}"} if token else {}


class WebhookChannel(Channel):
    def send(self, items: Sequence[Item], group_key: str, digest: bool = False) -> Attempt:
        r = self.receiver
        if r.format == "alertmanager":
            payload = webhook_v4(items, self.renderer, r.name, group_key)
        else:
            payload = xunjian_json(items, self.renderer, r.name, group_key, digest)
        return _http(lambda: post_json(r.url, payload, r.timeout, self._bearer(), r.ca_file), check_errcode=False)


def wecom_payload(receiver: Receiver, text: str, markdown: str) -> dict[str, Any]:
    if receiver.msgtype == "markdown":
        return {"msgtype": "markdown", "markdown": {"content": cut(markdown, WECOM_MARKDOWN_MAX)}}
    body: dict[str, Any] = {"content": cut(text, WECOM_TEXT_MAX)}
    mentions = [*receiver.mention_mobiles, *(["@all"] if receiver.mention_all else [])]
    if mentions:
        body["mentioned_mobile_list"] = mentions
    return {"msgtype": "text", "text": body}


class WecomChannel(Channel):
    def send(self, items: Sequence[Item], group_key: str, digest: bool = False) -> Attempt:
        r = self.receiver
        url = f"{r.endpoint()}?{urllib.parse.urlencode({'key': self.secrets['key']})}"
        payload = wecom_payload(r, self.renderer.text(items, digest), self.renderer.markdown(items, digest))
        return _http(lambda: post_json(url, payload, r.timeout, ca_file=r.ca_file), check_errcode=True)


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """DingTalk's signature: base64 of HMAC-SHA256 over "timestamp\\nsecret" keyed by the secret (URL-encoded by the
    caller as a query parameter)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def with_keyword(text: str, keywords: Sequence[str]) -> str:
    """A robot with custom keywords drops messages without one: prepend the first unless one is there."""
    if not keywords or any(k in text for k in keywords):
        return text
    return f"{keywords[0]} {text}"


def dingtalk_payload(receiver: Receiver, title: str, text: str, markdown: str) -> dict[str, Any]:
    at = {"atMobiles": list(receiver.mention_mobiles), "isAtAll": receiver.mention_all}
    mentions = " ".join(f"@{m}" for m in receiver.mention_mobiles)
    if receiver.msgtype == "markdown":
        body = with_keyword(markdown + (f"\n\n{mentions}" if mentions else ""), receiver.keywords)
        return {"msgtype": "markdown", "markdown": {"title": with_keyword(title, receiver.keywords),
                                                    "text": cut(body, DINGTALK_MAX)}, "at": at}
    body = with_keyword(text + (f"\n{mentions}" if mentions else ""), receiver.keywords)
    return {"msgtype": "text", "text": {"content": cut(body, DINGTALK_MAX)}, "at": at}


class DingtalkChannel(Channel):
    def send(self, items: Sequence[Item], group_key: str, digest: bool = False) -> Attempt:
        r = self.receiver
        query = {"access_token": self.secrets["token"]}
        secret = self.secrets.get("secret", "")
        if secret:
            stamp = int(self.clock() * 1000)
            query.update(timestamp=str(stamp), sign=dingtalk_sign(stamp, secret))
        url = f"{r.endpoint()}?{urllib.parse.urlencode(query)}"
        payload = dingtalk_payload(r, self.renderer.title(items, digest), self.renderer.text(items, digest),
                                   self.renderer.markdown(items, digest))
        return _http(lambda: post_json(url, payload, r.timeout, ca_file=r.ca_file), check_errcode=True)


def email_message(receiver: Receiver, subject: str, text: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = receiver.sender
    msg["To"] = ", ".join(receiver.to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="xunjian")
    msg.set_content(text, charset="utf-8")
    return msg


class EmailChannel(Channel):
    def send(self, items: Sequence[Item], group_key: str, digest: bool = False) -> Attempt:
        r = self.receiver
        msg = email_message(r, self.renderer.title(items, digest), self.renderer.text(items, digest))
        port = r.port or (465 if r.security == "tls" else 587 if r.security == "starttls" else 25)
        try:
            context = tls_context(r.ca_file)
            smtp: smtplib.SMTP
            if r.security == "tls":
                smtp = smtplib.SMTP_SSL(r.host, port, timeout=r.timeout, context=context)
            else:
                smtp = smtplib.SMTP(r.host, port, timeout=r.timeout)
            with smtp:
                if r.security == "starttls":
                    smtp.starttls(context=context)
                if r.username:
                    smtp.login(r.username, self.secrets.get("password", ""))
                refused = smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            return Attempt(False, f"SMTP {exc.smtp_code}", scrub(_reply(exc.smtp_error)))
        except (smtplib.SMTPException, OSError) as exc:
            return Attempt(False, "SMTP error", scrub(f"{type(exc).__name__}: {exc}"))
        if refused:
            return Attempt(True, "SMTP 250 (some recipients refused)", scrub(json.dumps(
                {k: _reply(v[1]) for k, v in refused.items()}, ensure_ascii=False)))
        return Attempt(True, "SMTP 250", f"accepted for {', '.join(r.to)}")


def _reply(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


ALERTMANAGER_HOLD_S = 300.0
"""A firing alert posted to Alertmanager stays firing this long unless posted again (the notifier re-posts open
incidents every minute, as Prometheus does on every evaluation)."""


class AlertmanagerChannel(Channel):
    def send(self, items: Sequence[Item], group_key: str, digest: bool = False) -> Attempt:
        now = self.clock()
        alerts = [postable_alert(i, self.renderer, i["resolved_at"] if i["event"] == "resolved" else
                                 now + ALERTMANAGER_HOLD_S) for i in items]
        return self.post(alerts)

    def post(self, alerts: Sequence[Mapping[str, Any]]) -> Attempt:
        r = self.receiver
        url = r.url.rstrip("/") + "/api/v2/alerts"
        return _http(lambda: post_json(url, list(alerts), r.timeout, self._bearer(), r.ca_file), check_errcode=False)


CHANNELS: dict[str, type[Channel]] = {
    "webhook": WebhookChannel, "wecom": WecomChannel, "dingtalk": DingtalkChannel, "email": EmailChannel,
    "alertmanager": AlertmanagerChannel,
}


def channel_for(receiver: Receiver, secrets: Mapping[str, str], renderer: Renderer,
                clock: Callable[[], float] = time.time) -> Channel:
    return CHANNELS[receiver.type](receiver, secrets, renderer, clock)
