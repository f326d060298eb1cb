"""`make bench`: the catalog under gunicorn with production settings, driven by wrk.

For SQLite and PostgreSQL, with 3 and with 5,000 models (of mixed kinds), it measures requests/s
and p50/p99 of the workload's functions (quotes included), each beside a floor measured in the
same run (a minimal Flask app answering constant bytes under the same gunicorn settings), checks
that no statistics update was lost, reports worker memory and what each request cost in CPU, by
process (bench/cpu.py), and writes bench/results.md. On PostgreSQL it also measures a write
floor (bench/write_floor.py: the statistics statement alone, one per request), counts the
statements that statistics writes took (group commit), and compares the two again with a slower
commit. Speed is reported, never asserted.

Then bench/steps.py measures what each step of the request pipeline costs a held read under
gunicorn (alone: `python -m bench steps`), and bench/fleet.py a fleet: 3 hosts × 4 workers on
one PostgreSQL, their idle cost to the database and the live push across hosts against one host
(a few minutes; alone: `python -m bench fleet`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import requests  # noqa: E402
from alembic import command  # noqa: E402

import bench.cpu  # noqa: E402
import bench.fleet  # noqa: E402
import bench.imports  # noqa: E402
import bench.sockets  # noqa: E402
import bench.steps  # noqa: E402
from bench.report import write_section  # noqa: E402
from db.revision import alembic_config  # noqa: E402
from tests.servers import Gunicorn, PostgresServer  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "4"))
# This machine's speed drifts, and each run spreads wrk's connections over the workers anew
# (gunicorn's workers race to accept them). Each row alternates floor and function runs, ROUNDS
# times each, and reports medians, so that the ratio compares runs made at the same moment.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
# Every request is still counted by the rate limiter (its cost is measured); it never refuses.
os.environ.setdefault("RATE_LIMIT_PER_MINUTE", str(10**9))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
SIZES = (3, 5_000)
ACTIVE_IN_LARGE = 100  # of the 5,000 models, this many are active (the rest retired)
LOOKUP = {"modelId": "luma/ray-2-720p", "duration": 9, "quality": "high"}
# Every catalog also holds a chat model with tiers and cache prices (so "3 models" is 4), and
# the large one is of mixed kinds: chat, image and video in turn.
CHAT_PRICES = [{"effectiveFrom": None, "components": [
    {"unit": "input_tokens", "price": "1.25", "tiers": [{"start": 200000, "price": "2.5"}]},
    {"unit": "cache_read_tokens", "price": "0.3125",
     "tiers": [{"start": 200000, "price": "0.625"}]},
    {"unit": "output_tokens", "price": "10", "tiers": [{"start": 200000, "price": "15"}]}]}]
IMAGE_PRICES = [{"effectiveFrom": None, "components": [
    {"unit": "image", "price": "0.04"},
    {"unit": "image", "price": "0.08", "when": {"quality": "hd"}}]}]
CHAT_MODEL = {"modelId": "bench/chat-tiered", "name": "Bench chat", "provider": "Bench",
              "contentType": "chat", "prices": CHAT_PRICES, "isActive": True}
CHAT_QUOTE = {"modelId": CHAT_MODEL["modelId"], "usage": {
    "inputTokens": 250_000, "cacheReadTokens": 50_000, "outputTokens": 2_000}}
VIDEO_QUOTE = {"modelId": "luma/ray-2-720p", "usage": {"seconds": 9},
               "options": {"quality": "high"}}
# A count of "{n}" is a number unique to each request (bench/post.lua): never held.
COMPUTED_QUOTE = {**CHAT_QUOTE, "usage": {**CHAT_QUOTE["usage"], "outputTokens": "{n}"}}
# Each row: (name, kind, function, args, floor). Held reads (public queries asked again) are
# answered in front of Flask, so their floor is the raw WSGI one; computed reads and writes run
# the app's code, and are held to the Flask floor.
WORKLOAD = [
    ("getActiveModels", "query", "models:getActiveModels", {}, "raw"),
    ("getModelById", "query", "models:getModelById", {"modelId": "luma/ray-2-720p"}, "raw"),
    ("getCreditCost", "query", "pricing:getCreditCost", LOOKUP, "raw"),
    ("validateModelCapabilities", "query", "models:validateModelCapabilities", LOOKUP, "raw"),
    ("quote (chat, tiers, cache)", "query", "pricing:quote", CHAT_QUOTE, "raw"),
    ("quote (video)", "query", "pricing:quote", VIDEO_QUOTE, "raw"),
    ("quote (chat, computed)", "query", "pricing:quote", COMPUTED_QUOTE, "flask"),
    ("updateModelStats", "mutation", "models:updateModelStats",
     {"modelId": "luma/ray-flash-2-540p", "generationTime": 12.5, "success": True}, "flask"),
    ("recordGenerations (1 event)", "mutation", "models:recordGenerations",
     {"events": [{"modelId": "luma/ray-flash-2-540p", "generationTime": 12.5,
                  "success": True}]}, "flask"),
    ("recordGenerations (100 events)", "mutation", "models:recordGenerations",
     {"events": [{"modelId": "luma/ray-flash-2-540p", "generationTime": 12.5 + i / 10,
                  "success": i % 10 != 0, **({"errorCode": "TIMEOUT"} if i % 10 == 0 else {}),
                  "credits": 150} for i in range(100)]}, "flask"),
]
FLOOR_APPS = {"flask": "bench.floor:app", "raw": "bench.floor:raw"}
# Generations each call of a row records (for the lost-update check and generations/s).
EVENTS = {"recordGenerations (100 events)": 100}
SINGLE_LOOKUPS = ("getModelById", "getCreditCost", "validateModelCapabilities",
                  "quote (chat, tiers, cache)", "quote (video)")


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        return shutil.which("wrk") or sys.exit("wrk did not install")
    sys.exit("wrk is needed: apt-get install -y wrk")


def settle(server: Gunicorn) -> None:
    """Start the server and load it for a second before any run: its workers finish booting
    meanwhile. (A first run measured without this was a third of the next ones, and counted
    their boot's CPU.)"""
    server.start()
    subprocess.run([ensure_wrk(), "-t2", f"-c{CONNECTIONS}", "-d1s", f"{server.url}/healthz"],
                   capture_output=True, check=True)


def wrk(server: Gunicorn, kind: str, body: dict, token: str = "") -> dict:
    """One run against the server: requests/s, p50/p99, answers, and CPU per request."""
    return bench.cpu.measure(partial(_wrk, server.url, kind, body, token),
                             [server.process.pid, *server.worker_pids()])


def _wrk(url: str, kind: str, body: dict, token: str) -> dict:
    result = subprocess.run(
        [ensure_wrk(), "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s",
         str(ROOT / "bench" / "post.lua"), f"{url}/api/{kind}"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BODY": json.dumps(body).replace('"{n}"', "{n}"), "TOKEN": token},
    )
    out = result.stdout

    def number(label: str) -> float:
        return float(re.search(rf"{label}\s+([\d.]+)", out).group(1))

    return {"rps": number("Requests/sec:"), "p50_ms": number("P50") / 1000,
            "p99_ms": number("P99") / 1000, "ok": int(number("SUCCESSES")),
            "failed": int(number("FAILURES"))}


def prepare(url: str, size: int, scope: str = "stats:write") -> str:
    """Migrate, seed and grow the catalog through the mutations; returns a stats token."""
    from engine.runtime import call, system
    from wsgi import create_app

    command.upgrade(alembic_config(url), "head")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        import seeds

        seeds.load()
        if size > 3:
            catalog = call("catalog:exportCatalog", {}, identity=system("bench"),
                           source="bench")
            video = catalog["models"][1]
            kinds = [
                {"contentType": "chat", "provider": "Bench", "prices": CHAT_PRICES},
                {"contentType": "image", "provider": "Bench", "prices": IMAGE_PRICES,
                 "supportedQualities": ["standard", "hd"]},
                video,
            ]
            for i in range(size - 3):
                catalog["models"].append({
                    **kinds[i % 3], "modelId": f"bench/model-{i:05d}", "name": f"Bench {i}",
                    "isDefault": False, "isActive": i < ACTIVE_IN_LARGE - 3})
            call("catalog:applyCatalog", {"catalog": catalog, "reason": "bench"},
                 identity=system("bench"), source="bench")
        call("models:createModel", CHAT_MODEL, identity=system("bench"), source="bench")
        token = call("access:createToken", {"name": "bench", "scopes": [scope]},
                     identity=system("bench"), source="bench")["token"]
    app.extensions["catalog_db"].dispose()
    return token


def generations(url: str) -> int:
    stats = requests.post(f"{url}/api/query", json={"path": "models:getModelStats"},
                          timeout=60).json()["value"]
    return next(s["totalGenerations"] for s in stats if s["modelId"] == "luma/ray-flash-2-540p")


def warm(server: Gunicorn, kind: str, body: dict, token: str) -> None:
    """One call first, so that no run measures the load of a cold catalog."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    requests.post(f"{server.url}/api/{kind}", data=json.dumps(body).replace('"{n}"', "1"),
                  headers=headers, timeout=60)


def alternate(floor: Gunicorn, server: Gunicorn, kind: str, body: dict, token: str) -> dict:
    floors, runs = [], []
    for _ in range(ROUNDS):
        floors.append(wrk(floor, "query", {"path": "x", "args": {}}))
        runs.append(wrk(server, kind, body, token))
    middle, middle_floor = (sorted(each, key=lambda r: r["rps"])[len(each) // 2]
                            for each in (runs, floors))
    return {**middle, "floor_rps": middle_floor["rps"], "floor_cpu": middle_floor["cpu"],
            "ratio": middle["rps"] / middle_floor["rps"],
            "ok": sum(r["ok"] for r in runs), "failed": sum(r["failed"] for r in runs)}


def run_catalog(database: str, url: str, size: int, work: Path,
                floors: dict[str, Gunicorn]) -> dict:
    started = time.monotonic()
    token = prepare(url, size)
    print(f"  {database}, {size} models: prepared in {time.monotonic() - started:.0f} s",
          flush=True)
    server = Gunicorn(ROOT, url, work / f"instance-{database}-{size}", workers=None)
    settle(server)
    try:
        results = {}
        for name, kind, path, args, floor in WORKLOAD:
            warm(server, kind, {"path": path, "args": args}, token)
            before = generations(server.url) if kind == "mutation" else 0
            statements = stats_statements(url) if kind == "mutation" else None
            measured = alternate(floors[floor], server, kind, {"path": path, "args": args},
                                 token)
            measured["floor"] = floor
            if kind == "mutation":
                recorded = (generations(server.url) - before) // EVENTS.get(name, 1)
                # wrk stops with requests in flight: those are recorded but never counted
                # as acknowledged. A lost update is one acknowledged but not recorded.
                measured["recorded"] = recorded
                measured["lost"] = max(0, measured["ok"] - recorded)
                measured["statements_before"] = statements
            results[name] = measured
            print(f"    {name}: {measured['rps']:.0f} req/s", flush=True)
        results["rss_kib"] = server.worker_rss_kib()
        results["token"] = token
    finally:
        server.stop()
    if database == "postgresql":
        # The server has stopped: its counts are in. Each row's statements are those counted
        # from its start to the next row's.
        names = [name for name, kind, *_ in WORKLOAD if kind == "mutation"]
        counts = [results[name].pop("statements_before") for name in names]
        counts.append(stats_statements(url))
        for name, first, last in zip(names, counts, counts[1:], strict=False):
            results[name]["statements"] = last - first
        results["write_floor"] = write_floor(url, work / f"write-floor-{size}", floors["flask"])
    return results


def stats_statements(url: str) -> int | None:
    """PostgreSQL's count of statistics rows updated so far: one per statement."""
    if not url.startswith("postgresql"):
        return None
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        return conn.execute("SELECT n_tup_upd FROM pg_stat_user_tables "
                            "WHERE relname = 'model_stats'").fetchone()[0]


def write_floor_server(url: str, instance: Path) -> Gunicorn:
    """bench/write_floor.py on the catalog at `url`: the statistics statement alone."""
    return Gunicorn(ROOT, url, instance, workers=None, app="bench.write_floor:app",
                    env={"WRITE_FLOOR_URL": url})


def write_floor(url: str, instance: Path, floor: Gunicorn) -> dict:
    """bench/write_floor.py: the app's statistics statement alone, one per request."""
    server = write_floor_server(url, instance)
    settle(server)
    try:
        measured = alternate(floor, server, "mutation", {"path": "x", "args": {}}, "")
    finally:
        server.stop()
    print(f"    write floor: {measured['rps']:.0f} req/s", flush=True)
    return measured


SLOW_COMMIT_US = 1000


def slow_commit(postgres: PostgresServer, url: str, token: str, work: Path) -> dict:
    """updateModelStats against the write floor when each commit takes SLOW_COMMIT_US longer
    (commit_delay, as a disk that is slower to flush, e.g. network storage, would)."""
    def delay(microseconds: int) -> None:
        with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET commit_delay = {microseconds}")
            conn.execute("ALTER SYSTEM SET commit_siblings = 0")
            conn.execute("SELECT pg_reload_conf()")

    name, kind, path, args, _ = next(row for row in WORKLOAD if row[0] == "updateModelStats")
    app = Gunicorn(ROOT, url, work / "instance-slow-commit", workers=None)
    floor = write_floor_server(url, work / "write-floor-slow-commit")
    delay(SLOW_COMMIT_US)
    try:
        settle(app)
        settle(floor)
        measured = alternate(floor, app, kind, {"path": path, "args": args}, token)
    finally:
        app.stop()
        floor.stop()
        delay(0)
    print(f"    slow commit: {name} {measured['rps']:.0f} req/s, write floor "
          f"{measured['floor_rps']:.0f} req/s", flush=True)
    return measured


def compare_sizes(database: str, catalogs: dict[int, tuple[str, str]], work: Path) -> dict:
    """Single lookups on the large catalog against the small one, both served at once and
    measured run by run in turn, so that the machine's drift falls on both alike."""
    servers = {size: Gunicorn(ROOT, url, work / f"instance-{database}-{size}-sizes",
                              workers=None) for size, (url, _) in catalogs.items()}
    for server in servers.values():
        settle(server)
    try:
        ratios = {}
        for name, kind, path, args, _ in WORKLOAD:
            if name not in SINGLE_LOOKUPS:
                continue
            body = {"path": path, "args": args}
            for size, server in servers.items():
                warm(server, kind, body, catalogs[size][1])
            rps: dict[int, list[float]] = {size: [] for size in servers}
            for _ in range(ROUNDS):
                for size, server in servers.items():
                    rps[size].append(wrk(server, kind, body, catalogs[size][1])["rps"])
            small, large = min(SIZES), max(SIZES)
            ratios[name] = statistics.median(rps[large]) / statistics.median(rps[small])
            print(f"    {database} {name}: {large} against {small} models "
                  f"{ratios[name]:.2f}", flush=True)
        return ratios
    finally:
        for server in servers.values():
            server.stop()


LIVE_SUBSCRIBERS = 200
LIVE_CHANGES = 10


def run_live(url: str, work: Path) -> dict:
    """200 subscribers to one quote; a price change; time until each has the new value."""
    token = prepare(url, 3, "catalog:write")
    # Each socket holds a thread, and the kernel may hand most sockets to one worker.
    server = Gunicorn(ROOT, url, work / "instance-live", workers=2,
                      env={"SYNC_SOCKETS_PER_WORKER": str(LIVE_SUBSCRIBERS),
                           "SYNC_SOCKETS_PER_ADDRESS": str(LIVE_SUBSCRIBERS)})
    server.start()
    try:
        idle = sum(server.worker_rss_kib())
        node = subprocess.Popen(
            ["node", "live_bench.mjs", server.url, token, str(LIVE_SUBSCRIBERS),
             str(LIVE_CHANGES)],
            cwd=ROOT / "tests" / "convex_client", stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True)
        assert json.loads(node.stdout.readline())["ready"]
        connected = sum(server.worker_rss_kib())
        node.stdin.write("go\n")
        node.stdin.flush()
        rounds = json.loads(node.stdout.readline())["rounds"]
        node.wait(60)
    finally:
        server.stop()
    every = sorted(ms for round_ in rounds for ms in round_)
    last = sorted(max(round_) for round_ in rounds)
    return {
        "p50": every[len(every) // 2], "p99": every[int(len(every) * 0.99)],
        "last_p50": last[len(last) // 2], "last_max": last[-1],
        "kib_per_subscription": (connected - idle) / LIVE_SUBSCRIBERS,
    }


def run_sockets(work: Path) -> dict:
    """bench/sockets.py: what an idle socket holds, on one worker (SQLite)."""
    url = f"sqlite:///{work}/sockets.db"
    prepare(url, 3)

    def server(env: dict) -> Gunicorn:
        started = Gunicorn(ROOT, url, work / "instance-sockets", workers=1, env=env)
        started.start()
        return started

    try:
        result = bench.sockets.run(server)
    except Exception as error:  # noqa: BLE001 - report it beside the other figures
        result = {"error": repr(error)}
    print(f"sockets: {result}", flush=True)
    return result


def sockets_only() -> None:
    """`python -m bench sockets`: the idle-socket section alone, rewritten in results.md."""
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        lines = bench.sockets.render(run_sockets(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(lines)
    print("\n".join(lines))


def main() -> None:
    if sys.argv[1:] == ["sockets"]:
        sockets_only()
        return
    if sys.argv[1:2] == ["fleet"]:  # three hosts on one PostgreSQL (bench/fleet.py)
        bench.fleet.main(sys.argv[2:])
        return
    if sys.argv[1:] == ["steps"]:  # what each step of the pipeline costs (bench/steps.py)
        bench.steps.main()
        return
    ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    floor_servers = {kind: Gunicorn(ROOT, "sqlite://", work / f"floor-{kind}", workers=None,
                                    app=app) for kind, app in FLOOR_APPS.items()}
    floor = {}
    for kind, server in floor_servers.items():
        settle(server)
        floor[kind] = wrk(server, "query", {"path": "x", "args": {}})
        print(f"{kind} floor: {floor[kind]['rps']:.0f} req/s", flush=True)
    postgres = PostgresServer(durable=True)
    postgres.start()
    runs: dict[tuple[str, int], dict] = {}
    sizes: dict[str, dict] = {}
    try:
        urls = {"sqlite": {}, "postgresql": {}}
        for size in SIZES:
            urls["sqlite"][size] = f"sqlite:///{work}/bench-{size}.db"
            postgres.create_database(f"bench{size}")
            urls["postgresql"][size] = postgres.url(f"bench{size}")
            for database in urls:
                runs[(database, size)] = run_catalog(
                    database, urls[database][size], size, work, floor_servers)
        slow = slow_commit(postgres, urls["postgresql"][3], runs[("postgresql", 3)]["token"],
                           work)
        for database, by_size in urls.items():
            sizes[database] = compare_sizes(database, {
                size: (url, runs[(database, size)]["token"]) for size, url in by_size.items()},
                work)
        try:
            live = run_live(f"sqlite:///{work}/live.db", work)
        except Exception as error:  # noqa: BLE001 - report it beside the other figures
            live = {"error": repr(error)}
        print(f"live: {live}", flush=True)
        sockets = run_sockets(work)
        imported = run_imports(work, postgres)
    finally:
        for server in floor_servers.values():
            server.stop()
        postgres.remove()
        shutil.rmtree(work, ignore_errors=True)
    report = render(floor, runs, sizes, slow, live) + render_imports(imported)
    report += "\n" + "\n".join(bench.sockets.render(sockets)) + "\n"
    (ROOT / "bench" / "results.md").write_text(report)
    print(report)
    bench.steps.main()  # sections of their own: the pipeline's steps, and a fleet
    bench.fleet.main([])


def run_imports(work: Path, postgres: PostgresServer) -> dict:
    """bench/imports.py on both databases: the LiteLLM map and genai-prices imported (plan,
    apply), reads at that size, and an export -> apply round trip. In-process, as the CLI."""
    figures = {}
    for database in ("sqlite", "postgresql"):
        if database == "sqlite":
            urls = {name: f"sqlite:///{work}/imports-{name}.db" for name in ("import", "roundtrip")}
        else:
            for name in ("import", "roundtrip"):
                postgres.create_database(f"imports_{name}")
            urls = {name: postgres.url(f"imports_{name}") for name in ("import", "roundtrip")}
        try:
            figures[database] = bench.imports.measure(urls)
        except Exception as error:  # noqa: BLE001 - report it beside the other figures
            figures[database] = {"error": {"failed": repr(error)}}
        print(f"imports, {database}: done", flush=True)
    return figures


def render_imports(figures: dict) -> str:
    found = "the whole map" if bench.imports.LITELLM_MAP.exists() else (
        "no map (set LITELLM_MAP to a model_prices_and_context_window.json)")
    lines = ["", f"Imports at catalog scale (`bench/imports.py`, in-process as the CLI runs them): "
             f"LiteLLM's {bench.imports.LITELLM_MAP.name}, {found}, then genai-prices; each "
             "converted, planned (no lock), applied (one transaction) and planned again; at "
             "that size listModels by each filter (ms per call in the function) and "
             "getActiveModels with every model on; then the catalog exported and applied to a "
             "fresh database, and again. Peak RSS: the process's resident memory during the "
             "step, sampled every 5 ms.", "", *bench.imports.HEADER]
    for database, rows in figures.items():
        lines += bench.imports.render(database, rows)
    return "\n".join(lines) + "\n"


def render(floor: dict, runs: dict, sizes: dict, slow: dict, live: dict) -> str:
    cores = os.cpu_count()
    lines = [
        "# Benchmark results",
        "",
        f"`make bench`, {time.strftime('%Y-%m-%d')}: gunicorn with `deploy/gunicorn.conf.py` "
        f"(gthread) on {cores} cores; wrk from the same machine, 2 threads, {CONNECTIONS} "
        f"connections. Each row alternates {ROUNDS} runs of {SECONDS} s of the floor and of the "
        "function and reports the median run and its ratio to the median floor beside it. "
        "PostgreSQL 15 with fsync and synchronous commit on. Requests accept gzip, as browsers, "
        "fetch and the Convex client do (answers over 1 KiB come compressed). "
        "The rate limiter counts every request (its limit set out of reach, so far from it the "
        "hits are shared in batches every 0.1 s). Every request logs its JSON line. "
        f"The 5,000-model catalog has {ACTIVE_IN_LARGE} active models.",
        "",
        "Two floors (bench/floor.py), same gunicorn settings, answering constant bytes: "
        "*raw*, a bare WSGI callable, the ceiling of held answers (public queries asked again, "
        "answered in front of Flask); *flask*, a minimal Flask app, the floor of computed "
        "reads (each request's answer new) and writes. Each row is held to its own floor. "
        "First runs: " + "; ".join(
            f"{kind} **{f['rps']:.0f} req/s**, {f['cpu']['machine']:.0f} µs of CPU per request, "
            f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms" for kind, f in floor.items())
        + f"; raw/flask {floor['raw']['rps'] / floor['flask']['rps']:.2f}.",
        "",
        "| database | models | function | req/s | floor | floor req/s | ratio | CPU µs/req | "
        "floor CPU µs/req | p50 ms | p99 ms | failed | acknowledged / recorded | lost |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (database, size), results in runs.items():
        for name, *_ in WORKLOAD:
            r = results[name]
            lines.append(
                f"| {database} | {size} | {name} | {r['rps']:.0f} | {r['floor']} | "
                f"{r['floor_rps']:.0f} | "
                f"{r['ratio']:.2f} | {r['cpu']['machine']:.0f} | {r['floor_cpu']['machine']:.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['failed']} | "
                + (f"{r['ok']} / {r['recorded']} | {r['lost']} |" if "lost" in r else " | |"))
    lines += targets(runs)
    lines += ["", "The write floor on PostgreSQL (`bench/write_floor.py`: a minimal Flask app that "
              "runs the app's own statistics statement, the fleet clock's tick included, on a raw "
              "psycopg connection in autocommit, "
              "one per request, and nothing else; same gunicorn settings, measured the same way): "
              "what one durable statement per request allows at best.", ""]
    for (_, size), results in runs.items():
        if "write_floor" in results:
            wf, stats = results["write_floor"], results["updateModelStats"]
            lines.append(f"- {size} models: write floor {wf['rps']:.0f} req/s, "
                         f"{wf['ratio']:.2f} of the floor; updateModelStats "
                         f"{stats['rps']:.0f} req/s, {stats['rps'] / wf['rps']:.2f} of the "
                         f"write floor, with {stats['recorded'] / stats['statements']:.2f} "
                         "generations per statement (group commit, engine/tally.py)")
    lines += ["", "Recording generations: `recordGenerations` with one event, and with 100 events "
              "per call (generations/s = calls/s × 100), against `updateModelStats` in the same "
              "run (each records the model's totals and its minute's usage row):", ""]
    for (database, size), results in runs.items():
        stats = results["updateModelStats"]
        one, hundred = (results["recordGenerations (1 event)"],
                        results["recordGenerations (100 events)"])
        lines.append(f"- {database}, {size} models: one event {one['rps']:.0f} calls/s, "
                     f"{one['rps'] / stats['rps']:.2f} of updateModelStats "
                     f"({stats['rps']:.0f}/s); 100 events {hundred['rps']:.0f} calls/s, "
                     f"{hundred['rps'] * 100:.0f} generations/s, "
                     f"{hundred['rps'] * 100 / stats['rps']:.1f}× updateModelStats; CPU per "
                     f"generation {hundred['cpu']['machine'] / 100:.0f} against "
                     f"{stats['cpu']['machine']:.0f} µs")
    lines += what_limits_it(runs)
    lines += ["", f"With a slower commit (PostgreSQL's commit_delay at {SLOW_COMMIT_US} µs, as "
              "a disk slower to flush would give), 3 models, updateModelStats against the write "
              f"floor under the same delay: **{slow['rps']:.0f} against "
              f"{slow['floor_rps']:.0f} req/s, {slow['ratio']:.2f}**; p50 {slow['p50_ms']:.2f} "
              f"ms, p99 {slow['p99_ms']:.2f} ms."]
    lines += ["", "Single-model lookups, 5,000 models against 3: both catalogs served at once "
              f"and measured in turn, {ROUNDS} runs each, medians divided (1.00 means no cost "
              "from the catalog's size; from the table above, each against its own floor, "
              "in brackets):", ""]
    for database in ("sqlite", "postgresql"):
        for name in SINGLE_LOOKUPS:
            small, large = runs[(database, 3)][name], runs[(database, max(SIZES))][name]
            lines.append(f"- {database} {name}: {sizes[database][name]:.2f} "
                         f"({large['ratio'] / small['ratio']:.2f})")
    lines += ["", "Worker memory (RSS, MiB, per worker):", ""]
    for (database, size), results in runs.items():
        rss = ", ".join(f"{kib / 1024:.0f}" for kib in results["rss_kib"])
        lines.append(f"- {database}, {size} models: {rss}")
    if "error" in live:
        lines += ["", f"Live queries: the run failed: {live['error']}"]
        return "\n".join(lines) + "\n"
    lines += [
        "",
        f"Live queries (SQLite, 2 workers): {LIVE_SUBSCRIBERS} ConvexClients subscribed to one "
        f"quote; {LIVE_CHANGES} price changes through the HTTP API, one at a time. Time from "
        f"sending the change to each subscriber holding the new value: p50 "
        f"{live['p50']:.0f} ms, p99 {live['p99']:.0f} ms; until the last subscriber has it: "
        f"median {live['last_p50']:.0f} ms, worst {live['last_max']:.0f} ms. Memory per open "
        f"subscription (worker RSS growth / subscribers): "
        f"{live['kib_per_subscription']:.0f} KiB.",
    ]
    return "\n".join(lines) + "\n"


TARGET = 0.80  # each row's ratio to its own floor that the targets ask for


def targets(runs: dict) -> list[str]:
    """The speed targets, from this run, by database: held reads against the raw floor,
    computed reads against the Flask floor, updateModelStats against the write floor."""
    def spread(ratios: list[float]) -> str:
        return (f"median {statistics.median(ratios):.2f}, {min(ratios):.2f}–{max(ratios):.2f}, "
                f"{sum(r >= TARGET for r in ratios)} of {len(ratios)} at {TARGET:.2f} or more")

    lines = ["", "The targets, from the table above (each row against its own floor, both "
             "catalog sizes; one row moves by about ±0.05 from one run to the next, so the "
             "median over rows is the steadier figure):", ""]
    for database in dict.fromkeys(database for database, _ in runs):
        mine = [results for (each, _), results in runs.items() if each == database]
        for floor, what in (("raw", "held reads against the raw floor"),
                            ("flask", "computed reads against the Flask floor")):
            ratios = [results[name]["ratio"] for results in mine
                      for name, kind, *_, row_floor in WORKLOAD
                      if kind == "query" and row_floor == floor]
            lines.append(f"- {database}, {what}: {spread(ratios)}")
        writes = [results["updateModelStats"]["rps"] / results["write_floor"]["rps"]
                  for results in mine if "write_floor" in results]
        if writes:
            lines.append(f"- {database}, updateModelStats against the write floor: "
                         f"{spread(writes)}")
    return lines


def what_limits_it(runs: dict) -> list[str]:
    """CPU per request by process, for every row: where each request's time goes."""
    lines = ["", "What limits it: CPU per request (bench/cpu.py), in µs of one core, median runs. "
             "*machine* is every process and the kernel; *server* the app's (or floor's) gunicorn "
             "processes; *database* PostgreSQL's processes; *rest* the difference (wrk, the "
             "kernel's own threads). *busy*: the share of the cores' time the machine was busy "
             "in that run. When it is near 100%, requests/s is the cores' time over the "
             "machine's CPU per request, and a ratio to the floor is the floor's CPU per request "
             "over the function's: 0.50 allows a request twice the floor's CPU.", "",
             "| database | models | run | machine | server user | server system | database "
             "| rest | busy |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (database, size), results in runs.items():
        rows = [("flask floor", results["updateModelStats"]["floor_cpu"]),
                ("raw floor", results["getModelById"]["floor_cpu"])]
        rows += [(name, results[name]["cpu"]) for name, *_ in WORKLOAD]
        if "write_floor" in results:
            rows.append(("write floor", results["write_floor"]["cpu"]))
        for name, cpu in rows:
            rest = cpu["machine"] - cpu["server_user"] - cpu["server_system"] - cpu["database"]
            lines.append(f"| {database} | {size} | {name} | {cpu['machine']:.0f} | "
                         f"{cpu['server_user']:.0f} | {cpu['server_system']:.0f} | "
                         f"{cpu['database']:.0f} | {rest:.0f} | {cpu['busy']:.0%} |")
    return lines


if __name__ == "__main__":
    main()
