"""Shared test plumbing: a missing service skips locally but fails under CI=true (docs/architecture.md, "Tests")."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(available: bool, what: str) -> None:
    """Skip when `what` is missing on a developer machine; fail in CI, where `make test` must have provided it."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required service missing in CI: {what}")
    pytest.skip(f"service not available: {what}")
