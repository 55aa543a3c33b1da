"""Run one interface check the way the agent would: a spec from YAML-shaped data, a context with a deadline."""

from __future__ import annotations

import time
from typing import Any

from checks.context import RunContext
from checks.kinds import spec_class
from checks.result import Result


def run_check(kind: str, **options: Any) -> Result:
    spec = spec_class(kind).model_validate({"id": f"test.{kind}", "kind": kind, **options})
    ctx = RunContext(deadline=time.monotonic() + spec.timeout)
    results = spec.probe(ctx)
    assert len(results) == 1
    return results[0]
