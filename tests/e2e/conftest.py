from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.harness import Fleet


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path)
    try:
        yield f
    except BaseException:
        print(f.logs())
        raise
    finally:
        f.stop_all()


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make dist` once per test session (pip's cache keeps it quick): the wheel, the wheelhouse and the bundle."""
    out = tmp_path_factory.mktemp("dist")
    env = dict(os.environ, PYTHON=sys.executable, DIST_DIR=str(out))
    built = subprocess.run(["bash", "scripts/dist.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=900)
    assert built.returncode == 0, f"make dist failed:\n{built.stdout}\n{built.stderr[-4000:]}"
    return out


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On failure, attach the processes' logs to the report: e2e failures are unreadable without them."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and "fleet" in getattr(item, "funcargs", {}):
        report.sections.append(("fleet logs", item.funcargs["fleet"].logs()))
