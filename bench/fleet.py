"""A fleet on one PostgreSQL: what idle hosts cost the database, and how fast a change made
through one host reaches live subscribers on another, against one on the writer's own host.

- Idle: HOSTS hosts × WORKERS workers (separate gunicorn masters, each with its own marks and
  temporary folder). Each host serves some requests and a mutation, one worker serves a live
  subscriber that then leaves, then nothing happens: the database's committed transactions
  (pg_stat_database.xact_commit) and the app's statements (pg_stat_statements) are counted
  over IDLE_SECONDS; with the monitor's rounds (every 10 s in each worker), and without.
  `--root DIR` measures another checkout the same way (the code before the push channel:
  `git archive <commit>`).
- Push: a subscriber on host A and one on host B; CHANGES price changes are made through host
  A over HTTP, and each subscriber's delay from the mutation's start to its new value is timed.

`python -m bench.fleet [--root DIR]` (or `python -m bench fleet`) prints the figures and
rewrites the fleet section of bench/results.md (not with --root: then it only prints).
Speed is reported, never asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import requests

from bench.report import write_section
from tests.servers import PostgresServer, start_hosts
from tests.sync_client import SyncClient

ROOT = Path(__file__).resolve().parent.parent
HOSTS, WORKERS = 3, 4
SETTLE_SECONDS = 5  # after the traffic: connections idle, statistics flushed
IDLE_SECONDS = 10
CHANGES = 60
MODEL = "luma/ray-2-720p"
QUOTE = {"modelId": MODEL, "duration": 5, "quality": "high"}
SECTION = "## A fleet of hosts on one PostgreSQL"

# Migrate, seed and make a token with the checkout's own code (run in that checkout).
PREPARE = """
import json, sys
from alembic import command
from db.revision import alembic_config
from engine.runtime import call, system
from wsgi import create_app
import seeds
url = sys.argv[1]
command.upgrade(alembic_config(url), "head")
app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x"})
with app.app_context():
    seeds.load()
    token = call("access:createToken", {"name": "bench", "scopes": ["catalog:write"]},
                 identity=system("bench"), source="bench")["token"]
print(json.dumps({"token": token}))
"""


def prepare(root: Path, url: str, work: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(root), "INSTANCE_PATH": str(work / "prepare")}
    out = subprocess.run([sys.executable, "-c", PREPARE, url], cwd=root, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["token"]


def committed(postgres: PostgresServer, database: str) -> tuple[int, dict[str, int]]:
    """The database's committed transactions, and the calls of each statement so far."""
    with psycopg.connect(postgres.dsn(database), autocommit=True) as conn:
        xacts = conn.execute("SELECT xact_commit FROM pg_stat_database "
                             "WHERE datname = current_database()").fetchone()[0]
        calls = dict(conn.execute(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), sum(calls)::bigint "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) GROUP BY 1").fetchall())
    return xacts, calls


def traffic(hosts, token: str) -> None:
    """What a host sees before it goes idle: queries on (nearly) every worker, a mutation,
    and one live subscriber that leaves."""
    headers = {"Authorization": f"Bearer {token}"}
    for host in hosts:
        with requests.Session() as http:
            for _ in range(12 * WORKERS):
                http.post(f"{host.url}/api/query", json={"path": "models:getActiveModels"},
                          timeout=10)
            http.post(f"{host.url}/api/mutation", headers=headers, timeout=10, json={
                "path": "models:updateModel",
                "args": {"modelId": MODEL, "patch": {"description": f"seen by {host.port}"}}})
    client = SyncClient(hosts[0].url)
    try:
        client.connect()
        client.subscribe(0, "pricing:getCreditCost", QUOTE)
    finally:
        client.close()


def idle_rate(postgres: PostgresServer, database: str) -> dict:
    """Per second while nothing happens: committed transactions (which also counts
    autovacuum's), and the app's statements (pg_stat_statements), the busiest named."""
    time.sleep(SETTLE_SECONDS)
    xacts, calls = committed(postgres, database)
    time.sleep(IDLE_SECONDS)
    xacts_after, calls_after = committed(postgres, database)
    ours = ("pg_stat_",)  # the measurement's own statements
    moved = {query: count - calls.get(query, 0) for query, count in calls_after.items()
             if not any(word in query for word in ours) and count > calls.get(query, 0)}
    return {"transactions": (xacts_after - xacts - 1) / IDLE_SECONDS,
            "statements": sum(moved.values()) / IDLE_SECONDS,
            "busiest": dict(sorted(moved.items(), key=lambda kv: -kv[1])[:8])}


