"""Nagios plugin output: the status text, long text and performance data, per the Nagios plugin API
(https://nagios-plugins.org/doc/guidelines.html#AEN200) as the Monitoring Plugins write it.

    TEXT | 'label'=value[UOM];[warn];[crit];[min];[max] ...
    LONG TEXT LINE 1
    LONG TEXT LINE 2 | more perfdata
    more perfdata

Values come out in base units: seconds (s, ms, us) and bytes (B, KB, MB, GB, TB, which plugins such as
check_disk mean as powers of 1024; KiB, MiB, GiB, TiB and kB as some plugins write them). Other UOMs are kept
as written (value unchanged, unit = the UOM).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

UOM_FACTORS: dict[str, tuple[float, str]] = {
    "": (1.0, ""),
    "s": (1.0, "seconds"),
    "ms": (1e-3, "seconds"),
    "us": (1e-6, "seconds"),
    "%": (1.0, "percent"),
    "B": (1.0, "bytes"),
    "KB": (1024.0, "bytes"),
    "MB": (1024.0**2, "bytes"),
    "GB": (1024.0**3, "bytes"),
    "TB": (1024.0**4, "bytes"),
    "kB": (1024.0, "bytes"),
    "KiB": (1024.0, "bytes"),
    "MiB": (1024.0**2, "bytes"),
    "GiB": (1024.0**3, "bytes"),
    "TiB": (1024.0**4, "bytes"),
    "c": (1.0, "counter"),
}
"""UOM -> (factor to the base unit, base unit name)."""

_VALUE = re.compile(r"^([-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?)([A-Za-z%]+)?$")
_PLAIN_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")


@dataclass(frozen=True)
class PerfDatum:
    """One performance data item; `value` is in base units (`unit`), `raw_value` and `uom` as the plugin wrote them."""

    label: str
    value: float | None
    """None when the plugin wrote "U" (undetermined)."""
    uom: str = ""
    unit: str = ""
    raw_value: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None


@dataclass
class PluginOutput:
    summary: str
    long_text: list[str] = field(default_factory=list)
    perfdata: list[PerfDatum] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Perfdata items that could not be parsed, each with the reason; the rest still count."""

    def metrics(self) -> dict[str, float]:
        return {p.label: p.value for p in self.perfdata if p.value is not None}


def parse_plugin_output(text: str) -> PluginOutput:
    """Split plugin stdout into the first line's text, the long text and all performance data."""
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return PluginOutput(summary="")
    first, _, perf = lines[0].partition("|")
    perf_parts = [perf]
    long_text: list[str] = []
    in_perf = False
    for line in lines[1:]:
        if in_perf:
            perf_parts.append(line)
            continue
        before, bar, after = line.partition("|")
        if bar:
            if before.strip():
                long_text.append(before.rstrip())
            perf_parts.append(after)
            in_perf = True
        else:
            long_text.append(line.rstrip())
    data, problems = parse_perfdata(" ".join(perf_parts))
    return PluginOutput(summary=first.strip(), long_text=long_text, perfdata=data, problems=problems)


def parse_perfdata(text: str) -> tuple[list[PerfDatum], list[str]]:
    """Parse space-separated perfdata items; bad items are reported in the second list, never raised."""
    out: list[PerfDatum] = []
    problems: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        label, i, problem = _label(text, i)
        if problem is not None:
            end = _token_end(text, i)
            problems.append(f"{text[start:end]!r}: {problem}")
            i = end
            continue
        end = _token_end(text, i)
        body = text[i:end]
        i = end
        try:
            out.append(_datum(label, body))
        except ValueError as exc:
            problems.append(f"{label}={body!r}: {exc}")
    return out, problems


def _token_end(text: str, i: int) -> int:
    while i < len(text) and not text[i].isspace():
        i += 1
    return i


def _label(text: str, i: int) -> tuple[str, int, str | None]:
    """Label at text[i:], quoted ('' inside quotes is one quote) or bare; returns (label, index after '=', problem)."""
    if text[i] == "'":
        j = i + 1
        chars: list[str] = []
        while j < len(text):
            if text[j] == "'":
                if j + 1 < len(text) and text[j + 1] == "'":
                    chars.append("'")
                    j += 2
                    continue
                break
            chars.append(text[j])
            j += 1
        else:
            return "", j, "unterminated quoted label"
        j += 1
        if j >= len(text) or text[j] != "=":
            return "", j, "expected = after the label"
        return "".join(chars), j + 1, None
    j = i
    while j < len(text) and text[j] != "=" and not text[j].isspace():
        j += 1
    if j >= len(text) or text[j] != "=":
        return "", j, "expected label=value"
    if j == i:
        return "", j, "empty label"
    return text[i:j], j + 1, None


def _datum(label: str, body: str) -> PerfDatum:
    fields = body.split(";")
    fields += [""] * (5 - len(fields))
    raw, warn, crit, lo, hi = (f.strip() for f in fields[:5])
    if raw == "U":
        return PerfDatum(label=label, value=None, raw_value=raw, warn=warn, crit=crit)
    m = _VALUE.match(raw)
    if not m:
        raise ValueError("expected a number with an optional unit (s, ms, us, %, B, KB, MB, GB, TB, c)")
    uom = (m.group(2) or "").strip()
    factor, unit = UOM_FACTORS.get(uom, (1.0, uom))
    value = float(m.group(1).replace(",", ".")) * factor
    return PerfDatum(
        label=label, value=value, uom=uom, unit=unit, raw_value=raw, warn=warn, crit=crit,
        min=_bound(lo, factor), max=_bound(hi, factor),
    )


def _bound(text: str, factor: float) -> float | None:
    if not text or not _PLAIN_NUMBER.match(text):
        return None
    return float(text) * factor
