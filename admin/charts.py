"""Charts as inline SVG, drawn on the server: no script, no library, no CDN.

`time_chart` draws series over time buckets (bars for counts, lines for rates and times) with
both axes, ticks in the series' unit, an axis title, a legend, a `<title>` and `<desc>` for
screen readers, and "No data" where there is nothing to draw (a missing value is a gap, never a
zero). `data_table` is the same figures as an HTML table: the text alternative a chart sits
beside. Everything here is pure: figures in, markup out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count

from markupsafe import Markup, escape

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# Series colours: each has at least 4.5:1 contrast on white (text in the legend uses #212529).
COLORS = {"blue": "#0b5ed7", "red": "#b02a37", "green": "#146c43", "orange": "#9a4d00",
          "purple": "#59359a"}
_ids = count(1)


@dataclass(frozen=True)
class Series:
    """One series: its label (legend), values (None: no data in that bucket), how to draw it."""

    label: str
    values: Sequence[float | None]
    color: str = COLORS["blue"]
    kind: str = "bar"  # "bar" or "line"


@dataclass(frozen=True)
class Unit:
    """How the values read: the axis title's unit and one value as text."""

    name: str  # e.g. "generations", "%", "s", "credits"
    axis: str  # the y axis title, e.g. "Generations per hour"
    whole: bool = False  # counts: ticks are whole numbers

    def format(self, value: float) -> str:
        if self.name == "%":
            return f"{value:.4g}%"
        if self.name == "s":
            return f"{value:.3g} s"
        if self.whole and float(value).is_integer():
            return f"{int(value):,}"
        return f"{value:,.3g}"


COUNT = Unit("generations", "Generations", whole=True)
PERCENT = Unit("%", "Success rate (%)")
SECONDS = Unit("s", "Generation time (s)")
CREDITS = Unit("credits", "Credits", whole=True)


def nice_step(span: float, steps: int = 4, whole: bool = False) -> float:
    """A round step (1, 2, 2.5 or 5 × 10^n) so that `steps` of them cover `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / steps
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw - 1e-12:
            break
    if whole:
        step = max(1.0, math.ceil(step))
    return step


def axis_ticks(largest: float | None, steps: int = 4, whole: bool = False,
               top: float | None = None) -> list[float]:
    """Tick values from 0 up to a round top that holds `largest` (or exactly `top`)."""
    if top is not None:
        step = top / steps
        return [round(step * i, 10) for i in range(steps + 1)]
    step = nice_step(largest or 0, steps, whole)
    n = max(1, math.ceil((largest or 0) / step - 1e-9))
    return [round(step * i, 10) for i in range(n + 1)]


def time_label(ms: int, bucket_ms: int, with_date: bool = False) -> str:
    """A bucket's start as an axis label (UTC): 14:05, 14:00, or 11-30 for days."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    if bucket_ms >= DAY:
        return moment.strftime("%m-%d")
    return moment.strftime("%m-%d %H:%M" if with_date else "%H:%M")


