"""collector.yaml: where to listen, where to store, the timing rules of agents, ingest and findings, the incident
rules (deadlines, reopening, flapping), the working-day calendar and notifications."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from checks.config_error import ConfigError
from checks.spec import Duration, PositiveDuration, Size
from checks.yamlsource import YamlSource, load_yaml, parse_yaml, validate
from collector.notify.config import NotificationsConfig

DEFAULT_GRPC = "127.0.0.1:9470"
DEFAULT_HTTP = "127.0.0.1:9471"
DEFAULT_ENROLL = "127.0.0.1:9472"
DEFAULT_DB_NAME = "collector.db"
LOOPBACK_HOSTS = ("127.", "localhost", "::1", "[::1]")


def is_loopback(address: str) -> bool:
    """Whether a listen address (host:port) is reachable from this machine only."""
    host = address.rpartition(":")[0]
    return host.startswith(LOOPBACK_HOSTS)


def _address(v: str) -> str:
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port such as 127.0.0.1:9470, got {v!r}")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Section):
    grpc: str = Field(DEFAULT_GRPC, description="host:port of the gRPC ingest (agents connect here).")
    http: str = Field(DEFAULT_HTTP, description="host:port of /metrics, /healthz, the JSON API and the console.")
    enroll: str = Field(DEFAULT_ENROLL, description="host:port where agents enroll with a token (TLS, no client "
                        "certificate yet); only with tls.mode mtls.")

    @field_validator("grpc", "http", "enroll")
    @classmethod
    def _host_port(cls, v: str) -> str:
        return _address(v)


class StoreConfig(_Section):
    url: str = Field("", description="sqlite:///abs/path.db, sqlite:relative.db or postgresql://...")
    history: Literal["off", "transitions", "all"] = Field("transitions", description="What history to keep.")
    history_retention: PositiveDuration = Field(7 * 86400.0, description="How long history rows are kept.")

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("sqlite:", "postgresql://", "postgres://")):
            raise ValueError(f"expected sqlite:///path/collector.db or postgresql://..., got {v!r}")
        return v


class AgentsConfig(_Section):
    lost_after: Duration = Field(90.0, description="An agent silent this long gets an 'agent lost' incident.")

    @field_validator("lost_after")
    @classmethod
    def _minimum(cls, v: float) -> float:
        if v < 1:
            raise ValueError(f"must be at least 1s, got {v:g}s")
        return v


class IngestConfig(_Section):
    max_batch_results: int = Field(1000, ge=1, le=100_000, description="Larger batches are refused.")
    max_message_bytes: Size = Field(4 * 1024 * 1024, description="Largest gRPC message accepted; larger ones are "
                                    "refused before they are parsed.")
    max_series_per_agent: int = Field(10_000, ge=1, description="Results of new series beyond this many per agent "
                                      "are left out (counted and logged).")
    max_summary_chars: int = Field(4096, ge=64, description="Longer summaries are cut.")
    max_seq_ahead: int = Field(10_000_000, ge=1000, description="A seq further ahead of the agent's last one is "
                               "refused (more than a full spool can hold).")
    hello_timeout: PositiveDuration = Field(10.0, description="A stream that has not said Hello by then is closed.")
    max_streams_per_agent: int = Field(4, ge=1, description="Streams one agent identity may have open at once.")

    @field_validator("max_message_bytes")
    @classmethod
    def _floor(cls, v: int) -> int:
        if v < 64 * 1024:
            raise ValueError(f"must be at least 64KiB, got {v} bytes")
        return v


class TlsConfig(_Section):
    mode: Literal["mtls", "insecure"] = Field("mtls", description="mtls: every agent shows a client certificate "
                                              "(enrolled, or from your PKI); insecure: plain text, anyone who reaches "
                                              "listen.grpc may pose as any agent (`xunjian up` on loopback only).")
    dir: str = Field("pki", description="The collector's CA and server certificate (`xunjian ca init`); relative "
                     "to collector.yaml.")
    server_names: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1"],
                                    description="DNS names and IP addresses agents use to reach this collector: the "
                                    "SANs of the server certificate the CA issues.")
    server_cert_ttl: PositiveDuration = Field(90 * 86400.0, description="Life of the server certificate; it is "
                                              "renewed at 2/3 of it and taken without a restart.")
    agent_cert_ttl: PositiveDuration = Field(7 * 86400.0, description="Life of an agent certificate; agents renew "
                                             "at about 2/3 of it.")
    enroll_token_ttl: PositiveDuration = Field(86400.0, description="How long an enrollment token may be used.")
    cert_file: str = Field("", description="Your own PKI: the server certificate chain (PEM) instead of the CA's.")
    key_file: str = Field("", description="Your own PKI: the server's private key (PEM, mode 0600).")
    client_ca_file: str = Field("", description="Your own PKI: the CA certificates agents' certificates chain to.")
    agent_id_from: Literal["uri_san", "dns_san", "common_name"] = Field(
        "uri_san", description="Where an agent certificate names the agent id: URI SAN xunjian://agent/ID (what "
        "enrollment issues), its first DNS SAN, or the subject CN.")

    @field_validator("server_names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one name is needed, e.g. [collector-a.hospital.local, 10.10.9.10]")
        return v

    @property
    def own_pki(self) -> bool:
        """Certificates come from the hospital's PKI, not from the collector's CA."""
        return bool(self.cert_file or self.key_file or self.client_ca_file)


class HttpConfig(_Section):
    auth: Literal["tokens", "none"] = Field("tokens", description="tokens: every API call and the console need a "
                                            "token or a session; none: everyone is admin (`xunjian up` on "
                                            "loopback only).")
    public: list[str] = Field(default_factory=lambda: ["/metrics", "/healthz"],
                              description="Paths readable without a token (Prometheus convention); [] to protect all.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Host header values answered (name or "
                                     "name:port); others get 421. Empty: localhost, 127.0.0.1, ::1 and the listen host.")
    tls_cert_file: str = Field("", description="Serve HTTPS with this certificate chain (PEM).")
    tls_key_file: str = Field("", description="The key of tls_cert_file (PEM, mode 0600).")
    session_ttl: PositiveDuration = Field(12 * 3600.0, description="Console sessions end this long after sign-in.")
    max_connections: int = Field(256, ge=1, description="Connections served at once; more wait in the backlog.")
    max_body_bytes: Size = Field(1024 * 1024, description="Larger request bodies are refused (413).")
    header_timeout: PositiveDuration = Field(10.0, description="A request whose headers have not arrived by then "
                                             "is closed.")
    body_timeout: PositiveDuration = Field(30.0, description="A request body not complete by then is refused.")


class FindingsConfig(_Section):
    fixed_after: PositiveDuration = Field(7 * 86400.0, description="A finding not seen again for this long is fixed.")


class PriorityDurations(_Section):
    high: Duration = Field(15 * 60.0, description="High priority.")
    medium: Duration = Field(15 * 60.0, description="Medium priority.")
    low: Duration = Field(15 * 60.0, description="Low priority.")


class PriorityDays(_Section):
    high: float = Field(1.0, gt=0, le=366, description="High priority: working days.")
    medium: float = Field(3.0, gt=0, le=366, description="Medium priority: working days.")
    low: float = Field(5.0, gt=0, le=366, description="Low priority: working days.")


class FlappingConfig(_Section):
    enabled: bool = Field(True, description="Detect flapping series (Icinga 2's weighted state-change percentage "
                          "over the last 20 results).")
    high: float = Field(30.0, gt=0, le=100, description="Start flapping above this percentage.")
    low: float = Field(25.0, gt=0, le=100, description="Stop flapping at or below this percentage.")

    @field_validator("low")
    @classmethod
    def _below_high(cls, v: float, info: Any) -> float:
        high = info.data.get("high")
        if high is not None and v > high:
            raise ValueError(f"low ({v:g}) must not be above high ({high:g})")
        return v


class IncidentsConfig(_Section):
    response: PriorityDurations = Field(default_factory=lambda: PriorityDurations.model_validate({}),
                                        description="Response deadline by priority, around the clock (the contracts: "
                                        "15 minutes, 7x24). Acknowledging is the response.")
    resolution_days: PriorityDays = Field(default_factory=lambda: PriorityDays.model_validate({}),
                                          description="Resolution deadline by priority in working days of the "
                                          "calendar (the contracts: 1/3/5).")
    reopen_within: Duration = Field(3600.0, description="A series that fails again this soon after its incident "
                                    "resolved reopens that incident instead of opening a new one (0: never).")
    flapping: FlappingConfig = Field(default_factory=lambda: FlappingConfig.model_validate({}))


class CalendarConfig(_Section):
    timezone: str = Field("Asia/Shanghai", description="Time zone of working days and recurring silences.")
    files: list[str] = Field(default_factory=list, description="Year tables of your own (same shape as the shipped "
                             "collector/calendars/cn-YYYY.yaml): add a year or replace a shipped one.")


class CollectorConfig(_Section):
    """The whole collector.yaml; `base_dir` anchors relative SQLite paths (the file's folder)."""

    listen: ListenConfig = Field(default_factory=lambda: ListenConfig.model_validate({}))
    store: StoreConfig = Field(default_factory=lambda: StoreConfig.model_validate({}))
    agents: AgentsConfig = Field(default_factory=lambda: AgentsConfig.model_validate({}))
    ingest: IngestConfig = Field(default_factory=lambda: IngestConfig.model_validate({}))
    findings: FindingsConfig = Field(default_factory=lambda: FindingsConfig.model_validate({}))
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig.model_validate({}))
    http: HttpConfig = Field(default_factory=lambda: HttpConfig.model_validate({}))
    incidents: IncidentsConfig = Field(default_factory=lambda: IncidentsConfig.model_validate({}))
    calendar: CalendarConfig = Field(default_factory=lambda: CalendarConfig.model_validate({}))
    notifications: NotificationsConfig = Field(default_factory=lambda: NotificationsConfig.model_validate({}))
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @property
    def base_dir(self) -> Path:
        """The folder of collector.yaml: relative SQLite paths and the default store live there."""
        return self._base_dir

    def at(self, base_dir: Path) -> CollectorConfig:
        self._base_dir = base_dir
        return self

    @classmethod
    def for_data_dir(cls, data_dir: Path, **sections: Any) -> CollectorConfig:
        """Defaults with the SQLite store in `data_dir` (what `xunjian up` uses)."""
        return cls.model_validate(sections).at(data_dir)

    def path(self, raw: str) -> Path:
        """A path from collector.yaml, relative ones anchored at its folder."""
        p = Path(raw).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def pki_dir(self) -> Path:
        return self.path(self.tls.dir)

    def calendar_files(self) -> list[Path]:
        return [self.path(f) for f in self.calendar.files]

    def console_url(self) -> str:
        """Where links in messages point: notifications.console_url, else the HTTP listener."""
        if self.notifications.console_url:
            return self.notifications.console_url.rstrip("/")
        host, _, port = self.listen.http.rpartition(":")
        if host in ("0.0.0.0", "::", "[::]", ""):
            import socket

            host = socket.gethostname()
        scheme = "https" if self.http.tls_cert_file else "http"
        return f"{scheme}://{host}:{port}"

    def sqlite_path(self) -> Path | None:
        """The SQLite file of the store, or None for another backend."""
        url = self.store.url
        if not url:
            return self.base_dir / DEFAULT_DB_NAME
        if not url.startswith("sqlite:"):
            return None
        rest = url[len("sqlite:"):]
        if rest.startswith("//"):
            return Path("/" + rest.lstrip("/"))
        return self.base_dir / rest


