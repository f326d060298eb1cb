"""`python -m bench steps`: what each step of the request pipeline costs a held read, where it
runs: under gunicorn, with every request in its own thread.

The held getCreditCost row of `make bench` (SQLite, 3 models, a service token) is run against
the raw floor, once with the whole pipeline and once with each step turned off by
configuration: the log line (CATALOG_LOG_LEVEL=WARNING), the rate limit
(RATE_LIMIT_PER_MINUTE=0), the token check (no Authorization header), and the three at once.
A step's cost is the server's CPU per request with it less the CPU without it. (The metrics
cannot be turned off: `python -m bench.inprocess` gives every step's share inside the app,
metrics included.)

Then the same held read is timed inside one process (bench/inprocess.py's method), and the raw
floor is run again with as much plain Python work per request (bench/floor.py's `busy`): how
much server CPU a microsecond of the app's work costs under gunicorn, against a microsecond of
a plain loop. Rewrites its section of bench/results.md. Speed is reported, never asserted.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench.floor
from bench import __main__ as full
from bench.report import write_section
from tests.servers import Gunicorn

SECTION = "## What a held read spends its CPU on"
QUIET = {"CATALOG_LOG_LEVEL": "WARNING"}
UNLIMITED = {"RATE_LIMIT_PER_MINUTE": "0"}
VARIANTS = [  # (name, environment, with a token)
    ("whole pipeline", {}, True),
    ("without the log line", QUIET, True),
    ("without the rate limit", UNLIMITED, True),
    ("without the token check (anonymous)", {}, False),
    ("without all three", {**QUIET, **UNLIMITED}, False),
]


def in_process(url: str, token: str, body: dict) -> float:
    """CPU µs of the held read inside one process, with no server (bench/inprocess.py)."""
    from bench import inprocess

    app = inprocess.app_on(url)
    try:
        return inprocess.best(app, "query", body, token)[1]
    finally:
        app.extensions["catalog_db"].dispose()


def loops_for(us: float) -> int:
    """Turns of bench.floor.spin that take `us` of CPU here."""
    turns = 200_000
    cost = min(_timed(turns) for _ in range(5)) / turns
    return max(1, round(us / cost))


def _timed(turns: int) -> float:
    started = time.process_time()
    bench.floor.spin(turns)
    return (time.process_time() - started) * 1e6


def run(work: Path) -> tuple[list[dict], dict]:
    url = f"sqlite:///{work}/steps.db"
    token = full.prepare(url, 3)
    body = {"path": "pricing:getCreditCost", "args": full.LOOKUP}
    floor = Gunicorn(full.ROOT, "sqlite://", work / "floor", workers=None,
                     app=full.FLOOR_APPS["raw"])
    full.settle(floor)
    held_us = in_process(url, token, body)
    rows = []
    try:
        for name, env, with_token in VARIANTS:
            server = Gunicorn(full.ROOT, url, work / f"app-{len(rows)}", workers=None, env=env)
            full.settle(server)
            try:
                caller = token if with_token else ""
                full.warm(server, "query", body, caller)
                measured = full.alternate(floor, server, "query", body, caller)
            finally:
                server.stop()
            cpu = measured["cpu"]
            rows.append({"name": name, "rps": measured["rps"], "ratio": measured["ratio"],
                         "server": cpu["server_user"] + cpu["server_system"],
                         "floor_server": measured["floor_cpu"]["server_user"]
                         + measured["floor_cpu"]["server_system"]})
            print(f"  {name}: {measured['rps']:.0f} req/s, {measured['ratio']:.2f} of the raw "
                  f"floor", flush=True)
        busy = Gunicorn(full.ROOT, "sqlite://", work / "busy", workers=None, app="bench.floor:busy",
                        env={"BENCH_BUSY_LOOPS": str(loops_for(held_us))})
        full.settle(busy)
        try:
            measured = full.alternate(floor, busy, "query", {"path": "x", "args": {}}, "")
        finally:
            busy.stop()
    finally:
        floor.stop()
    cpu, floor_cpu = measured["cpu"], measured["floor_cpu"]
    plain = {"in_process": held_us, "rps": measured["rps"], "ratio": measured["ratio"],
             "server": cpu["server_user"] + cpu["server_system"],
             "floor_server": floor_cpu["server_user"] + floor_cpu["server_system"]}
    print(f"  raw floor + {held_us:.1f} µs of plain Python: {plain['rps']:.0f} req/s, "
          f"{plain['ratio']:.2f} of the raw floor", flush=True)
    return rows, plain


def render(rows: list[dict], plain: dict) -> list[str]:
    whole = rows[0]["server"]
    floor = statistics.median(row["floor_server"] for row in rows)
    lines = [SECTION, "",
             "`python -m bench steps`: the held getCreditCost row (SQLite, 3 models) against the "
             f"raw floor, {full.ROUNDS} alternating runs of {full.SECONDS} s each, with the whole "
             "pipeline and with one step turned off at a time. *Server CPU* is the gunicorn "
             "processes' CPU per request (user and system, µs of one core); a step's cost is "
             f"the whole pipeline's less the run without it. The raw floor's server CPU: "
             f"{floor:.0f} µs.", "",
             "| run | req/s | ratio to the raw floor | server CPU µs/req | the step's cost µs |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        cost = "" if row is rows[0] else f"{whole - row['server']:.0f}"
        lines.append(f"| {row['name']} | {row['rps']:.0f} | {row['ratio']:.2f} | "
                     f"{row['server']:.0f} | {cost} |")
    app_added = whole - rows[0]["floor_server"]
    plain_added = plain["server"] - plain["floor_server"]
    lines += ["", (
        f"Inside one process (bench/inprocess.py's method: the app called as a WSGI function, "
        f"no server) the whole held read costs {plain['in_process']:.1f} µs of CPU. Under "
        f"gunicorn it adds {app_added:.0f} µs of server CPU to the raw floor's, "
        f"{app_added / plain['in_process']:.1f}× that. The raw floor with as much plain "
        f"Python per request (bench/floor.py's `busy`, a loop) adds {plain_added:.0f} µs, "
        f"{plain_added / plain['in_process']:.1f}× ({plain['rps']:.0f} req/s, "
        f"{plain['ratio']:.2f} of the raw floor in the same alternation). A row's server CPU "
        "per request moves by about ±10 µs from one run to the next, so the plain loop's "
        "figure says little more than: about its own CPU, against several times it.")]
    return lines


def main() -> None:
    full.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-steps-"))
    try:
        lines = render(*run(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
