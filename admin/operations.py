"""The operator's pages: the home dashboard, usage over time, and health alerts.

Figures come from the functions (`models:getUsage`, `models:getModelHealth`,
`models:listAlerts`, `models:getDefaultModel`); acknowledging an alert runs
`models:acknowledgeAlert`. Counts and lists the functions do not offer whole (models by state,
the latest changes, every model's sums over a window) are read through the console's read
session. Charts are drawn on the server (admin/charts.py).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import flash, redirect, request, url_for
from flask_admin import AdminIndexView, BaseView, expose
from sqlalchemy import func, select

from admin import charts
from admin.access import SignedIn
from admin.calls import RefusedError, run, run_or_flash
from admin.numbers import whole_number
from admin.reading import reader
from db.schema import HISTOGRAM, Model, ModelHistory
from functions import usage

MINUTE, HOUR, DAY = usage.MINUTE, usage.HOUR, usage.DAY
RANGES = {"1h": ("Last hour", HOUR), "6h": ("Last 6 hours", 6 * HOUR),
          "24h": ("Last 24 hours", DAY), "7d": ("Last 7 days", 7 * DAY),
          "30d": ("Last 30 days", 30 * DAY), "90d": ("Last 90 days", 90 * DAY)}
DEFAULT_BUCKET = {"1h": "minute", "6h": "minute", "24h": "hour", "7d": "hour", "30d": "day",
                  "90d": "day"}
SORTS = {"name": "Model", "generations": "Generations", "successRate": "Success rate",
         "p50": "p50 time ≈", "p95": "p95 time ≈", "credits": "Credits"}
PER_PAGE = 20
STATE_ORDER = {"failing": 0, "degraded": 1, "unknown": 2, "healthy": 3}
BADGES = {"healthy": "success", "degraded": "warning", "failing": "danger", "unknown": "secondary"}
LOCAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")
HOME_HEALTH_ROWS = 50


def now_ms() -> int:
    return int(time.time() * 1000)


def percent(value: float | None) -> str:
    """A success rate as text; None (nothing recorded) reads "No data", never "0.0%"."""
    return "No data" if value is None else f"{value:.1f}%"


def seconds(value: float | None) -> str:
    return "No data" if value is None else f"{value:.3g} s"


def models_by_key() -> dict[str, tuple]:
    """model_id -> (pk, name, is_active, is_deprecated) of every model."""
    rows = reader().execute(select(Model.model_id, Model.id, Model.name, Model.is_active,
                                   Model.is_deprecated))
    return {r.model_id: (r.id, r.name, r.is_active, r.is_deprecated) for r in rows}


def details_url(pk: int) -> str:
    return url_for("models.details_view", id=pk)


# -- the home page -------------------------------------------------------------------------


RECENT_HISTORY = 20_000  # history entries the home page groups its latest changes from


class HomeView(SignedIn, AdminIndexView):
    """The dashboard an operator opens first: what is failing, open alerts, the last 24 h,
    the default, models by state and the latest changes."""

    @expose("/")
    def index(self):
        now = now_ms()
        known = models_by_key()
        health = [h for h in run("models:getModelHealth")
                  if known.get(h["modelId"], (0, "", False))[2]]
        health.sort(key=lambda h: (STATE_ORDER.get(h["state"], 9), h["modelId"]))
        by_state = {state: sum(1 for h in health if h["state"] == state) for state in BADGES}
        alerts = run("models:listAlerts", {"paginationOpts": {"numItems": 20, "cursor": None},
                                           "open": True})
        return self.render(
            "catalog/index.html", states=self.states(), default=run("models:getDefaultModel"),
            health=health[:HOME_HEALTH_ROWS], more_health=max(0, len(health) - HOME_HEALTH_ROWS),
            by_state=by_state, failing=[h for h in health if h["state"] in (
                "failing", "degraded")][:HOME_HEALTH_ROWS],
            alerts=alerts["page"], more_alerts=not alerts["isDone"], known=known,
            day=day_charts(now), changes=self.changes(), badges=BADGES, percent=percent,
            seconds=seconds, details_url=details_url)

    def states(self) -> dict:
        active, inactive, deleted = reader().execute(select(
            func.count(Model.id).filter(Model.is_active, Model.is_deprecated.is_(False)),
            func.count(Model.id).filter(Model.is_active.is_(False),
                                        Model.is_deprecated.is_(False)),
            func.count(Model.id).filter(Model.is_deprecated))).one()
        return {"active": active, "inactive": inactive, "deleted": deleted}

    def changes(self, most: int = 10) -> list:
        """The latest changes, one row per change of many models at once (an import, a bulk
        action, a catalog file: one moment, actor, source, action and reason)."""
        together = (ModelHistory.at, ModelHistory.actor, ModelHistory.source,
                    ModelHistory.action, ModelHistory.reason)
        recent = select(func.max(ModelHistory.id)).scalar_subquery() - RECENT_HISTORY
        return reader().execute(
            select(*together, func.count().label("models"),
                   func.min(ModelHistory.model_pk).label("model_pk"),
                   func.min(ModelHistory.model_id).label("model_id"),
                   func.max(ModelHistory.revision).label("revision"))
            .where(ModelHistory.id > recent)
            .group_by(*together).order_by(func.max(ModelHistory.id).desc()).limit(most)).all()


def day_charts(now: int) -> dict:
    """Generations, failures and credits of every model over the last 24 h, by hour."""
    points = run("models:getUsage", {"from": now - DAY, "to": now, "bucket": "hour"})
    starts = [p["start"] for p in points]
    generations = [p["generations"] for p in points]
    failures = [p["failures"] for p in points]
    credits = [p["credits"] for p in points]
    return {
        "totals": {"generations": sum(generations), "failures": sum(failures),
                   "credits": sum(credits)},
        "generations": charts.time_chart(
            "Generations per hour, last 24 hours", starts, HOUR,
            [charts.Series("Generations", generations)], charts.COUNT,
            chart_id="chart-generations"),
        "failures": charts.time_chart(
            "Failures per hour, last 24 hours", starts, HOUR,
            [charts.Series("Failures", failures, charts.COLORS["red"])],
            charts.Unit("failures", "Failures", whole=True), chart_id="chart-failures"),
        "credits": charts.time_chart(
            "Credits charged per hour, last 24 hours", starts, HOUR,
            [charts.Series("Credits", credits, charts.COLORS["green"])], charts.CREDITS,
            chart_id="chart-credits"),
        "table": charts.data_table(
            starts, HOUR, [("Generations", generations, _count), ("Failures", failures, _count),
                           ("Credits", credits, _count)],
            "Generations, failures and credits per hour (hours with any)",
            table_id="day-table"),
    }


def _count(value: float) -> str:
    return f"{int(value):,}"


# -- usage over time -----------------------------------------------------------------------


@dataclass
class Window:
    """The window the Usage page shows: [start, end) in buckets of `bucket`."""

    range_key: str | None  # a preset, or None for a custom from/to
    start: int
    end: int
    bucket: str
    note: str | None = None  # why the window or the bucket is not the one asked for

    @property
    def size(self) -> int:
        return usage.BUCKETS[self.bucket]

    @property
    def first(self) -> int:
        """The start of the first bucket: figures are counted in whole buckets."""
        return usage.floor_to(self.start, self.size)

    @property
    def last(self) -> int:
        """The end of the last bucket."""
        return -(-self.end // self.size) * self.size

    @property
    def widened(self) -> bool:
        """Whether whole buckets count more than the window (the last hour, by day)."""
        return (self.first, self.last) != (self.start, self.end)

    @property
    def label(self) -> str:
        if self.range_key:
            return RANGES[self.range_key][0]
        return f"{charts.when(self.start, MINUTE)} to {charts.when(self.end, MINUTE)}"


def parse_local(text: str | None) -> int | None:
    """A `datetime-local` value (YYYY-MM-DDTHH:MM), read as UTC, in ms; None if not one."""
    if not isinstance(text, str) or not LOCAL_TIME.fullmatch(text.strip()):
        return None
    try:
        moment = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def window_from(args, now: int) -> Window:
    """The window a query string asks for: a preset range (default: 24 h) or from/to, and a
    bucket; the bucket grows when the window would have too many points."""
    start, end = parse_local(args.get("from")), parse_local(args.get("to"))
    range_key = args.get("range") if args.get("range") in RANGES else "24h"
    asked = bool(args.get("from") or args.get("to"))  # a window of one's own
    refused = _refused_window(start, end, now) if asked else None
    if not asked and args.get("range") and args["range"] not in RANGES:
        refused = f"No range '{args['range'][:20]}' (1h, 6h, 24h, 7d, 30d or 90d)."
    if asked and refused is None:
        range_key = None
    else:
        start, end = now - RANGES[range_key][1], now
    wanted = args.get("bucket")
    unknown_bucket = bool(wanted) and wanted not in usage.BUCKETS
    if wanted not in usage.BUCKETS:
        wanted = DEFAULT_BUCKET.get(range_key or "", "hour")
    bucket, note = wanted, None
    for candidate in ("minute", "hour", "day"):
        if usage.BUCKETS[candidate] < usage.BUCKETS[bucket]:
            continue
        size = usage.BUCKETS[candidate]
        points = (-(-end // size) * size - (start - start % size)) // size
        if points <= usage.MAX_POINTS:
            if candidate != wanted:
                note = (f"{RANGES[range_key][0] if range_key else 'This window'} holds more than "
                        f"{usage.MAX_POINTS:,} {wanted}s; shown by {candidate}.")
            bucket = candidate
            break
    else:  # the last MAX_POINTS whole days up to the end's
        bucket, start = "day", -(-end // DAY) * DAY - usage.MAX_POINTS * DAY
        note = f"Shown: the last {usage.MAX_POINTS:,} days."
    if refused:
        note = f"{refused} Shown: {RANGES[range_key][0].lower()}."
    if unknown_bucket:
        note = " ".join(filter(None, (note, f"No bucket '{args['bucket'][:20]}' (minute, hour "
                                            f"or day); shown by {bucket}.")))
    return Window(range_key, start, end, bucket, note)


def _refused_window(start: int | None, end: int | None, now: int) -> str | None:
    """Why a window of one's own cannot be shown (None: it can)."""
    for name, moment in (("From", start), ("To", end)):
        if moment is None:
            return f"{name} is not a time (YYYY-MM-DD HH:MM, UTC)."
    if start < 0:
        return "From is before 1970."
    if start >= end:
        return "From must be before To."
    if end > now + DAY:
        return "To is more than a day from now."
    return None


