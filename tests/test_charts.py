"""Server-drawn charts (admin/charts.py) and the Usage page's window and sorting, without a
browser: the SVG is parsed and read as a person would (labels, ticks, titles, what is drawn)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from admin import charts
from admin.operations import EMPTY, parse_local, percent, sort_rows, window_from
from functions import usage

SVG = "{http://www.w3.org/2000/svg}"
HOUR = charts.HOUR
T0 = 1_796_000_400_000 - 1_796_000_400_000 % charts.DAY  # a midnight, UTC


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(svg: ET.Element, cls: str) -> list[str]:
    return [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == cls]


def test_nice_steps_and_ticks():
    assert charts.nice_step(100, 4) == 25
    assert charts.nice_step(7, 4) == 2
    assert charts.nice_step(0.9, 4) == 0.25
    assert charts.nice_step(3, 4, whole=True) == 1
    assert charts.axis_ticks(37) == [0, 10, 20, 30, 40]
    assert charts.axis_ticks(0) == [0, 1]
    assert charts.axis_ticks(3, whole=True) == [0, 1, 2, 3]
    assert charts.axis_ticks(55, top=100) == [0, 25, 50, 75, 100]


def test_a_count_chart_has_axes_units_labels_and_a_text_alternative():
    starts = [T0 + i * HOUR for i in range(24)]
    values = [0] * 24
    values[3], values[10] = 12, 30
    svg = parse(charts.time_chart("Generations per hour", starts, HOUR,
                                  [charts.Series("Generations", values)], charts.COUNT,
                                  chart_id="c1"))
    assert svg.get("role") == "img" and svg.get("aria-labelledby") == "c1-title c1-desc"
    assert svg.find(f"{SVG}title").text == "Generations per hour"
    desc = svg.find(f"{SVG}desc").text
    assert "42 in all" in desc and "at most 30" in desc and "UTC" in desc
    assert texts(svg, "y-tick") == ["0", "10", "20", "30"]
    assert texts(svg, "y-title") == ["Generations"]
    assert texts(svg, "x-title") == ["Time (UTC), per hour"]
    assert texts(svg, "x-tick")[:2] == ["00:00", "05:00"]  # five labels across 564 px
    assert texts(svg, "legend") == ["Generations"]
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(bars) == 2  # empty hours draw nothing
    assert bars[1].find(f"{SVG}title").text.endswith("10:00 UTC: 30 generations")
    assert float(bars[1].get("height")) > float(bars[0].get("height"))
    assert not texts(svg, "no-data")


def test_missing_values_are_gaps_and_an_empty_chart_says_no_data():
    starts = [T0 + i * HOUR for i in range(6)]
    rate = [100.0, 50.0, None, None, 75.0, None]
    svg = parse(charts.time_chart("Success rate", starts, HOUR,
                                  [charts.Series("Success rate", rate, kind="line")],
                                  charts.PERCENT, top=100))
    lines = [p for p in svg.iter(f"{SVG}polyline")]
    assert len(lines) == 1 and len(lines[0].get("points").split()) == 2  # 100, 50; then a gap
    assert len([c for c in svg.iter(f"{SVG}circle")]) == 3  # every known point, the lone 75 too
    assert texts(svg, "y-tick") == ["0%", "25%", "50%", "75%", "100%"]

    empty = parse(charts.time_chart("Success rate", starts, HOUR,
                                    [charts.Series("Success rate", [None] * 6, kind="line")],
                                    charts.PERCENT, top=100))
    assert texts(empty, "no-data") == ["No data"]
    assert "0%" not in empty.find(f"{SVG}desc").text
    assert not list(empty.iter(f"{SVG}polyline"))
    zeros = parse(charts.time_chart("Generations", starts, HOUR,
                                    [charts.Series("Generations", [0] * 6)], charts.COUNT))
    assert texts(zeros, "no-data") == ["No data"]


def test_seconds_axis_minutes_and_days_labels():
    starts = [T0 + i * charts.MINUTE for i in range(3)]
    svg = parse(charts.time_chart("p95", starts, charts.MINUTE,
                                  [charts.Series("p95", [1.5, 2.25, 40.0], kind="line")],
                                  charts.SECONDS))
    assert texts(svg, "y-tick")[-1] == "40 s" and texts(svg, "y-title") == [
        "Generation time (s)"]
    assert texts(svg, "x-title") == ["Time (UTC), per minute"]
    days = [T0 + i * charts.DAY for i in range(3)]
    svg = parse(charts.time_chart("Per day", days, charts.DAY,
                                  [charts.Series("Generations", [1, 2, 3])], charts.COUNT))
    assert texts(svg, "x-tick")[0] == charts.time_label(T0, charts.DAY)
    assert len(texts(svg, "x-tick")[0]) == 5  # MM-DD


def test_labels_are_escaped():
    svg = charts.time_chart("<script>alert(1)</script>", [T0], HOUR,
                            [charts.Series("a & b", [1])], charts.COUNT)
    assert "<script>" not in str(svg) and "a &amp; b" in str(svg)
    parse(svg)  # still well-formed


def test_data_table_reads_no_data_and_skips_empty_buckets():
    starts = [T0 + i * HOUR for i in range(3)]
    table = str(charts.data_table(starts, HOUR, [
        ("Generations", [4, 0, 2], str), ("Success rate", [50.0, None, None],
                                           lambda v: f"{v:.1f}%")], "caption"))
    assert table.count("<tr>") == 3  # the head and two hours with data
    assert "50.0%" in table and "No data" in table and ">0.0%<" not in table
    empty = str(charts.data_table(starts, HOUR, [("Generations", [0, 0, 0], str)], "c"))
    assert "No data" in empty


def test_success_rate_text_never_reads_zero_for_nothing():
    assert percent(None) == "No data"
    assert percent(0.0) == "0.0%"
    assert percent(99.95) == "100.0%" or percent(99.95) == "99.9%"


def test_the_usage_window_from_a_query_string():
    now = T0 + 12 * HOUR + 5 * charts.MINUTE
    window = window_from({}, now)
    assert (window.range_key, window.bucket, window.end - window.start) == ("24h", "hour",
                                                                            charts.DAY)
    window = window_from({"range": "1h", "bucket": "minute"}, now)
    assert window.bucket == "minute" and window.note is None
    window = window_from({"range": "7d", "bucket": "minute"}, now)  # 10,080 minutes: too many
    assert window.bucket == "hour" and "shown by hour" in window.note
    window = window_from({"range": "nonsense", "bucket": "fortnight"}, now)
    assert (window.range_key, window.bucket) == ("24h", "hour")
    assert window.note == ("No range 'nonsense' (1h, 6h, 24h, 7d, 30d or 90d). Shown: last 24 "
                           "hours. No bucket 'fortnight' (minute, hour or day); shown by hour.")
    window = window_from({"range": "7d", "bucket": "fortnight"}, now)
    assert (window.range_key, window.bucket) == ("7d", "hour")
    assert window.note == "No bucket 'fortnight' (minute, hour or day); shown by hour."
    window = window_from({"from": "2026-11-01T00:00", "to": "2026-11-03T00:00",
                          "bucket": "day"}, now)
    assert window.range_key is None and window.end - window.start == 2 * charts.DAY
    assert parse_local("2026-02-30T00:00") is None and parse_local("٢٠٢٦-01-01T00:00") is None


@pytest.mark.parametrize(("start", "end", "why"), [
    ("2026-11-03T00:00", "2026-11-01T00:00", "From must be before To."),
    ("2026-13-01T00:00", "2026-11-01T00:00", "From is not a time"),
    ("2026-11-01T00:00", "", "To is not a time"),
    ("2026-11-01T00:00", "2030-01-01T00:00", "To is more than a day from now."),
])
def test_a_window_of_ones_own_that_cannot_be_shown_says_why(start, end, why):
    window = window_from({"from": start, "to": end, "bucket": "day"}, T0)
    assert (window.range_key, window.end) == ("24h", T0)
    assert window.note.startswith(why) and window.note.endswith("Shown: last 24 hours.")


def test_a_window_of_years_is_cut_to_the_days_one_answer_holds():
    """Whatever the window's edges, the days shown fit one getUsage answer."""
    for start in ("2020-01-01T00:00", "2022-10-22T13:37", "1970-01-01T00:00"):
        window = window_from({"from": start, "to": "2026-11-30T17:40", "bucket": "day"},
                             T0 + 400 * charts.DAY)
        days = (-(-window.end // charts.DAY) * charts.DAY - window.start) // charts.DAY
        assert (window.bucket, days) == ("day", usage.MAX_POINTS), start
        assert window.note == f"Shown: the last {usage.MAX_POINTS:,} days."


@pytest.mark.parametrize("key", ["generations", "successRate", "p95"])
def test_sorting_puts_models_without_data_last_both_ways(key):
    rows = [{"name": "b", "figures": {**EMPTY}},
            {"name": "a", "figures": {**EMPTY, "generations": 5, "successRate": 80.0,
                                      "p95": 3.0}},
            {"name": "c", "figures": {**EMPTY, "generations": 9, "successRate": 100.0,
                                      "p95": 1.0}}]
    for descending in (True, False):
        order = [r["name"] for r in sort_rows(rows, key, descending)]
        assert order[-1] == "b"
    assert [r["name"] for r in sort_rows(rows, "name", False)] == ["a", "b", "c"]
