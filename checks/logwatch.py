"""host.log: lines matching a pattern written to a log file since the previous run, across log rotation.

The position (device, inode, offset and a hash of the file's first bytes) is kept between runs, so
- the first run starts at the end: old errors are history, not news;
- rename + create rotation (logrotate's default, log4j/logback rolling) is noticed by the inode changing: the
  rest of the renamed file is read (found by its inode next to the log), then the new file from its start;
- copytruncate rotation is noticed by the file being shorter than the offset, or its first bytes differing
  (truncated and already written past the old offset): the rest of the copy (found by its first bytes) is
  read, then the file from its start;
- no line is read twice, and a line still being written (no newline yet) waits for the next run.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from checks.context import RunContext
from checks.probe_state import ProbeState
from checks.result import Outcome, Result, unknown
from checks.spec import CheckSpec, Regex, Size, ThresholdField
from checks.thresholds import parse_threshold

DEFAULT_REDACT: tuple[str, ...] = (
    r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])",
    r"(?<!\d)1[3-9]\d{9}(?!\d)",
)
"""18-digit resident ID card numbers (居民身份证号) and mainland mobile numbers."""
HEAD_BYTES = 256
"""How much of the file's start identifies it, to tell a copytruncate from a file that only grew."""


def _head_hash(path: Path, length: int) -> str:
    with path.open("rb") as f:
        return hashlib.sha1(f.read(length)).hexdigest()


def _siblings(path: Path) -> list[Path]:
    """Regular files next to the log named after it (his-app.log.1, his-app-20261121.log), not compressed ones."""
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    out = []
    for entry in entries:
        if entry.name == path.name or not entry.name.startswith(path.stem) or entry.name.endswith(_COMPRESSED):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                out.append(Path(entry.path))
        except OSError:
            continue
    return out


_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".7z")


@dataclass
class _Scan:
    matches: int = 0
    lines: int = 0
    bytes: int = 0
    samples: list[str] = field(default_factory=list)


