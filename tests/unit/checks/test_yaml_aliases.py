"""The YAML loader refuses alias expansion beyond a small budget ("billion laughs"), with file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checks.config_error import ConfigError
from checks.yamlsource import MAX_ALIAS_NODES, parse_yaml

BOMB = "\n".join(
    [f'{"abcdefghi"[0]}: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi", strict=True)]) + "\n"
"""417 bytes that expand to 9^9 strings when every alias is copied."""


def test_billion_laughs_is_refused_with_file_and_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(BOMB, "bomb.yaml")
    assert info.value.file == "bomb.yaml" and info.value.line is not None
    assert f"more than {MAX_ALIAS_NODES} nodes" in str(info.value)


def test_ordinary_aliases_and_merge_keys_still_work() -> None:
    src = parse_yaml("defaults: &d {interval: 60s, priority: high}\n"
                     "checks:\n  - {id: a, <<: *d}\n  - {id: b, priority: low, <<: *d}\n"
                     "mounts: &m [/, /data]\nother: *m\n")
    assert src.data["checks"][0] == {"id": "a", "interval": "60s", "priority": "high"}
    assert src.data["checks"][1]["priority"] == "low"
    assert src.data["other"] == ["/", "/data"]


@pytest.mark.parametrize("command", [["check", "validate"], ["check", "run"]])
def test_the_cli_refuses_the_bomb_at_once(tmp_path: Path, command: list[str]) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)
    proc = subprocess.run([sys.executable, "-m", "xunjian", *command, str(bomb)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode in (2, 78)
    assert f"{bomb}:1:" in proc.stderr and "aliases" in proc.stderr


def test_agent_run_refuses_a_bomb_in_agent_yaml(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("collector: {addresses: ['127.0.0.1:1']}\n" + BOMB)
    proc = subprocess.run([sys.executable, "-m", "xunjian", "agent", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "aliases" in proc.stderr