def model_sums(window: Window) -> dict[int, dict]:
    """Every model's figures over the window: model pk -> generations, successes, success
    rate, p50/p95, credits (one grouped read; rates and times None without generations)."""
    out = {}
    for row in usage.window_sums(reader(), window.size, window.first, window.last,
                                 by_model=True):
        generations = int(row.generations or 0)
        histogram = [int(getattr(row, name) or 0) for name in HISTOGRAM]
        out[row.model_pk] = {
            "generations": generations, "successes": int(row.successes or 0),
            "failures": generations - int(row.successes or 0),
            "successRate": int(row.successes) * 100 / generations if generations else None,
            "p50": usage.percentile(histogram, 0.5), "p95": usage.percentile(histogram, 0.95),
            "credits": usage.summed(row.credits)}
    return out


EMPTY = {"generations": 0, "successes": 0, "failures": 0, "successRate": None, "p50": None,
         "p95": None, "credits": 0}


def sort_rows(rows: list[dict], key: str, descending: bool) -> list[dict]:
    """Rows sorted by a column; rows without data in that column always come last."""
    if key == "name":
        return sorted(rows, key=lambda r: r["name"].casefold(), reverse=descending)
    with_data = [r for r in rows if r["figures"][key] is not None and r["figures"]["generations"]]
    without = [r for r in rows if r not in with_data]
    with_data.sort(key=lambda r: (r["figures"][key], r["name"].casefold()), reverse=descending)
    return with_data + sorted(without, key=lambda r: r["name"].casefold())


