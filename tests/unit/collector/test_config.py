"""collector.yaml: defaults, the documented example, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.config_error import ConfigError
from collector.config import CollectorConfig, load_config, parse_config


def test_defaults_listen_on_loopback_and_store_next_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("", encoding="utf-8")
    cfg = load_config(path)
    assert (cfg.listen.grpc, cfg.listen.http) == ("127.0.0.1:9470", "127.0.0.1:9471")
    assert cfg.store.history == "transitions"
    assert cfg.store.history_retention == 7 * 86400
    assert cfg.agents.lost_after == 90
    assert cfg.ingest.max_batch_results == 1000
    assert cfg.findings.fixed_after == 7 * 86400
    assert cfg.sqlite_path() == tmp_path / "collector.db"


def test_design_example_loads() -> None:
    cfg = parse_config(
        'listen: {grpc: "0.0.0.0:9470", http: "127.0.0.1:9471"}\n'
        "store:\n"
        "  url: sqlite:///var/lib/xunjian/collector.db\n"
        "  history: transitions\n"
        "  history_retention: 7d\n"
        "agents: {lost_after: 90s}\n"
        "ingest: {max_batch_results: 500, max_message_bytes: 8MiB}\n"
        "findings: {fixed_after: 3d}\n")
    assert cfg.listen.grpc == "0.0.0.0:9470"
    assert cfg.sqlite_path() == Path("/var/lib/xunjian/collector.db")
    assert cfg.ingest.max_message_bytes == 8 * 1024 * 1024
    assert cfg.findings.fixed_after == 3 * 86400


def test_relative_sqlite_url_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    cfg = parse_config("store: {url: 'sqlite:data/c.db'}\n", base_dir=tmp_path)
    assert cfg.sqlite_path() == tmp_path / "data" / "c.db"


def test_for_data_dir_puts_the_store_there(tmp_path: Path) -> None:
    assert CollectorConfig.for_data_dir(tmp_path).sqlite_path() == tmp_path / "collector.db"


@pytest.mark.parametrize(("text", "message"), [
    ("listen: {grpc: x}\n", "collector.yaml:1: listen.grpc: expected host:port such as 127.0.0.1:9470, got 'x'"),
    ("listen:\n  grcp: 1.2.3.4:5\n", "collector.yaml:2: listen.grcp: unknown field (did you mean 'grpc'?)"),
    ("store:\n  history: some\n",
     "collector.yaml:2: store.history: Input should be 'off', 'transitions' or 'all', got 'some'"),
    ("store:\n  url: mysql://x\n",
     "collector.yaml:2: store.url: expected sqlite:///path/collector.db or postgresql://..., got 'mysql://x'"),
    ("store:\n  url: postgresql://u@db/x\n",
     "collector.yaml:2: store.url: the PostgreSQL store is not available in this version; use sqlite:///path"),
    ("agents:\n  lost_after: soon\n",
     "collector.yaml:2: agents.lost_after: expected a duration such as 30s, 5m or 1h, got 'soon'"),
    ("agents:\n  lost_after: 0s\n", "collector.yaml:2: agents.lost_after: must be at least 1s, got 0s"),
    ("ingest:\n  max_batch_results: 0\n",
     "collector.yaml:2: ingest.max_batch_results: Input should be greater than or equal to 1"),
    ("ingest:\n  max_message_bytes: 1KiB\n",
     "collector.yaml:2: ingest.max_message_bytes: must be at least 64KiB, got 1024 bytes"),
    ("findings: {fixed_after: -1}\n", "collector.yaml:1: findings.fixed_after: must be a positive duration such as 30s, got -1"),
    ("- a\n", "collector.yaml:1: expected a mapping with listen, store, agents, ingest, findings, tls, http, incidents, "
     "calendar, notifications"),
    ("bogus: 1\n", "collector.yaml:1: bogus: unknown field (expected one of: agents, calendar, findings, http, "
     "incidents, ingest, listen, notifications, store, tls)"),
])
def test_errors_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, "collector.yaml")
    assert str(err.value) == message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: file not found"
