"""What a probe may use from the agent: targets, allowed commands, a state directory, a clock and a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunContext:
    agent_id: str = "local"
    targets: Mapping[str, Any] = field(default_factory=dict)
    """Target configs from agent.yaml by name (database connections and the like)."""
    command_allow: frozenset[str] = frozenset()
    """Absolute paths of programs the command kind may run."""
    state_dir: Path | None = None
    """Where probes keep small state between runs (log offsets); None means keep it in memory only."""
    clock: Callable[[], float] = time.time
    deadline: float | None = None
    """time.monotonic() value by which the probe should have given up; probes use it for socket timeouts."""
    resources: dict[str, Any] = field(default_factory=dict)
    """Long-lived objects shared across runs, e.g. open database connections keyed by target."""

    def remaining(self, default: float = 10.0) -> float:
        """Seconds left before the deadline (at least a millisecond), for socket and statement timeouts."""
        if self.deadline is None:
            return default
        return max(0.001, self.deadline - time.monotonic())