def model_charts(model_id: str, window: Window, slug: str) -> dict:
    """A model's volume, success rate and p50/p95 over the window, as charts."""
    points = run("models:getUsage", {"modelId": model_id, "from": window.start,
                                     "to": window.end, "bucket": window.bucket})
    starts = [p["start"] for p in points]
    rate = [p["successes"] * 100 / p["generations"] if p["generations"] else None
            for p in points]
    per = f"per {window.bucket}"
    volume = charts.time_chart(
        f"{model_id}: generations {per}", starts, window.size,
        [charts.Series("Successes", [p["successes"] for p in points], charts.COLORS["blue"]),
         charts.Series("Failures", [p["failures"] for p in points], charts.COLORS["red"])],
        charts.Unit("generations", f"Generations {per}", whole=True),
        chart_id=f"{slug}-volume", width=420, height=200)
    success = charts.time_chart(
        f"{model_id}: success rate {per}", starts, window.size,
        [charts.Series("Success rate", rate, charts.COLORS["green"], "line")], charts.PERCENT,
        chart_id=f"{slug}-success", width=420, height=200, top=100)
    times = charts.time_chart(
        f"{model_id}: p50 and p95 generation time {per}", starts, window.size,
        [charts.Series("p50", [p["p50GenerationTime"] for p in points], charts.COLORS["blue"],
                       "line"),
         charts.Series("p95", [p["p95GenerationTime"] for p in points],
                       charts.COLORS["orange"], "line")],
        charts.SECONDS, chart_id=f"{slug}-times", width=420, height=200)
    table = None
    if len(points) <= 200:
        table = charts.data_table(starts, window.size, [
            ("Generations", [p["generations"] for p in points], _count),
            ("Success rate", rate, lambda v: f"{v:.1f}%"),
            ("p50", [p["p50GenerationTime"] for p in points], lambda v: f"{v:.3g} s"),
            ("p95", [p["p95GenerationTime"] for p in points], lambda v: f"{v:.3g} s"),
            ("Credits", [p["credits"] for p in points], _count)],
            f"{model_id}: figures {per} (buckets with any generations)")
    return {"volume": volume, "success": success, "times": times, "table": table}


