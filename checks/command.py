"""command: run a Nagios / Monitoring Plugins compatible program and take its exit code and perfdata.

Only programs listed in agent.yaml `commands.allow` run; arguments are a list handed to exec (never a shell);
the environment is PATH=/usr/bin:/bin and LANG=C and nothing else, so no secret of the agent leaks into a
plugin and output is not localized; on timeout the whole process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, ClassVar, Literal

from pydantic import Field, field_validator

from checks.context import RunContext
from checks.perfdata import PluginOutput, parse_plugin_output
from checks.result import Outcome, Result, Status, unknown
from checks.spec import CheckSpec

SANITIZED_ENV: dict[str, str] = {"PATH": "/usr/bin:/bin", "LANG": "C"}
MAX_OUTPUT = 64 * 1024
"""Bytes of stdout parsed; a plugin writing more is cut (Nagios itself keeps far less)."""
SUMMARY_CHARS = 500

_CAUSES: list[tuple[re.Pattern[str], Outcome]] = [
    (re.compile(r"timed? ?out|timeout", re.IGNORECASE), Outcome.TIMEOUT),
    (re.compile(r"connection refused", re.IGNORECASE), Outcome.CONNECTION_REFUSED),
    (re.compile(r"name or service not known|could not resolve|invalid hostname|temporary failure in name resolution|"
                r"no address associated", re.IGNORECASE), Outcome.DNS_ERROR),
    (re.compile(r"ssl|tls|certificate", re.IGNORECASE), Outcome.TLS_ERROR),
    (re.compile(r"permission denied|access denied", re.IGNORECASE), Outcome.PERMISSION_DENIED),
    (re.compile(r"no such file|not found|does not exist", re.IGNORECASE), Outcome.NOT_FOUND),
]
"""How a plugin's own words name the failure, for the outcome of a non-OK result."""


def _absolute(path: str) -> bool:
    return os.path.isabs(path) or bool(re.match(r"^[A-Za-z]:[\\/]", path))


def outcome_from_text(text: str, status: Status) -> Outcome:
    """The outcome a plugin's message names; a WARNING/CRITICAL without one is a measurement (ok), an UNKNOWN
    without one a plugin that could not tell (protocol_error)."""
    if status is Status.OK:
        return Outcome.OK
    for pattern, outcome in _CAUSES:
        if pattern.search(text):
            return outcome
    return Outcome.PROTOCOL_ERROR if status is Status.UNKNOWN else Outcome.OK


class _CappedPipe:
    """Reads a pipe to its end in a thread and keeps the first `limit` bytes, so a plugin flooding its output
    neither fills the agent's memory nor blocks on a full pipe."""

    def __init__(self, stream: IO[bytes] | None, limit: int) -> None:
        self._data = bytearray()
        self._limit = limit
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        with stream:
            while True:
                try:
                    chunk = stream.read1(65536)  # type: ignore[attr-defined]
                except (OSError, ValueError):
                    return
                if not chunk:
                    return
                if len(self._data) < self._limit:
                    self._data += chunk[: self._limit - len(self._data)]

    def result(self, wait: float) -> bytes:
        self._thread.join(wait)
        return bytes(self._data)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if sys.platform == "win32":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False)
        proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