def load_config(path: Path) -> CollectorConfig:
    """Read and validate collector.yaml; raise ConfigError naming file, line and field."""
    return config_from_source(load_yaml(path), path.resolve().parent)


def store_config_of(path: Path) -> CollectorConfig:
    """collector.yaml's store section alone (where the running collector keeps its pid file), so that
    `xunjian collector reload` reaches the collector even when the rest of the new file has errors."""
    src = load_yaml(path)
    data = src.data if isinstance(src.data, dict) else {}
    store = data.get("store")
    store = store if isinstance(store, dict) else {}
    try:
        return CollectorConfig.model_validate({"store": {"url": store.get("url", "")}}).at(path.resolve().parent)
    except ValueError:
        raise src.error(("store", "url"), "expected sqlite:///path/collector.db") from None


def parse_config(text: str, file: str = "<string>", base_dir: Path | None = None) -> CollectorConfig:
    return config_from_source(parse_yaml(text, file), base_dir or Path.cwd())


def config_from_source(src: YamlSource, base_dir: Path) -> CollectorConfig:
    if not isinstance(src.data, dict):
        raise ConfigError("expected a mapping with listen, store, agents, ingest, findings, tls, http, incidents, "
                          "calendar, notifications", file=src.file, line=src.line_of(()))
    cfg = validate(CollectorConfig, src.data, src).at(base_dir)
    if bool(cfg.http.tls_cert_file) != bool(cfg.http.tls_key_file):
        raise src.error(("http", "tls_key_file" if cfg.http.tls_cert_file else "tls_cert_file"),
                        "tls_cert_file and tls_key_file go together")
    tls = cfg.tls
    if tls.own_pki and not (tls.cert_file and tls.key_file and tls.client_ca_file):
        raise src.error(("tls",), "your own PKI needs all three of cert_file, key_file and client_ca_file")
    if cfg.store.url.startswith(("postgresql://", "postgres://")):
        raise src.error(("store", "url"), "the PostgreSQL store is not available in this version; use sqlite:///path")
    return cfg
