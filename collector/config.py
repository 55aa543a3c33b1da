"""collector.yaml: where to listen, where to store, and the timing rules of agents, ingest and findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from checks.config_error import ConfigError
from checks.spec import Duration, PositiveDuration, Size
from checks.yamlsource import YamlSource, load_yaml, parse_yaml, validate

DEFAULT_GRPC = "127.0.0.1:9470"
DEFAULT_HTTP = "127.0.0.1:9471"
DEFAULT_DB_NAME = "collector.db"


def _address(v: str) -> str:
    host, sep, port = v.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port such as 127.0.0.1:9470, got {v!r}")
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Section):
    grpc: str = Field(DEFAULT_GRPC, description="host:port of the gRPC ingest (agents connect here).")
    http: str = Field(DEFAULT_HTTP, description="host:port of /metrics, /healthz and the JSON API.")

    @field_validator("grpc", "http")
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
    max_message_bytes: Size = Field(16 * 1024 * 1024, description="Largest gRPC message accepted.")

    @field_validator("max_message_bytes")
    @classmethod
    def _floor(cls, v: int) -> int:
        if v < 64 * 1024:
            raise ValueError(f"must be at least 64KiB, got {v} bytes")
        return v


class FindingsConfig(_Section):
    fixed_after: PositiveDuration = Field(7 * 86400.0, description="A finding not seen again for this long is fixed.")


class CollectorConfig(_Section):
    """The whole collector.yaml; `base_dir` anchors relative SQLite paths (the file's folder)."""

    listen: ListenConfig = Field(default_factory=lambda: ListenConfig.model_validate({}))
    store: StoreConfig = Field(default_factory=lambda: StoreConfig.model_validate({}))
    agents: AgentsConfig = Field(default_factory=lambda: AgentsConfig.model_validate({}))
    ingest: IngestConfig = Field(default_factory=lambda: IngestConfig.model_validate({}))
    findings: FindingsConfig = Field(default_factory=lambda: FindingsConfig.model_validate({}))
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
        raise ConfigError("expected a mapping with listen, store, agents, ingest, findings", file=src.file, line=src.line_of(()))
    cfg = validate(CollectorConfig, src.data, src).at(base_dir)
    if cfg.store.url.startswith(("postgresql://", "postgres://")):
        raise src.error(("store", "url"), "the PostgreSQL store is not available in this version; use sqlite:///path")
    return cfg