class StatsView(SignedIn, BaseView):
    """Usage over a chosen window, by minute, hour or day: per-model charts, sortable."""

    @expose("/")
    def index(self):
        args = request.args
        window = window_from(args, now_ms())
        sort = args.get("sort") if args.get("sort") in SORTS else "generations"
        descending = args.get("dir", "desc" if sort != "name" else "asc") != "asc"
        sums = model_sums(window)
        rows = []
        for model_id, (pk, name, active, deleted) in models_by_key().items():
            if deleted and pk not in sums:
                continue
            if not active and pk not in sums:
                continue
            rows.append({"pk": pk, "modelId": model_id, "name": name, "active": active,
                         "deleted": deleted, "figures": sums.get(pk, EMPTY)})
        rows = sort_rows(rows, sort, descending)
        pages = max(1, -(-len(rows) // PER_PAGE))
        page = min(whole_number(args.get("page", "1"), low=1) or 1, pages)
        shown = rows[(page - 1) * PER_PAGE:page * PER_PAGE]
        for i, row in enumerate(shown):
            if row["figures"]["generations"]:
                row["charts"] = model_charts(row["modelId"], window, f"model-{i}")

        def next_dir(key: str) -> str:
            if key == sort:
                return "asc" if descending else "desc"
            return "asc" if key == "name" else "desc"
        overall = overall_chart(window)
        return self.render("catalog/stats.html", window=window, rows=rows, shown=shown,
                           sort=sort, descending=descending, page=page, pages=pages,
                           ranges=RANGES, sorts=SORTS, overall=overall, percent=percent,
                           seconds=seconds, details_url=details_url, query=self.query,
                           next_dir=next_dir, per_page=PER_PAGE,
                           page_links=sorted({1, pages, *range(max(1, page - 2),
                                                              min(pages, page + 2) + 1)}))

    def query(self, window: Window, **changes) -> str:
        """This page's URL with the window kept and `changes` applied."""
        args = {"bucket": window.bucket}
        if window.range_key:
            args["range"] = window.range_key
        else:
            args["from"] = datetime.fromtimestamp(window.start / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M")
            args["to"] = datetime.fromtimestamp(window.end / 1000, UTC).strftime(
                "%Y-%m-%dT%H:%M")
        for key in ("sort", "dir"):
            if request.args.get(key):
                args[key] = request.args[key]
        args.update({k: val for k, val in changes.items() if val is not None})
        return url_for(".index", **args)


def overall_chart(window: Window):
    points = run("models:getUsage", {"from": window.start, "to": window.end,
                                     "bucket": window.bucket})
    return charts.time_chart(
        f"All models: generations per {window.bucket}, {window.label}",
        [p["start"] for p in points], window.size,
        [charts.Series("Successes", [p["successes"] for p in points]),
         charts.Series("Failures", [p["failures"] for p in points], charts.COLORS["red"])],
        charts.Unit("generations", f"Generations per {window.bucket}", whole=True),
        chart_id="usage-chart", width=900, height=240)


# -- alerts --------------------------------------------------------------------------------


class AlertsView(SignedIn, BaseView):
    """Every change of health state, newest first, open or all; acknowledge (editors, admins)."""

    @expose("/")
    def index(self):
        show = request.args.get("show") if request.args.get("show") in ("open", "all") \
            else "all"
        cursor = request.args.get("cursor") or None
        if cursor is not None and not re.fullmatch(r"[A-Za-z0-9_=-]{1,200}", cursor):
            cursor = None
        args = {"paginationOpts": {"numItems": 50, "cursor": cursor}}
        if show == "open":
            args["open"] = True
        try:
            alerts = run("models:listAlerts", args)
        except RefusedError:  # a cursor that does not decode: the first page
            args["paginationOpts"]["cursor"] = None
            alerts = run("models:listAlerts", args)
        return self.render("catalog/alerts.html", alerts=alerts, show=show, known=models_by_key(),
                           badges=BADGES, percent=percent, seconds=seconds,
                           details_url=details_url)

    @expose("/acknowledge", methods=("POST",))
    def acknowledge(self):
        alert = run_or_flash("models:acknowledgeAlert",
                             {"alertId": request.form.get("alertId", "")})
        if alert is not None:  # acknowledged now, or already: who did, and when
            when = datetime.fromtimestamp(alert["acknowledgedAt"] / 1000, UTC)
            flash(f"Alert acknowledged (on {alert['modelId']}, by {alert['acknowledgedBy']}, "
                  f"{when:%Y-%m-%d %H:%M:%S} UTC).", "success")
        if request.form.get("back") == "home":
            return redirect(url_for("admin.index") + "#alerts")
        return redirect(url_for(".index", show=request.form.get("show") or None))