class Command(CheckSpec):
    kind: Literal["command"] = "command"
    kind_doc: ClassVar[str] = (
        "Runs a Nagios-compatible plugin (e.g. the Monitoring Plugins under /usr/lib/nagios/plugins) and maps "
        "its exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, anything else (or death by a signal) UNKNOWN. "
        "Only programs listed in agent.yaml `commands.allow` run (others are UNKNOWN permission_denied); `args` "
        "are passed as a list, never through a shell; the environment is only PATH=/usr/bin:/bin and LANG=C; "
        "after `timeout` the whole process group is killed (UNKNOWN timeout). The first line of output is the "
        "summary; performance data (`'label'=value[UOM];warn;crit;min;max`, also after a `|` on later lines) "
        "become the result's metrics in base units (s/ms/us to seconds, B/KB/MB/GB/TB to bytes), and the first "
        "item (or `value_label`) its value. warn/crit, if set, apply to that value too and the worse status wins."
    )
    example: ClassVar[str] = (
        "id: plugin.disk.root\nkind: command\ncommand: /usr/lib/nagios/plugins/check_disk\n"
        'args: ["-w", "20%", "-c", "10%", "-p", "/"]\n'
    )
    command: str = Field(description="Absolute path of the program; must be listed in agent.yaml commands.allow.")
    args: list[str] = Field(default_factory=list, description="Arguments, one list item each (no shell quoting).")
    value_label: str | None = Field(None, description="Perfdata label whose value becomes the result's value; default the first.")

    @field_validator("command")
    @classmethod
    def _absolute_path(cls, v: str) -> str:
        if not _absolute(v):
            raise ValueError(f"expected an absolute path such as /usr/lib/nagios/plugins/check_disk, got {v!r}")
        return v

    @field_validator("args", mode="before")
    @classmethod
    def _args_are_strings(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [str(a) if isinstance(a, (int, float)) and not isinstance(a, bool) else a for a in v]
        return v

    def probe(self, ctx: RunContext) -> list[Result]:
        target = self.target or ""
        if self.command not in ctx.command_allow:
            return [unknown(self.id, Outcome.PERMISSION_DENIED,
                            f"{self.command} is not in commands.allow of agent.yaml", target=target)]
        timeout = min(self.timeout, ctx.remaining(self.timeout))
        try:
            proc = subprocess.Popen(
                [self.command, *self.args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._environment(),
                close_fds=True,
                start_new_session=sys.platform != "win32",
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            )
        except FileNotFoundError:
            return [unknown(self.id, Outcome.NOT_FOUND, f"{self.command} does not exist", target=target)]
        except PermissionError:
            return [unknown(self.id, Outcome.PERMISSION_DENIED, f"{self.command} is not executable", target=target)]
        except OSError as exc:
            return [unknown(self.id, Outcome.INTERNAL_ERROR, f"cannot run {self.command}: {exc}", target=target)]
        started = time.monotonic()
        stdout, stderr = _CappedPipe(proc.stdout, MAX_OUTPUT), _CappedPipe(proc.stderr, MAX_OUTPUT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
            return [unknown(self.id, Outcome.TIMEOUT, f"{self.program} killed after {timeout:g}s timeout", target=target)]
        # A child the plugin left in the background may hold the pipes open: take what arrived by the deadline.
        left = max(0.1, timeout - (time.monotonic() - started))
        return [self._result(proc.returncode, stdout.result(left), stderr.result(0.1))]

    @property
    def program(self) -> str:
        return os.path.basename(self.command)

    @staticmethod
    def _environment() -> dict[str, str]:
        if sys.platform == "win32":
            root = os.environ.get("SYSTEMROOT", "C:\\Windows")
            return {"PATH": f"{root}\\system32;{root}", "SYSTEMROOT": root, "LANG": "C"}
        return dict(SANITIZED_ENV)

    def _result(self, code: int, stdout: bytes, stderr: bytes) -> Result:
        target = self.target or ""
        text = stdout[:MAX_OUTPUT].decode("utf-8", errors="replace")
        out = parse_plugin_output(text)
        err = stderr.decode("utf-8", errors="replace").strip()
        summary = out.summary or (err.splitlines()[0] if err else "(no output)")
        if len(summary) > SUMMARY_CHARS:
            summary = summary[: SUMMARY_CHARS - 1] + "…"
        if code < 0 or code > 3:
            why = f"killed by signal {-code}" if code < 0 else f"exit code {code} is not a plugin status (0-3)"
            return unknown(self.id, Outcome.PROTOCOL_ERROR, f"{self.program}: {why}: {summary}", target=target)
        status = Status(code)
        value, unit, note = self._value(out)
        if value is not None and (self.warn is not None or self.crit is not None):
            status = max(status, self.status_for(value))
        if note:
            summary = f"{summary} ({note})"
        return Result(
            check_id=self.id,
            status=status,
            summary=summary,
            target=target,
            value=value,
            unit=unit,
            outcome=outcome_from_text(f"{out.summary}\n{err}", status),
            metrics=out.metrics(),
        )

    def _value(self, out: PluginOutput) -> tuple[float | None, str, str]:
        """(value, unit, note about a missing label) from the perfdata."""
        if self.value_label is None:
            first = next((p for p in out.perfdata if p.value is not None), None)
            return (first.value, first.unit, "") if first else (None, "", "")
        for p in out.perfdata:
            if p.label == self.value_label:
                return p.value, p.unit, "" if p.value is not None else f"perfdata {self.value_label} is undetermined"
        return None, "", f"no perfdata labelled {self.value_label!r}"


SPECS: dict[str, type[CheckSpec]] = {"command": Command}
