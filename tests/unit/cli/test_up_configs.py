"""`xunjian up` writes loopback configs that relax authentication, and adds that to a collector.yaml of an older
version instead of leaving a collector that refuses to start without a CA."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_agent_config
from collector.config import load_config
from xunjian.up import write_configs


def test_fresh_configs_are_loopback_and_relaxed(tmp_path: Path) -> None:
    collector, agent = write_configs(tmp_path, "127.0.0.1:9470", "127.0.0.1:9471")
    cfg = load_config(collector)
    assert (cfg.tls.mode, cfg.http.auth) == ("insecure", "none")
    assert load_agent_config(agent).collector.tls.mode == "insecure"


def test_an_older_collector_yaml_gains_the_loopback_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "collector.yaml"
    old.write_text('listen: {grpc: "127.0.0.1:9470", http: "127.0.0.1:9471"}\n')
    write_configs(tmp_path, "127.0.0.1:9470", "127.0.0.1:9471")
    assert load_config(old).tls.mode == "insecure"
    assert "added the loopback settings" in capsys.readouterr().err
    write_configs(tmp_path, "127.0.0.1:9470", "127.0.0.1:9471")
    assert old.read_text().count("tls:") == 1
