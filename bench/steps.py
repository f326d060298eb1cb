"""`python -m bench steps`: what each step of the request pipeline costs a held read, where it
runs: under gunicorn, with every request in its own thread.

The held getCreditCost row of `make bench` (SQLite, 3 models, a service token) is run against
the raw floor, once with the whole pipeline and once with each step turned off by
configuration: the log line (CATALOG_LOG_LEVEL=WARNING), the rate limit
(RATE_LIMIT_PER_MINUTE=0), the token check (no Authorization header), and the three at once.
A step's cost is the server's CPU per request with it less the CPU without it. (The metrics
cannot be turned off: `python -m bench.inprocess` gives every step's share inside the app,
metrics included.) Rewrites its section of bench/results.md. Speed is reported, never asserted.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

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


def run(work: Path) -> list[dict]:
    url = f"sqlite:///{work}/steps.db"
    token = full.prepare(url, 3)
    body = {"path": "pricing:getCreditCost", "args": full.LOOKUP}
    floor = Gunicorn(full.ROOT, "sqlite://", work / "floor", workers=None,
                     app=full.FLOOR_APPS["raw"])
    full.settle(floor)
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
    finally:
        floor.stop()
    return rows


def render(rows: list[dict]) -> list[str]:
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
    return lines


def main() -> None:
    full.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-steps-"))
    try:
        lines = render(run(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
