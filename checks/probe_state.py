"""Small per-check state kept between runs (log offsets, last uptime, settings snapshots, plan baselines): a
JSON file in the agent's state directory, or the run context's memory when there is none. Losing it is
harmless; it only costs one run's memory."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from checks.context import RunContext

_LOCK = threading.Lock()
_MEMORY_KEY = "probe-state"
"""ctx.resources entry holding the states when there is no state directory (one agent's, or one test's)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


class ProbeState:
    """State of one check (`check_id`) for one probe family (`family`), e.g. ("logwatch", "his.app.errors")."""

    def __init__(self, ctx: RunContext, family: str, check_id: str) -> None:
        self.key = (family, check_id)
        self.memory: dict[tuple[str, str], dict[str, Any]] = ctx.resources.setdefault(_MEMORY_KEY, {})
        self.path: Path | None = None
        if ctx.state_dir is not None:
            self.path = Path(ctx.state_dir) / family / f"{_UNSAFE.sub('_', check_id)}.json"

    def load(self) -> dict[str, Any]:
        if self.path is None:
            with _LOCK:
                return dict(self.memory.get(self.key, {}))
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a state file."""
        if self.path is None:
            with _LOCK:
                self.memory[self.key] = dict(data)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)