def push_delays(hosts, token: str) -> dict[str, list[float]]:
    """Milliseconds from a mutation's start on host A to the new value at a subscriber on A
    (one host) and on B (across hosts)."""
    clients = {"one host": SyncClient(hosts[0].url), "across hosts": SyncClient(hosts[1].url)}
    delays: dict[str, list[float]] = {name: [] for name in clients}
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for client in clients.values():
            client.connect()
            client.subscribe(0, "pricing:getCreditCost", QUOTE)
        with requests.Session() as http:
            for change in range(CHANGES):
                cost = round(0.5 + (change + 1) / 1000, 3)
                started = time.perf_counter()
                answer = http.post(f"{hosts[0].url}/api/mutation", headers=headers, timeout=10,
                                   json={"path": "models:updateModel", "args": {
                                       "modelId": MODEL, "patch": {"costPerSecond": cost}}})
                assert answer.json()["status"] == "success", answer.text
                for name, client in clients.items():
                    client.until(lambda m, cost=cost: m["type"] == "Transition" and any(
                        mod.get("value", {}).get("costPerSecond") == cost
                        for mod in m["modifications"]), timeout=10)
                    delays[name].append((time.perf_counter() - started) * 1000)
    finally:
        for client in clients.values():
            client.close()
    return delays


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def run(root: Path = ROOT, push: bool = True) -> dict:
    work = Path(tempfile.mkdtemp(prefix="catalog-fleet-"))
    postgres = PostgresServer(durable=True,
                              settings={"shared_preload_libraries": "pg_stat_statements"})
    postgres.start()
    hosts = []
    try:
        postgres.create_database("fleet")
        with psycopg.connect(postgres.dsn("fleet"), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        url = postgres.url("fleet")
        token = prepare(root, url, work)
        result: dict = {"root": str(root), "hosts": HOSTS, "workers": WORKERS}
        for monitor in ("10", "0"):  # the monitor's rounds (MONITOR_INTERVAL_SECONDS), and none
            hosts = start_hosts(root, url, work / f"monitor{monitor}", HOSTS, workers=WORKERS,
                                env={"MONITOR_INTERVAL_SECONDS": monitor})
            traffic(hosts, token)
            result[f"idle, monitor every {monitor} s"] = idle_rate(postgres, "fleet")
            if monitor != "0":  # the last hosts stay up for the push figures
                for host in hosts:
                    host.stop()
        if push:
            delays = push_delays(hosts, token)
            result["push_ms"] = {name: {"p50": statistics.median(values),
                                        "p99": percentile(values, 0.99)}
                                 for name, values in delays.items()}
    finally:
        for host in hosts:
            host.stop()
        postgres.remove()
        shutil.rmtree(work, ignore_errors=True)
    return result


def render(after: dict) -> list[str]:
    lines = [SECTION, "",
             f"{after['hosts']} hosts × {after['workers']} workers (separate gunicorn masters) "
             "on one PostgreSQL, `python -m bench.fleet`. Idle: after traffic and one live "
             f"subscriber, over {IDLE_SECONDS} s: committed transactions/s "
             "(pg_stat_database.xact_commit, autovacuum's included) and the app's statements/s "
             "(pg_stat_statements).", ""]
    for name, idle in after.items():
        if name.startswith("idle"):
            lines.append(f"- {name}: {idle['transactions']:.1f} transactions/s, "
                         f"{idle['statements']:.1f} statements/s")
    for name, figures in after.get("push_ms", {}).items():
        lines.append(f"- a price change through host A reaches a subscriber ({name}): "
                     f"p50 {figures['p50']:.1f} ms, p99 {figures['p99']:.1f} ms")
    return lines


def main(argv: list[str]) -> None:
    if argv[:1] == ["--root"] and len(argv) == 2:
        print(json.dumps(run(Path(argv[1]).resolve()), indent=2))
        return
    result = run()
    print(json.dumps(result, indent=2))
    lines = render(result)
    print("\n".join(lines))
    write_section(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
