"""collector.yaml `notifications:`: receivers (where messages go), routes (which incidents go where, how they are
grouped and escalated), and the timing of the outbox.

Secrets (robot keys, access tokens, signing secrets, SMTP passwords, bearer tokens) are never written in the
file: each receiver names an environment variable (`*_env`) or a file (`*_file`) holding it, read at start and
at reload, registered for scrubbing and kept only in memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.config_error import ConfigError
from checks.spec import Duration, PositiveDuration
from checks.sql.secrets import register_secret

CHANNELS = ("webhook", "wecom", "dingtalk", "email", "alertmanager")
ROBOT_PER_MINUTE = 20
"""WeCom and DingTalk robots take 20 messages a minute; DingTalk blocks a robot for 10 minutes past that."""
WECOM_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
ROUTE_LABELS = ("system", "priority", "host", "agent", "check", "target", "key", "kind", "incident_kind")
"""Labels a route's `match` and `group_by` may name; a check's own labels (from its pack) may be matched too."""
_SECRETS = {
    "webhook": ("token",), "alertmanager": ("token",), "wecom": ("key",), "dingtalk": ("token", "secret"),
    "email": ("password",),
}
_REQUIRED_SECRET = {"wecom": "key", "dingtalk": "token"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Receiver(_Section):
    """One destination. Which fields apply depends on `type`; the others must stay unset."""

    name: str = Field(description="Unique name that routes refer to, e.g. his-oncall-wecom.")
    type: Literal["webhook", "wecom", "dingtalk", "email", "alertmanager"] = Field(
        description="webhook (JSON POST), wecom (WeCom group robot), dingtalk (DingTalk robot), email (SMTP), "
        "alertmanager (an existing Alertmanager's v2 API).")
    url: str = Field("", description="webhook: where to POST (required). alertmanager: its base URL such as "
                     "http://alertmanager:9093 (required). wecom/dingtalk: the robot endpoint (defaults to the "
                     "public one; set it for an intranet proxy).")
    format: Literal["xunjian", "alertmanager"] = Field(
        "xunjian", description="webhook only: xunjian (our JSON) or alertmanager (Alertmanager's webhook v4 shape, "
        "for receivers written for it).")
    key_env: str = Field("", description="wecom: environment variable holding the robot key.")
    key_file: str = Field("", description="wecom: file holding the robot key.")
    token_env: str = Field("", description="dingtalk: variable holding the access_token; webhook/alertmanager: a "
                           "bearer token (optional).")
    token_file: str = Field("", description="The same, from a file.")
    secret_env: str = Field("", description="dingtalk: variable holding the signing secret (SEC...), when the "
                            "robot's security setting is 'sign' (加签).")
    secret_file: str = Field("", description="dingtalk: the signing secret from a file.")
    keywords: list[str] = Field(default_factory=list, description="dingtalk: the robot's custom keywords (自定义关键词); "
                                "every message carries the first one unless it already contains one.")
    msgtype: Literal["markdown", "text"] = Field("markdown", description="wecom/dingtalk: message type.")
    mention_mobiles: list[str] = Field(default_factory=list, description="wecom (text only) / dingtalk: mobile "
                                       "numbers to @ in every message.")
    mention_all: bool = Field(False, description="wecom/dingtalk: @all.")
    host: str = Field("", description="email: SMTP server (required).")
    port: int = Field(0, ge=0, le=65535, description="email: SMTP port (default 587 with starttls, 465 with tls, "
                      "else 25).")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="email: starttls (upgrade a plain connection), tls (implicit TLS, port 465) or none.")
    username: str = Field("", description="email: SMTP login name (none: no login).")
    password_env: str = Field("", description="email: variable holding the SMTP password.")
    password_file: str = Field("", description="email: file holding the SMTP password.")
    sender: str = Field("", alias="from", description="email: the From address (required).")
    to: list[str] = Field(default_factory=list, description="email: recipients (required).")
    ca_file: str = Field("", description="CA certificates (PEM) to verify the server's TLS certificate with, e.g. the "
                         "hospital's own CA (default: the system's).")
    timeout: PositiveDuration = Field(10.0, description="Give up one attempt after this long.")
    max_per_minute: int = Field(-1, ge=-1, description="Messages a minute at most (20 for wecom and dingtalk, "
                                "unlimited for the others unless set); under a burst the rest are grouped into one.")
    send_resolved: bool = Field(True, description="Also send a message when an incident resolves.")
    language: Literal["zh", "en", ""] = Field("", description="Message language of this receiver (default: "
                                              "notifications.language).")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v):
            raise ValueError(f"must be a non-empty name without spaces, got {v!r}")
        return v

    @model_validator(mode="after")
    def _fits_type(self) -> Receiver:
        t = self.type
        if t in ("webhook", "alertmanager") and not self.url:
            raise ValueError(f"a {t} receiver needs url")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        if t == "email":
            missing = [n for n, v in (("host", self.host), ("from", self.sender), ("to", self.to)) if not v]
            if missing:
                raise ValueError(f"an email receiver needs {', '.join(missing)}")
            if self.username and not (self.password_env or self.password_file):
                raise ValueError("username is set: give password_env or password_file too")
        for secret in ("key", "token", "secret", "password"):
            env, file = getattr(self, f"{secret}_env"), getattr(self, f"{secret}_file")
            if env and file:
                raise ValueError(f"give {secret}_env or {secret}_file, not both")
            if (env or file) and secret not in _SECRETS[t]:
                raise ValueError(f"{secret}_env/{secret}_file do not apply to a {t} receiver")
        required = _REQUIRED_SECRET.get(t)
        if required and not (getattr(self, f"{required}_env") or getattr(self, f"{required}_file")):
            raise ValueError(f"a {t} receiver needs {required}_env or {required}_file")
        if self.format != "xunjian" and t != "webhook":
            raise ValueError("format applies to webhook receivers only")
        if self.keywords and t != "dingtalk":
            raise ValueError("keywords apply to dingtalk receivers only")
        if (self.mention_mobiles or self.mention_all) and t not in ("wecom", "dingtalk"):
            raise ValueError("mention_mobiles/mention_all apply to wecom and dingtalk receivers only")
        if t == "wecom" and self.mention_mobiles and self.msgtype == "markdown":
            raise ValueError("WeCom markdown messages cannot @ mobile numbers: set msgtype: text to use "
                             "mention_mobiles")
        return self

    @property
    def per_minute(self) -> int:
        """The rate limit in force (0 = none)."""
        if self.max_per_minute >= 0:
            return self.max_per_minute
        return ROBOT_PER_MINUTE if self.type in ("wecom", "dingtalk") else 0

    def endpoint(self) -> str:
        if self.url:
            return self.url
        return WECOM_URL if self.type == "wecom" else DINGTALK_URL if self.type == "dingtalk" else ""


class Escalation(_Section):
    after: Duration = Field(0.0, description="How long after the response deadline (level 1) or the previous "
                            "level this level is notified, while nobody has acknowledged.")
    receivers: list[str] = Field(description="Receivers of this level (the on-call lead, the IT manager...).")


class Route(_Section):
    match: dict[str, str] = Field(default_factory=dict, description="Label globs the incident must match: system, "
                                  "priority, host, agent, check, target, key, kind, incident_kind, or a check label. "
                                  "Empty matches everything.")
    receivers: list[str] = Field(description="Receivers notified when an incident opens, repeats and resolves.")
    group_by: list[str] = Field(default_factory=lambda: ["agent", "target"], description="Incidents with the same "
                                "values of these labels that are due together go out as one message (a database "
                                "that fails makes one message, not forty).")
    escalate: list[Escalation] = Field(default_factory=list, description="Levels notified while an incident stays "
                                       "unacknowledged past its response deadline.")
    repeat_interval: Duration = Field(0.0, description="Send an unacknowledged open incident again this often "
                                      "(0: never).")
    continue_: bool = Field(False, alias="continue", description="Also try the routes after this one.")

    @field_validator("match")
    @classmethod
    def _match(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            if not pattern:
                raise ValueError(f"match.{name}: empty pattern (use '*' for any value)")
        return v

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, v: list[str]) -> list[str]:
        for name in v:
            if name not in ROUTE_LABELS:
                raise ValueError(f"group_by: unknown label {name!r}; expected some of {', '.join(ROUTE_LABELS)}")
        return v


class RetryConfig(_Section):
    initial: PositiveDuration = Field(5.0, description="Wait before the first retry of a failed message.")
    max: PositiveDuration = Field(300.0, description="Longest wait between retries (the wait doubles up to it).")
    give_up_after: PositiveDuration = Field(86400.0, description="A message still failing this long after it was "
                                            "due is marked failed (and logged as an error).")


class NotificationsConfig(_Section):
    language: Literal["zh", "en"] = Field("zh", description="Message language: zh (Chinese) or en.")
    console_url: str = Field("", description="Base URL of the console for links in messages, e.g. "
                             "https://xunjian.hospital.local (default: listen.http, https when http.tls_cert_file).")
    group_wait: Duration = Field(30.0, description="Hold a new incident's message this long, so incidents that "
                                 "fail together go out together and those explained by a failing parent, silenced "
                                 "meanwhile or recovered at once are not sent.")
    retry: RetryConfig = Field(default_factory=lambda: RetryConfig.model_validate({}))
    receivers: list[Receiver] = Field(default_factory=list, description="Where messages go (names are used by "
                                      "routes).")
    routes: list[Route] = Field(default_factory=list, description="Tried in order; the first match wins unless it "
                                "says continue. No route: nothing is sent (incidents are still recorded).")

    @model_validator(mode="after")
    def _references(self) -> NotificationsConfig:
        names = [r.name for r in self.receivers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"receiver names must be unique: {', '.join(dupes)}")
        known = set(names)
        for i, route in enumerate(self.routes):
            used = [*route.receivers, *(n for level in route.escalate for n in level.receivers)]
            unknown = [n for n in used if n not in known]
            if unknown:
                raise ValueError(f"routes[{i}] names unknown receivers: {', '.join(unknown)} (known: "
                                 f"{', '.join(names) or 'none'})")
        if self.console_url and not self.console_url.startswith(("http://", "https://")):
            raise ValueError(f"console_url must start with http:// or https://, got {self.console_url!r}")
        return self


def read_secret(receiver: Receiver, secret: str, base_dir: Path, index: int) -> str:
    """The value of `secret` (key, token, secret, password) of `receiver` from its env variable or file, registered
    for scrubbing; empty when neither is set. Raises ConfigError naming the field."""
    env, file = getattr(receiver, f"{secret}_env"), getattr(receiver, f"{secret}_file")
    where = f"notifications.receivers[{index}]"
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise ConfigError(f"environment variable {env} is not set (receiver {receiver.name})",
                              field=f"{where}.{secret}_env")
    elif file:
        path = Path(file) if Path(file).is_absolute() else base_dir / file
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc} (receiver {receiver.name})",
                              field=f"{where}.{secret}_file") from None
        if not value:
            raise ConfigError(f"{path} is empty (receiver {receiver.name})", field=f"{where}.{secret}_file")
    else:
        return ""
    register_secret(value)
    return value


def receiver_secrets(config: NotificationsConfig, base_dir: Path) -> dict[str, dict[str, str]]:
    """Every receiver's secrets by receiver name (read now; call again on reload)."""
    return {r.name: {s: read_secret(r, s, base_dir, i) for s in _SECRETS[r.type]}
            for i, r in enumerate(config.receivers)}
