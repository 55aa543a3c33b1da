"""Previews of the dashboards drawn from real Prometheus answers (Grafana is not available where we build).

Each dashboard is drawn on Grafana's 24-column grid with its own panel types, units, thresholds and value
mappings, from the answers dashboards.queries got for its queries. Every image says in its footer that it
is a preview rendered from Prometheus query results, not a Grafana screenshot.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from dashboards.queries import Answer, Series, effective_steps, panels

LABEL = "Preview rendered from Prometheus query results, not Grafana"
COLORS = {"green": "#73BF69", "yellow": "#FADE2A", "red": "#F2495C", "orange": "#FF9830", "purple": "#B877D9",
          "blue": "#5794F2", "text": "#CCCCDC", "muted": "#8E8E9E", "panel": "#181B1F", "page": "#111217",
          "grid": "#2C3235"}
LINE_COLORS = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#705DA0", "#37872D",
               "#FADE2A"]
ROW_H = 0.34
"""Inches per Grafana grid row (30 px at 88 dpi)."""
WIDTH = 20.0
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")

Results = Mapping[str, tuple[Mapping[str, Any], Any, list[Answer]]]


def color(name: str | None) -> str:
    return COLORS.get(name or "", name or COLORS["blue"])


def legend(fmt: str, s: Series) -> str:
    if not fmt or fmt == "__auto":
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()) if k != "__name__")
        return f"{s.labels.get('__name__', '')}{{{inner}}}" if inner else s.labels.get("__name__", "value")
    return _LEGEND.sub(lambda m: s.labels.get(m.group(1), ""), fmt).strip() or "value"


def fmt_value(v: float, unit: str) -> str:
    if math.isnan(v):
        return "NaN"
    if unit == "percent":
        return f"{v:.1f}%"
    if unit == "percentunit":
        return f"{v * 100:.1f}%"
    if unit in ("s", "h", "d"):
        seconds = v * {"s": 1, "h": 3600, "d": 86400}[unit]
        for span, name in ((86400, "day"), (3600, "hour"), (60, "min")):
            if abs(seconds) >= span:
                return f"{seconds / span:.1f} {name}"
        if 0 < abs(seconds) < 1:
            return f"{seconds * 1000:.1f} ms" if abs(seconds) < 0.01 else f"{seconds * 1000:.0f} ms"
        return f"{seconds:.1f} s"
    if unit == "bytes":
        for step, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(v) >= step:
                return f"{v / step:.1f} {name}"
        return f"{v:.0f} B"
    suffix = "/s" if unit in ("ops", "cps", "reqps") else ""
    for size, name in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.1f}{name}{suffix}"
    return f"{v:.0f}{suffix}" if float(v).is_integer() else f"{v:.2f}{suffix}"


def threshold_color(steps: Sequence[tuple[float | None, str]], v: float) -> str:
    chosen = steps[0][1] if steps else "blue"
    for limit, name in steps:
        if limit is not None and v >= limit:
            chosen = name
    return color(chosen)


def mapped(panel: Mapping[str, Any], v: float) -> tuple[str, str] | None:
    for m in ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("mappings") or []:
        key = str(int(v)) if float(v).is_integer() else str(v)
        hit = (m.get("options") or {}).get(key)
        if hit:
            return str(hit.get("text", key)), color(hit.get("color"))
    return None


def _frame(ax: Axes, title: str) -> None:
    ax.set_facecolor(COLORS["panel"])
    for spine in ax.spines.values():
        spine.set_color(COLORS["grid"])
    ax.set_title(title, loc="left", color=COLORS["text"], fontsize=10, fontweight="bold", pad=4)


def _no_data(ax: Axes, text: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, text, ha="center", va="center", color=COLORS["muted"], fontsize=12, transform=ax.transAxes)


def _stat(ax: Axes, panel: Mapping[str, Any], answers: Sequence[Answer]) -> None:
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit", "none")
    tiles = [(a, s) for a in answers for s in a.series]
    ax.set_xticks([])
    ax.set_yticks([])
    if not tiles:
        no = defaults.get("noValue", "No data")
        ax.add_patch(Rectangle((0.01, 0.04), 0.98, 0.92, color=threshold_color(effective_steps(panel, "A"), 0),
                               transform=ax.transAxes))
        ax.text(0.5, 0.5, no, ha="center", va="center", color="#111", fontsize=16, fontweight="bold",
                transform=ax.transAxes)
        return
    n = len(tiles)
    cols = min(n, 6)
    rows = math.ceil(n / cols)
    for i, (a, s) in enumerate(tiles):
        r, c = divmod(i, cols)
        x, y, w, h = c / cols, 1 - (r + 1) / rows, 1 / cols, 1 / rows
        v = s.last
        text, bg = mapped(panel, v) or (fmt_value(v, unit), threshold_color(effective_steps(panel, a.query.ref), v))
        ax.add_patch(Rectangle((x + 0.005, y + 0.02), w - 0.01, h - 0.04, color=bg, transform=ax.transAxes))
        name = legend(a.query.legend, s)
        size = 22 if rows == 1 else 14
        if name and name != "value":
            ax.text(x + w / 2, y + h * 0.72, name, ha="center", va="center", color="#111", fontsize=size * 0.55,
                    transform=ax.transAxes)
            ax.text(x + w / 2, y + h * 0.36, text, ha="center", va="center", color="#111", fontsize=size,
                    fontweight="bold", transform=ax.transAxes)
        else:
            ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", color="#111", fontsize=size * 1.4,
                    fontweight="bold", transform=ax.transAxes)


def _bars(ax: Axes, panel: Mapping[str, Any], answers: Sequence[Answer]) -> None:
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit", "none")
    bars = [(legend(a.query.legend, s), s.last, threshold_color(effective_steps(panel, a.query.ref), s.last))
            for a in answers for s in a.series if s.finite()]
    if not bars:
        _no_data(ax, defaults.get("noValue", "No data"))
        return
    bars = bars[:12]
    names, values, colors = zip(*bars, strict=True)
    top = max(max(values), 1e-9)
    if unit == "percent":
        top = max(top, 100.0)
    ys = list(range(len(bars)))[::-1]
    ax.barh(ys, [top] * len(bars), color=COLORS["grid"], height=0.6)
    ax.barh(ys, values, color=colors, height=0.6)
    for y, name, v in zip(ys, names, values, strict=True):
        ax.text(0, y + 0.42, name, color=COLORS["text"], fontsize=8, va="bottom")
        ax.text(top, y, " " + fmt_value(v, unit), color=COLORS["text"], fontsize=9, va="center")
    ax.set_xlim(0, top * 1.25)
    ax.set_ylim(-0.6, len(bars))
    ax.set_xticks([])
    ax.set_yticks([])


def _graph(ax: Axes, panel: Mapping[str, Any], answers: Sequence[Answer]) -> None:
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit", "none")
    lines = [(legend(a.query.legend, s), s) for a in answers for s in a.series if s.finite()]
    if not lines:
        _no_data(ax, defaults.get("noValue", "No data"))
        return
    for i, (name, s) in enumerate(lines[:10]):
        ax.plot([t for t, _ in s.points], [v for _, v in s.points], color=LINE_COLORS[i % len(LINE_COLORS)], linewidth=1.6,
                label=name[:48])
    values = [v for _, s in lines for _, v in s.points if math.isfinite(v)]
    low, high = min(0.0, min(values)), max(values)
    high = high * 1.2 if high > 0 else 1.0
    ax.set_ylim(low, high)
    for a in answers:
        for limit, name in effective_steps(panel, a.query.ref)[1:]:
            if limit is not None and low <= limit <= high:
                ax.axhline(limit, color=color(name), linewidth=0.9, linestyle="--", alpha=0.8)
    ax.tick_params(colors=COLORS["muted"], labelsize=7)
    ax.tick_params(axis="y", direction="in", pad=-4)
    for label in ax.get_yticklabels():
        label.set_horizontalalignment("left")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda t, _: datetime.fromtimestamp(t).strftime("%H:%M:%S")))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_value(v, unit)))
    ax.grid(color=COLORS["grid"], linewidth=0.5)
    ax.legend(loc="upper left", fontsize=6.5, facecolor=COLORS["panel"], edgecolor=COLORS["grid"],
              labelcolor=COLORS["text"], ncol=2 if len(lines) > 4 else 1)


def _table(ax: Axes, panel: Mapping[str, Any], answers: Sequence[Answer]) -> None:
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit", "none")
    series = [s for a in answers for s in a.series]
    ax.set_xticks([])
    ax.set_yticks([])
    if not series:
        _no_data(ax, "No data")
        return
    hidden = {"__name__", "job", "instance", "site"}
    if len(series) > 1:  # like a reader would: leave out what every row shares
        hidden |= {k for k in series[0].labels if all(s.labels.get(k) == series[0].labels[k] for s in series)}
    columns = sorted({k for s in series for k in s.labels} - hidden,
                     key=lambda k: (k not in ("agent", "check", "target", "key"), k))[:7]
    rows = series[:14]
    height = 1 / (len(rows) + 1.5)
    width = 0.8 / max(len(columns), 1)
    for j, col in enumerate([*columns, "value"]):
        ax.text(0.01 + j * width, 1 - height * 0.8, col, color=COLORS["muted"], fontsize=8, fontweight="bold",
                transform=ax.transAxes, va="center")
    for i, s in enumerate(rows):
        y = 1 - height * (i + 1.8)
        for j, col in enumerate(columns):
            ax.text(0.01 + j * width, y, s.labels.get(col, "")[:24], color=COLORS["text"], fontsize=7.5,
                    transform=ax.transAxes, va="center")
        text, bg = mapped(panel, s.last) or (fmt_value(s.last, unit), None)
        x = 0.01 + len(columns) * width
        if bg:
            ax.add_patch(Rectangle((x - 0.005, y - height * 0.4), 0.15, height * 0.8, color=bg, transform=ax.transAxes))
        ax.text(x, y, text, color="#111" if bg else COLORS["text"], fontsize=7.5, fontweight="bold",
                transform=ax.transAxes, va="center")


def _text(ax: Axes, panel: Mapping[str, Any]) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    body = "\n".join(textwrap.wrap(str(panel.get("options", {}).get("content", "")), 95))
    ax.text(0.02, 0.9, body, color=COLORS["text"], fontsize=8.5, va="top", transform=ax.transAxes)


def render(dash: Mapping[str, Any], answers: Sequence[Answer], path: Path, subtitle: str = "") -> Path:
    """Draw one dashboard from its answers and write it as a PNG."""
    grid = [p for p in panels(dash)]
    height = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in grid), default=1)
    fig = plt.figure(figsize=(WIDTH, height * ROW_H + 1.0), facecolor=COLORS["page"])
    total_h = height * ROW_H + 1.0
    fig.text(0.01, 1 - 0.25 / total_h, f"{dash.get('title', '')}{'  ·  ' + subtitle if subtitle else ''}",
             color=COLORS["text"], fontsize=14, fontweight="bold", va="center")
    fig.text(0.99, 0.3 / total_h, LABEL, color=COLORS["orange"], fontsize=10, ha="right", va="center")
    by_panel: dict[str, list[Answer]] = {}
    for a in answers:
        by_panel.setdefault(a.query.panel, []).append(a)
    for p in grid:
        g = p["gridPos"]
        left, width = g["x"] / 24 + 0.004, g["w"] / 24 - 0.008
        top = 1 - (0.5 + g["y"] * ROW_H) / total_h
        h = g["h"] * ROW_H / total_h
        if p.get("type") == "row":
            fig.text(left, top - h / 2, p.get("title", ""), color=COLORS["text"], fontsize=11, fontweight="bold",
                     va="center")
            continue
        gap, title = 0.08 / total_h, 0.3 / total_h
        ax = fig.add_axes((left, top - h + gap, width, h - gap - title))
        _frame(ax, p.get("title", ""))
        kind = p.get("type")
        found = by_panel.get(p.get("title", ""), [])
        if kind == "stat":
            _stat(ax, p, found)
        elif kind == "bargauge":
            _bars(ax, p, found)
        elif kind == "timeseries":
            _graph(ax, p, found)
        elif kind == "table":
            _table(ax, p, found)
        elif kind == "text":
            _text(ax, p)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, facecolor=COLORS["page"])
    plt.close(fig)
    return path


def render_all(results: Results, out: Path) -> list[Path]:
    """One PNG per dashboard (and per database engine), named after the dashboard's uid."""
    written = []
    for key, (dash, _variables, answers) in results.items():
        name = key.replace("@", "-")
        subtitle = f"target of engine {key.split('@')[1]}" if "@" in key else ""
        written.append(render(dash, answers, out / f"{name}.png", subtitle))
    return written