def when(ms: int, bucket_ms: int) -> str:
    """A bucket's start as a full UTC time, for tables and tooltips."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d" if bucket_ms >= DAY else "%Y-%m-%d %H:%M") + " UTC"


def x_tick_indexes(points: int, most: int = 6) -> list[int]:
    """Which buckets get a time label: evenly spread, the first included."""
    if points <= 0:
        return []
    every = max(1, math.ceil(points / most))
    return list(range(0, points, every))


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def time_chart(title: str, starts: Sequence[int], bucket_ms: int, series: Sequence[Series],
               unit: Unit, *, chart_id: str | None = None, width: int = 640, height: int = 220,
               top: float | None = None, css_class: str = "chart") -> Markup:
    """An SVG chart of `series` over the buckets starting at `starts` (ms, UTC)."""
    chart_id = chart_id or f"chart-{next(_ids)}"
    left, right, upper, lower = 64, 12, 28, 44
    plot_w, plot_h = width - left - right, height - upper - lower
    n = len(starts)
    known = [v for s in series for v in s.values if v is not None]
    has_data = any(v is not None for v in known) and (
        unit.name in ("%", "s") or any(v for v in known))
    largest = max(known) if known else 0
    ticks = axis_ticks(largest, whole=unit.whole, top=top)
    y_top = ticks[-1] or 1
    slot = plot_w / n if n else plot_w

    def x_of(i: int) -> float:
        return left + slot * i + slot / 2

    def y_of(value: float) -> float:
        return upper + plot_h - plot_h * min(value, y_top) / y_top

    out: list[str] = []
    desc = describe(title, starts, bucket_ms, series, unit) if has_data else f"{title}: no data."
    chart_id = str(escape(chart_id))
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{escape(css_class)}" id="{chart_id}"'
        f' role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}">')
    out.append(f'<title id="{chart_id}-title">{escape(title)}</title>')
    out.append(f'<desc id="{chart_id}-desc">{escape(desc)}</desc>')
    # y axis: grid lines and tick labels in the unit; its title, turned.
    for tick in ticks:
        y = _number(y_of(tick))
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y}" y2="{y}" '
                   'stroke="#dee2e6" stroke-width="1"/>')
        out.append(f'<text class="y-tick" x="{left - 6}" y="{y}" text-anchor="end" '
                   f'dominant-baseline="middle" font-size="11" fill="#212529">'
                   f'{escape(unit.format(tick))}</text>')
    middle = _number(upper + plot_h / 2)
    out.append(f'<text class="y-title" x="12" y="{middle}" text-anchor="middle" font-size="11" '
               f'fill="#212529" transform="rotate(-90 12 {middle})">{escape(unit.axis)}</text>')
    # x axis: the time labels, and its title.
    base = _number(upper + plot_h)
    out.append(f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{base}" y2="{base}" '
               'stroke="#495057" stroke-width="1"/>')
    out.append(f'<line class="axis" x1="{left}" x2="{left}" y1="{upper}" y2="{base}" '
               'stroke="#495057" stroke-width="1"/>')
    days = {s // DAY for s in starts}
    for i in x_tick_indexes(n, most=max(3, plot_w // 95)):
        x = _number(x_of(i))
        label = time_label(starts[i], bucket_ms, with_date=len(days) > 1)
        out.append(f'<line x1="{x}" x2="{x}" y1="{base}" y2="{_number(upper + plot_h + 4)}" '
                   'stroke="#495057" stroke-width="1"/>')
        out.append(f'<text class="x-tick" x="{x}" y="{_number(upper + plot_h + 16)}" '
                   f'text-anchor="middle" font-size="11" fill="#212529">{escape(label)}</text>')
    size = {MINUTE: "minute", HOUR: "hour", DAY: "day"}.get(bucket_ms, "bucket")
    out.append(f'<text class="x-title" x="{_number(left + plot_w / 2)}" y="{height - 4}" '
               f'text-anchor="middle" font-size="11" fill="#212529">Time (UTC), per {size}'
               '</text>')
    # legend, above the plot
    x = left
    for s in series:
        out.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{escape(s.color)}"/>')
        out.append(f'<text class="legend" x="{x + 14}" y="15" font-size="11" fill="#212529">'
                   f'{escape(s.label)}</text>')
        x += 24 + 7 * len(s.label)
    if not has_data:
        out.append(f'<text class="no-data" x="{_number(left + plot_w / 2)}" y="{middle}" '
                   'text-anchor="middle" font-size="14" fill="#495057">No data</text>')
    else:
        bars = [s for s in series if s.kind == "bar"]
        bar_w = slot * 0.8 / max(1, len(bars))
        for b, s in enumerate(bars):
            for i, value in enumerate(s.values):
                if not value:
                    continue
                x0 = left + slot * i + slot * 0.1 + bar_w * b
                y = y_of(value)
                tip = f"{when(starts[i], bucket_ms)}: {unit.format(value)} {s.label.lower()}"
                out.append(f'<rect class="bar" x="{_number(x0)}" y="{_number(y)}" '
                           f'width="{max(0.5, round(bar_w, 2))}" '
                           f'height="{_number(upper + plot_h - y)}" fill="{escape(s.color)}">'
                           f'<title>{escape(tip)}</title></rect>')
        for s in (s for s in series if s.kind == "line"):
            for segment in _segments(s.values):
                points = " ".join(f"{_number(x_of(i))},{_number(y_of(v))}" for i, v in segment)
                if len(segment) > 1:
                    out.append(f'<polyline class="line" points="{points}" fill="none" '
                               f'stroke="{escape(s.color)}" stroke-width="2"/>')
                if len(segment) == 1 or n <= 60:
                    for i, v in segment:
                        tip = f"{when(starts[i], bucket_ms)}: {s.label} {unit.format(v)}"
                        out.append(f'<circle class="point" cx="{_number(x_of(i))}" '
                                   f'cy="{_number(y_of(v))}" r="2.5" fill="{escape(s.color)}">'
                                   f'<title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return Markup("".join(out))


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of known values: a line is broken where a bucket has no data."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, value in enumerate(values):
        if value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append((i, value))
    if current:
        runs.append(current)
    return runs


def describe(title: str, starts: Sequence[int], bucket_ms: int, series: Sequence[Series],
             unit: Unit) -> str:
    """The chart in one sentence: each series' total or range over the window."""
    if not starts:
        return f"{title}: no data."
    span = f"{when(starts[0], bucket_ms)} to {when(starts[-1] + bucket_ms, bucket_ms)}"
    parts = []
    for s in series:
        known = [v for v in s.values if v is not None]
        if not known:
            parts.append(f"{s.label}: no data")
        elif unit.whole:
            parts.append(f"{s.label}: {unit.format(sum(known))} in all, at most "
                         f"{unit.format(max(known))} in one bucket")
        else:
            parts.append(f"{s.label}: from {unit.format(min(known))} to "
                         f"{unit.format(max(known))}")
    return f"{title}, {span}. " + "; ".join(parts) + "."


def data_table(starts: Sequence[int], bucket_ms: int,
               columns: Sequence[tuple[str, Sequence[float | None], Callable[[float], str]]],
               caption: str, table_id: str | None = None, skip_empty: bool = True) -> Markup:
    """The figures behind a chart as a table: a row per bucket (those with any data, unless
    `skip_empty` is false), a column per series; a missing value reads "No data"."""
    head = "".join(f'<th scope="col">{escape(name)}</th>' for name, _, _ in columns)
    rows = []
    for i, start in enumerate(starts):
        values = [values[i] for _, values, _ in columns]
        if skip_empty and not any(values):
            continue
        cells = "".join(f"<td>{'No data' if v is None else escape(fmt(v))}</td>"
                        for v, (_, _, fmt) in zip(values, columns, strict=True))
        rows.append(f'<tr><th scope="row">{escape(when(start, bucket_ms))}</th>{cells}</tr>')
    if not rows:
        rows.append(f'<tr><td colspan="{len(columns) + 1}">No data</td></tr>')
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return Markup(
        f'<table class="table table-sm chart-data"{ident}><caption>{escape(caption)}</caption>'
        f'<thead><tr><th scope="col">Time (UTC)</th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>')
