"""The shipped systemd units, checked by systemd itself (`systemd-analyze verify` and `security --offline`), and
the Prometheus scrape configuration in docs/deploy.md, checked by promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, require

pytestmark = pytest.mark.integration

UNITS = ["xunjian-agent.service", "xunjian-collector.service", "xunjian-backup.service"]
MOST_EXPOSED = 2.5
"""`systemd-analyze security` scores 0 (confined) to 10 (unconfined); the units score 0.8 to 1.8 on systemd 252."""


def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    require(tool is not None, "systemd-analyze (Debian package systemd)")
    assert tool is not None
    return tool


def installed_copy(name: str, where: Path) -> Path:
    """The unit with its programs pointed at ones that exist here (verify insists the executable is there)."""
    text = (ROOT / "deploy" / "systemd" / name).read_text()
    bindir = Path(sys.executable).parent
    text = text.replace("/opt/xunjian/bin/xunjian", str(bindir / "xunjian"))
    text = text.replace("/opt/xunjian/bin/python", sys.executable)
    out = where / name
    out.write_text(text)
    return out


@pytest.mark.parametrize("name", [*UNITS, "xunjian-backup.timer"])
def test_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    tool = systemd_analyze()
    if name.endswith(".timer"):
        installed_copy("xunjian-backup.service", tmp_path)
    unit = installed_copy(name, tmp_path)
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stdout + done.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_confined(name: str, tmp_path: Path) -> None:
    tool = systemd_analyze()
    unit = installed_copy(name, tmp_path)
    done = subprocess.run([tool, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MOST_EXPOSED, done.stdout


def test_prometheus_scrape_config_in_the_docs_is_valid(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "deploy.md").read_text(), re.S)
    scrape = [b for b in blocks if "scrape_configs:" in b]
    assert len(scrape) == 1, "docs/deploy.md should hold one prometheus.yml block"
    (tmp_path / "prometheus.yml").write_text(scrape[0])
    done = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
