"""The commands.allow rule across a pack and agent.yaml, pointing at the check."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.config_error import ConfigError
from checks.pack import CheckSet, load_checks
from checks.validation import check_commands_allowed


def validate_packs(refs: list[str], *, base_dir: Path | None = None, command_allow: list[str] | None = None) -> CheckSet:
    checks = load_checks(list(refs), base_dir=base_dir)
    if command_allow is not None:
        check_commands_allowed(checks, command_allow)
    return checks


PACK = """\
pack: plugins
checks:
  - id: plugin.disk.root
    kind: command
    command: /usr/lib/nagios/plugins/check_disk
    args: ["-w", "20%", "-c", "10%", "-p", "/"]
  - id: plugin.load
    kind: command
    command: /usr/lib/nagios/plugins/check_load
    args: ["-r", "-w", "2,2,2", "-c", "4,4,4"]
    disabled: true
"""


def test_validate_packs_with_allow_list(tmp_path: Path) -> None:
    (tmp_path / "plugins.yaml").write_text(PACK)
    checks = validate_packs(["plugins.yaml", "builtin:host-linux"], base_dir=tmp_path,
                            command_allow=["/usr/lib/nagios/plugins/check_disk"])
    assert "plugin.disk.root" in {s.id for s in checks.specs}


def test_command_not_allowed_points_at_the_check(tmp_path: Path) -> None:
    (tmp_path / "plugins.yaml").write_text(PACK)
    with pytest.raises(ConfigError) as info:
        validate_packs(["plugins.yaml"], base_dir=tmp_path, command_allow=[])
    # the disabled check is not run, so it need not be allowed
    assert str(info.value) == (f"{tmp_path / 'plugins.yaml'}:3: command: check 'plugin.disk.root' runs "
                               "/usr/lib/nagios/plugins/check_disk, which is not in commands.allow of agent.yaml")


def test_without_allow_list_only_the_packs_are_checked(tmp_path: Path) -> None:
    (tmp_path / "plugins.yaml").write_text(PACK)
    assert len(validate_packs([str(tmp_path / "plugins.yaml")]).specs) == 2
