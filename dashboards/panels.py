"""Our conventions over grafana-foundation-sdk: one data source variable, units and descriptions on every panel,
status codes shown by name and colour, and a check's thresholds taken from its pack.

Every builder here returns an SDK builder, so the dashboard modules read as a layout and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, stat, table, text, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat
from grafana_foundation_sdk.models.text import TextMode

from dashboards import packs
from dashboards.packs import BLUE, GREEN, PURPLE, RED, YELLOW, Step
from dashboards.promql import RANK_NAMES, STATUS_NAMES, check_value
from dashboards.signals import HOST_UNITS, Signal

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
"""Every panel and query reads the dashboard's `datasource` variable, never a data source by name."""
CONSOLE = "${console}/console"
UIDS = {"wall": "xunjian-wall", "fleet": "xunjian-fleet", "database": "xunjian-database",
        "collector": "xunjian-collector"}
STATUS_COLORS = {"OK": GREEN, "WARNING": YELLOW, "CRITICAL": RED, "UNKNOWN": PURPLE}
TAG = "xunjian"

Panel = TypeVar("Panel", stat.Panel, timeseries.Panel, bargauge.Panel, table.Panel)


# --- dashboard and variables -------------------------------------------------------------------------------
def dashboard(key: str, title: str, description: str, *, refresh: str = "30s", time_from: str = "now-6h") -> db.Dashboard:
    """A dashboard with our uid, tag, time settings, and links to its siblings and the collector console."""
    return (
        db.Dashboard(title).uid(UIDS[key]).description(description).tags([TAG]).refresh(refresh)
        .time(time_from, "now").timezone("browser").readonly().tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(db.DashboardLink("Xunjian").type(dm.DashboardLinkType.DASHBOARDS).tags([TAG]).as_dropdown(True)
              .include_vars(True).keep_time(True))
        .link(db.DashboardLink("Console").type(dm.DashboardLinkType.LINK).url(CONSOLE).target_blank(True)
              .icon("external link").tooltip("The collector's console: incidents, findings, agents"))
        .with_variable(db.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )


def query_variable(name: str, label: str, query: str, *, multi: bool = True, all_value: str | None = ".*"
                   ) -> db.QueryVariable:
    """A label_values() variable, refreshed when the time range changes. "All" is `.*` by default, so a label
    the series lack (e.g. no `site` in the scrape config) still matches; `all_value=None` makes All the list
    of values found (for `job`, where `.*` would take in every other job's `up`)."""
    v = (db.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
         .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC))
    if multi:
        v = v.multi(True).include_all(True).current(dm.VariableOption(text="All", value="$__all"))
        if all_value is not None:
            v = v.all_value(all_value)
    return v


def console_variable() -> db.TextBoxVariable:
    return (db.TextBoxVariable("console").label("Console URL").default_value("http://127.0.0.1:9471")
            .description("Base URL of the collector's HTTP listener, for the links to its console"))


# --- queries, colours, mappings ----------------------------------------------------------------------------
def query(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False,
          table_format: bool = False) -> prom.Dataquery:
    q = prom.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).datasource(DATASOURCE)
    q = q.instant() if instant else q.range()
    if table_format:
        q = q.format(PromQueryFormat.TABLE)
    return q


def threshold_steps(steps: Sequence[Step]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=s.value, color=s.color) for s in steps])


def neutral() -> db.ThresholdsConfig:
    """For values no pack judges (rates, counts): one colour, no invented limits."""
    return threshold_steps([Step(None, BLUE)])


def status_mappings(names: dict[int, str]) -> list[dm.ValueMapping]:
    return [dm.ValueMap(options={str(code): dm.ValueMappingResult(text=name, color=STATUS_COLORS[name], index=code)
                                 for code, name in names.items()})]


def status_thresholds(names: dict[int, str]) -> db.ThresholdsConfig:
    return threshold_steps([Step(None if code == 0 else float(code), STATUS_COLORS[name])
                            for code, name in sorted(names.items())])


def link(title: str, url: str) -> db.DashboardLink:
    return db.DashboardLink(title).url(url)


def to_dashboard(key: str, params: str = "") -> str:
    """URL of a sibling dashboard keeping the time range and the common variables; `params` adds more."""
    base = f"/d/{UIDS[key]}?${{__url_time_range}}&${{datasource:queryparam}}&${{site:queryparam}}&${{console:queryparam}}"
    return base + (f"&{params}" if params else "")


# --- panels ------------------------------------------------------------------------------------------------
def status_tiles(title: str, description: str, expr: str, legend: str, *, ranked: bool, w: int, h: int,
                 links: Sequence[db.DashboardLink] = (), no_value: str = "nothing monitored",
                 across_the_room: bool = False) -> stat.Panel:
    """Big coloured tiles, one per series, showing a status by name (ranked: the worst of several).

    `across_the_room` sets the type large enough to read on a wall screen from the far side of a server room.
    """
    names = RANK_NAMES if ranked else STATUS_NAMES
    tiles = (
        stat.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
        .with_target(query(expr, legend, instant=True)).unit("none").mappings(status_mappings(names))
        .thresholds(status_thresholds(names)).color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE).text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(common.BigValueJustifyMode.CENTER).no_value(no_value)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]))
        .data_links(list(links))
    )
    if across_the_room:
        tiles = tiles.text(cb.VizTextDisplayOptions().title_size(32).value_size(64))
    return tiles


