"""`python -m bench.recording [--baseline DIR]`: what recording a generation costs, under
gunicorn and wrk as `make bench` runs it, on SQLite and PostgreSQL (durable), 3 models.

Rows, run in turn ROUNDS times each, each round starting with the next row (medians):
`updateModelStats`, `recordGenerations` with one event and with 100 events. With `--baseline
DIR` (another checkout, e.g. made with `git archive <commit> | tar -x -C DIR`), that tree's
`updateModelStats` is served from its own database beside this one's and measured in the same
turns, so the ratios compare runs made at the same moment on the same machine. Reported:
calls/s, generations/s, and CPU per generation of the server (gunicorn, user + system) and of
this benchmark's PostgreSQL. BENCH_DATABASES (`sqlite,postgresql`) picks the databases. Speed
is reported, never
asserted.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RATE_LIMIT_PER_MINUTE", str(10**9))

import bench.cpu  # noqa: E402
from bench.__main__ import EVENTS, WORKLOAD, _wrk, prepare, settle  # noqa: E402
from tests.servers import Gunicorn, PostgresServer  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ROWS = ("updateModelStats", "recordGenerations (1 event)", "recordGenerations (100 events)")


def baseline_prepare(tree: Path, url: str) -> str:
    """Migrate, seed and make a token with the baseline tree's own code."""
    code = ("import sys; sys.path.insert(0, '.'); from bench.__main__ import prepare; "
            f"print(prepare({url!r}, 3))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True,
                         text=True, check=True).stdout
    return [line for line in out.splitlines() if line.startswith("mc_")][-1]


def measure(server: Gunicorn, body: dict, token: str, database_pid: int | None) -> dict:
    return bench.cpu.measure(partial(_wrk, server.url, "mutation", body, token),
                             [server.process.pid, *server.worker_pids()], database_pid)


def run(database: str, url: str, baseline_url: str | None, tree: Path | None,
        work: Path, database_pid: int | None) -> dict[str, list[dict]]:
    servers: dict[str, tuple[Gunicorn, str]] = {
        "": (Gunicorn(ROOT, url, work / f"{database}-current", workers=None),
             prepare(url, 3))}
    if tree is not None:
        servers["baseline "] = (Gunicorn(tree, baseline_url, work / f"{database}-baseline",
                                         workers=None), baseline_prepare(tree, baseline_url))
    rows = [(prefix + name, server, token, {"path": path, "args": args})
            for prefix, (server, token) in servers.items()
            for name, _, path, args, _floor in WORKLOAD
            if name in ROWS and (prefix == "" or name == "updateModelStats")]
    results: dict[str, list[dict]] = {name: [] for name, *_ in rows}
    try:  # from the servers' start: whatever fails, they are stopped
        for server, _ in servers.values():
            settle(server)
        for round_ in range(ROUNDS):  # each round starts with another row: no row always
            for name, server, token, body in rows[round_:] + rows[:round_]:  # follows another
                results[name].append(measure(server, body, token, database_pid))
    finally:
        for server, _ in servers.values():
            server.stop()
    return results


def summary(results: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, runs in results.items():
        events = EVENTS.get(name.removeprefix("baseline "), 1)
        cpu = [(r["cpu"]["server_user"] + r["cpu"]["server_system"] + r["cpu"]["database"])
               / events for r in runs]
        out[name] = {"calls/s": statistics.median(r["rps"] for r in runs),
                     "generations/s": statistics.median(r["rps"] for r in runs) * events,
                     "cpu_us_per_generation": statistics.median(cpu),
                     "server_us": statistics.median(
                         (r["cpu"]["server_user"] + r["cpu"]["server_system"]) / events
                         for r in runs),
                     "database_us": statistics.median(r["cpu"]["database"] / events
                                                      for r in runs),
                     "failed": sum(r["failed"] for r in runs)}
    return out


def main() -> None:
    tree = None
    if "--baseline" in sys.argv:
        tree = Path(sys.argv[sys.argv.index("--baseline") + 1]).resolve()
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-recording-"))
    postgres = PostgresServer(durable=True)
    postgres.start()
    report = {}
    try:
        postmaster = int((postgres.data / "postmaster.pid").read_text().split()[0])
        for name in ("current", "baseline"):
            postgres.create_database(name)
        databases = os.environ.get("BENCH_DATABASES", "sqlite,postgresql").split(",")
        if "sqlite" in databases:
            report["sqlite"] = summary(run("sqlite", f"sqlite:///{work}/current.db",
                                           f"sqlite:///{work}/baseline.db", tree, work, None))
        if "postgresql" in databases:
            report["postgresql"] = summary(run(
                "postgresql", postgres.url("current"), postgres.url("baseline"), tree, work,
                postmaster))
    finally:
        postgres.remove()
    for database, rows in report.items():
        print(f"{database}:")
        for name, row in rows.items():
            print(f"  {name:34s} {row['calls/s']:7.0f} calls/s {row['generations/s']:8.0f} "
                  f"generations/s  {row['cpu_us_per_generation']:6.0f} µs CPU/generation "
                  f"(server {row['server_us']:.0f} + database {row['database_us']:.0f})  "
                  f"failed {row['failed']}")
        if tree is not None:
            base = rows["baseline updateModelStats"]
            for name in ROWS:
                row = rows[name]
                print(f"  {name}: {row['generations/s'] / base['generations/s']:.2f}× the "
                      f"baseline's generations/s, "
                      f"{row['cpu_us_per_generation'] / base['cpu_us_per_generation']:.2f}× its "
                      "CPU per generation")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