class HostLog(CheckSpec):
    kind: Literal["host.log"] = "host.log"
    value_unit: ClassVar[str | None] = "lines"
    kind_doc: ClassVar[str] = (
        "New lines of a log file that match `include` (any of the regular expressions) and none of `exclude`, "
        "since the previous run. The value is the number of matching lines; the summary quotes the first few, "
        "with ID card and mobile numbers (and whatever `redact` lists) replaced by ***. "
        "The first run starts at the end of the file. Rotation by rename+create and by copytruncate is followed "
        "and no line is counted twice. The position is kept in the agent's state directory (in memory without "
        "one). A missing file is UNKNOWN (not_found). warn defaults to \"> 0\": any matching line is a warning. "
        "Metrics: matches, lines_read, bytes_read, rotated (1 when the file was rotated since the last run)."
    )
    example: ClassVar[str] = (
        "id: his.app.errors\nkind: host.log\npath: /opt/his/logs/his-app.log\n"
        "include: ['\\bERROR\\b', 'OutOfMemoryError']\nexclude: ['HeartbeatTimeout']\n"
        'crit: "> 20"\n'
    )
    warn: ThresholdField | None = Field(
        default_factory=lambda: parse_threshold("> 0"), description='WARNING when the number of matching lines matches; default "> 0".')
    path: str = Field(description="The log file (not a glob): the file the application writes now.")
    include: list[Regex] = Field(description="Regular expressions; a line matching any of them counts.")
    exclude: list[Regex] = Field(default_factory=list, description="Regular expressions; a line matching any of them does not count.")
    ignore_case: bool = Field(False, description="Match without regard to case.")
    encoding: str = Field("utf-8", description="Text encoding of the file, e.g. utf-8, gbk, gb18030.")
    sample_lines: int = Field(3, ge=0, le=20, description="How many matching lines the summary quotes; 0 keeps log text on the host.")
    redact: list[Regex] = Field(
        default_factory=lambda: list(DEFAULT_REDACT),
        description="Regular expressions whose matches are replaced by *** in quoted lines; by default resident ID "
        "card numbers and mobile phone numbers, so patient identifiers in a log do not leave the host.")
    sample_chars: int = Field(200, ge=20, le=2000, description="Each quoted line is cut to this many characters.")
    max_bytes: Size = Field(16 * 1024 * 1024, description="Read at most this much per run; the rest waits for the next run.")

    @field_validator("include")
    @classmethod
    def _some_include(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one regular expression that marks a line worth counting")
        return v

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown text encoding {v!r} (expected e.g. utf-8, gbk, gb18030)") from None
        return v

    def probe(self, ctx: RunContext) -> list[Result]:
        path = Path(self.path)
        target = self.target or ""
        state = ProbeState(ctx, "logwatch", f"{self.id}@{target}" if target else self.id)
        try:
            st = path.stat()
        except FileNotFoundError:
            return [unknown(self.id, Outcome.NOT_FOUND, f"{path} does not exist", target=target, key=self.path)]
        except PermissionError:
            return [self._denied(path, target)]
        last = state.load()
        if last.get("path") != self.path or "offset" not in last:
            try:
                state.save(self._position(path, st, st.st_size))
            except PermissionError:
                return [self._denied(path, target)]
            return [self.measured(0.0, unit="lines", key=self.path, summary=f"watching {path} from byte {st.st_size}",
                                  metrics={"matches": 0.0, "lines_read": 0.0, "bytes_read": 0.0, "rotated": 0.0})]
        scan = _Scan()
        include = [re.compile(p, re.IGNORECASE if self.ignore_case else 0) for p in self.include]
        exclude = [re.compile(p, re.IGNORECASE if self.ignore_case else 0) for p in self.exclude]
        rotated = (last.get("dev"), last.get("inode")) != (st.st_dev, st.st_ino)
        start = int(last["offset"])
        try:
            if rotated:
                old = self._rotated_file(path, last)
                if old is not None:
                    self._read(old, start, scan, include, exclude, complete_only=False)
                start = 0
            elif st.st_size < start or self._head_changed(path, last):
                rotated = True
                copy = self._copied_file(path, last)
                if copy is not None:
                    self._read(copy, start, scan, include, exclude, complete_only=False)
                start = 0
            offset = self._read(path, start, scan, include, exclude, complete_only=True)
        except PermissionError:
            return [self._denied(path, target)]
        except OSError as exc:
            return [unknown(self.id, Outcome.INTERNAL_ERROR, f"{path}: {exc}", target=target, key=self.path)]
        state.save(self._position(path, path.stat(), offset))
        summary = f"{scan.matches} matching line{'s' if scan.matches != 1 else ''} in {scan.lines} new"
        if rotated:
            summary += " (log rotated)"
        if scan.samples:
            summary += ": " + " | ".join(scan.samples)
        metrics = {"matches": float(scan.matches), "lines_read": float(scan.lines), "bytes_read": float(scan.bytes),
                   "rotated": 1.0 if rotated else 0.0}
        return [self.measured(float(scan.matches), unit="lines", key=self.path, summary=summary, metrics=metrics)]

    def _denied(self, path: Path, target: str) -> Result:
        """The agent's user may not read the log: an operator fix (group or ACL), never an internal error."""
        return unknown(self.id, Outcome.PERMISSION_DENIED,
                       f"{path}: permission denied (the agent's user needs read access; see docs/deploy.md)",
                       target=target, key=self.path)

    def _position(self, path: Path, st: os.stat_result, offset: int) -> dict[str, Any]:
        head_len = min(offset, HEAD_BYTES)
        return {"path": self.path, "dev": st.st_dev, "inode": st.st_ino, "offset": offset, "head_len": head_len,
                "head": _head_hash(path, head_len)}

    @staticmethod
    def _head_changed(path: Path, last: dict[str, Any]) -> bool:
        head_len = int(last.get("head_len", 0))
        return bool(head_len) and _head_hash(path, head_len) != last.get("head")

    @staticmethod
    def _rotated_file(path: Path, last: dict[str, Any]) -> Path | None:
        """The renamed old log: same device and inode as last time, in the same directory, named after the log."""
        for entry in _siblings(path):
            try:
                st = entry.stat()
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (last.get("dev"), last.get("inode")):
                return entry
        return None

    @staticmethod
    def _copied_file(path: Path, last: dict[str, Any]) -> Path | None:
        """The copy copytruncate made: next to the log, starting with the bytes the log started with, at least as
        long as what was read; the newest such file. Lines written after the copy and before the truncation are
        lost by copytruncate itself."""
        head_len, offset = int(last.get("head_len", 0)), int(last["offset"])
        best: tuple[float, Path] | None = None
        for entry in _siblings(path):
            try:
                st = entry.stat()
                if st.st_size < offset or not head_len or _head_hash(entry, head_len) != last.get("head"):
                    continue
            except OSError:
                continue
            if best is None or st.st_mtime > best[0]:
                best = (st.st_mtime, entry)
        return best[1] if best else None

    def _read(self, path: Path, start: int, scan: _Scan, include: list[re.Pattern[str]],
              exclude: list[re.Pattern[str]], *, complete_only: bool) -> int:
        """Count matching lines from `start`; returns the offset after the last complete line read."""
        redact = [re.compile(p) for p in self.redact]
        budget = self.max_bytes - scan.bytes
        with path.open("rb") as f:
            f.seek(start)
            data = f.read(max(0, budget))
        if complete_only or len(data) == budget:
            end = data.rfind(b"\n") + 1
            data = data[:end]
        scan.bytes += len(data)
        for raw in data.splitlines():
            line = raw.decode(self.encoding, errors="replace").rstrip("\r")
            scan.lines += 1
            if any(p.search(line) for p in include) and not any(p.search(line) for p in exclude):
                scan.matches += 1
                if len(scan.samples) < self.sample_lines:
                    text = line.strip()
                    for pattern in redact:
                        text = pattern.sub("***", text)
                    scan.samples.append(text if len(text) <= self.sample_chars else text[: self.sample_chars - 1] + "…")
        return start + len(data)


SPECS: dict[str, type[CheckSpec]] = {"host.log": HostLog}