def big_number(title: str, description: str, expr: str, legend: str, unit: str, steps: Sequence[Step], *,
               w: int, h: int, links: Sequence[db.DashboardLink] = (), no_value: str = "0") -> stat.Panel:
    return (
        stat.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
        .with_target(query(expr, legend, instant=True)).unit(unit).thresholds(threshold_steps(steps))
        .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.AUTO).no_value(no_value)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"])).data_links(list(links))
    )


def graph(title: str, description: str, unit: str, targets: Sequence[prom.Dataquery], *, w: int, h: int = 8,
          steps: Sequence[Step] | None = None) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
         .unit(unit).targets(list(targets)).thresholds(threshold_steps(steps) if steps else neutral())
         .line_width(2).fill_opacity(8).span_nulls(False))
    if steps and len(steps) > 1:
        p = p.thresholds_style(cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE))
    return p


def bars(title: str, description: str, expr: str, legend: str, unit: str, *, w: int, h: int) -> bargauge.Panel:
    """Latest values as bars in one neutral colour: for values no pack judges."""
    return (bargauge.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
            .unit(unit).with_target(query(expr, legend, instant=True)).min(0).thresholds(neutral())
            .display_mode(common.BarGaugeDisplayMode.BASIC).orientation(common.VizOrientation.HORIZONTAL)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"])))


def status_table(title: str, description: str, expr: str, *, w: int, h: int = 8) -> table.Panel:
    """One row per series with its labels and its status by name."""
    return (
        table.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
        .with_target(query(expr, instant=True, table_format=True)).unit("none")
        .mappings(status_mappings(STATUS_NAMES)).thresholds(status_thresholds(STATUS_NAMES))
        .override_by_name("Value", [dm.DynamicConfigValue(id_val="displayName", value="status"),
                                    dm.DynamicConfigValue(id_val="custom.cellOptions",
                                                          value={"type": "color-background"})])
        .override_by_name("Time", [dm.DynamicConfigValue(id_val="custom.hidden", value=True)])
        .override_by_name("__name__", [dm.DynamicConfigValue(id_val="custom.hidden", value=True)])
    )


def value_table(title: str, description: str, expr: str, unit: str, *, w: int, h: int = 8) -> table.Panel:
    return (
        table.Panel().title(title).description(description).datasource(DATASOURCE).span(w).height(h)
        .with_target(query(expr, instant=True, table_format=True)).unit(unit).thresholds(neutral())
        .override_by_name("Time", [dm.DynamicConfigValue(id_val="custom.hidden", value=True)])
    )


def signal_targets(signal: Signal, matchers: Sequence[str], legend: str, *,
                   instant: bool) -> list[tuple[str, str, prom.Dataquery]]:
    """One query per check of the signal (refId A, B, ...), so each carries its own pack's thresholds."""
    out = []
    for n, check_id in enumerate(signal.check_ids()):
        ref = chr(ord("A") + n)
        out.append((ref, check_id, query(check_value(check_id, *matchers), legend, ref=ref, instant=instant)))
    return out


def _pack_steps_by_ref(p: Panel, refs: Sequence[tuple[str, str]]) -> Panel:
    """Default thresholds: the first check's; each other query gets its own check's as an override."""
    first = refs[0][1]
    p = p.thresholds(threshold_steps(packs.steps(first)))
    for ref, check_id in refs[1:]:
        steps = packs.steps(check_id)
        p = p.override_by_query(ref, [dm.DynamicConfigValue(id_val="thresholds", value={
            "mode": "absolute", "steps": [{"value": s.value, "color": s.color} for s in steps]})])
    return p


def signal_graph(signal: Signal, matchers: Sequence[str], legend: str, *, w: int, h: int = 8) -> timeseries.Panel:
    """A check's value over time, per series, coloured by its pack's warn/crit."""
    _check_units(signal)
    targets = signal_targets(signal, matchers, legend, instant=False)
    p = (timeseries.Panel().title(signal.title).description(signal.description).datasource(DATASOURCE)
         .span(w).height(h).unit(signal.unit).targets([q for _, _, q in targets]).line_width(2).fill_opacity(8)
         .thresholds_style(cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)))
    return _pack_steps_by_ref(p, [(ref, c) for ref, c, _ in targets])


def signal_bars(signal: Signal, matchers: Sequence[str], legend: str, *, w: int, h: int,
                links: Sequence[db.DashboardLink] = (), no_value: str = "none reported") -> bargauge.Panel:
    """The latest value of a check per series, as bars coloured by its pack's warn/crit."""
    _check_units(signal)
    targets = signal_targets(signal, matchers, legend, instant=True)
    p = (bargauge.Panel().title(signal.title).description(signal.description).datasource(DATASOURCE)
         .span(w).height(h).unit(signal.unit).targets([q for _, _, q in targets]).min(0)
         .display_mode(common.BarGaugeDisplayMode.BASIC).orientation(common.VizOrientation.HORIZONTAL)
         .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]))
         .no_value(no_value).data_links(list(links)))
    return _pack_steps_by_ref(p, [(ref, c) for ref, c, _ in targets])


def _check_units(signal: Signal) -> None:
    for check_id in signal.check_ids():
        unit = packs.grafana_unit(check_id, HOST_UNITS.get(check_id, ""))
        if unit != signal.unit:
            raise ValueError(f"signal {signal.title!r}: check {check_id} is in {unit}, the panel in {signal.unit}")


def row(title: str) -> db.Row:
    return db.Row(title)


def note(title: str, markdown: str, *, w: int, h: int) -> text.Panel:
    return (text.Panel().title(title).description(markdown).span(w).height(h).mode(TextMode.MARKDOWN)
            .content(markdown))
