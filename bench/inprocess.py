"""`python -m bench.inprocess [--postgres]`: what one request costs inside the app.

The app and the floor are called directly as WSGI applications, with no server and no network,
so the figures are the Python work of a request alone: wall time and CPU time per request, the
best of 5 runs. Then the single lookups at 10,000 models against 3, the two catalogs measured
in turn. The catalogs are fresh SQLite files, or with --postgres databases on a durable
throwaway PostgreSQL server. Speed is reported, never asserted.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RATE_LIMIT_PER_MINUTE", str(10**9))
os.environ.setdefault("CATALOG_MARKS_DIR", tempfile.mkdtemp(prefix="catalog-marks-"))

import bench.floor  # noqa: E402
from bench.__main__ import LOOKUP, SINGLE_LOOKUPS, SIZES, WORKLOAD, prepare  # noqa: E402
from wsgi import create_app  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "5000"))
NUMBERS = itertools.count(1)  # "{n}": never the same twice in a process, so never held


def catalog_app(url: str, size: int):
    token = prepare(url, size)  # migrated, seeded, grown to `size` models
    return app_on(url), token


def app_on(url: str):
    """The app on a prepared catalog, its log lines written to /dev/null."""
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "RATE_LIMIT_STORAGE":
                      str(Path(tempfile.mkdtemp(prefix="catalog-inprocess-")) / "limits")})
    logging.getLogger("catalog").handlers[0].fd = os.open(os.devnull, os.O_WRONLY)
    return app


def per_request(app, kind: str, body: dict, token: str | None, count: int) -> tuple[float, float]:
    template = json.dumps(body).replace('"{n}"', "{n}")  # "{n}": a new number each request
    bodies = [template.replace("{n}", str(next(NUMBERS))).encode() for _ in range(count)] \
        if "{n}" in template else [template.encode()] * count
    raw = bodies[0]
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": f"/api/{kind}", "SERVER_NAME": "bench",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
               "wsgi.errors": sys.stderr}
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    wall, cpu = time.perf_counter(), time.process_time()
    for raw in bodies:
        b"".join(app({**environ, "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw)},
                     lambda *_: None))
    return ((time.perf_counter() - wall) / count * 1e6, (time.process_time() - cpu) / count * 1e6)


def best(app, kind: str, body: dict, token: str | None) -> tuple[float, float]:
    per_request(app, kind, body, token, 200)  # warm
    return min(per_request(app, kind, body, token, REQUESTS // 5) for _ in range(5))


def main() -> None:
    if "--postgres" not in sys.argv[1:]:
        folder = tempfile.mkdtemp(prefix="catalog-inprocess-")
        measure("sqlite", {size: f"sqlite:///{folder}/catalog-{size}.db" for size in SIZES})
        return
    from tests.servers import PostgresServer

    postgres = PostgresServer(durable=True)
    postgres.start()
    try:
        for size in SIZES:
            postgres.create_database(f"catalog{size}")
        measure("postgresql", {size: postgres.url(f"catalog{size}") for size in SIZES})
    finally:
        postgres.remove()


def measure(database: str, urls: dict[int, str]) -> None:
    """Every function beside the floor; then single lookups at 10,000 models against 3."""
    apps = {size: catalog_app(url, size) for size, url in urls.items()}
    app, token = apps[min(SIZES)]
    rows = [("flask floor", *best(bench.floor.app, "query", {"path": "x", "args": {}}, None)),
            ("raw floor", *best(bench.floor.raw, "query", {"path": "x", "args": {}}, None))]
    rows.append(("getCreditCost, anonymous",
                 *best(app, "query", {"path": "pricing:getCreditCost", "args": LOOKUP}, None)))
    for name, kind, path, args, _ in WORKLOAD:
        rows.append((name, *best(app, kind, {"path": path, "args": args}, token)))
    print(f"{database}, {min(SIZES)} models, {REQUESTS} requests each, best of 5:")
    for name, wall, cpu in rows:
        print(f"  {name:28s} wall {wall:7.1f} us   cpu {cpu:7.1f} us")
    print(f"{database}, the pipeline's steps (wire/http.py), CPU per call, best of 5:")
    for name, cpu in steps(app, token):
        print(f"  {name:28s} cpu {cpu:7.1f} us")
    print(f"{database}, single lookups, CPU per request, catalogs in turn, best of 5 each:")
    for name, kind, path, args, _ in WORKLOAD:
        if name in SINGLE_LOOKUPS:
            body = {"path": path, "args": args}
            turns: dict[int, list[float]] = {size: [] for size in apps}
            for _ in range(5):
                for size, (each, each_token) in apps.items():
                    turns[size].append(per_request(each, kind, body, each_token,
                                                   REQUESTS // 5)[1])
            cpu = {size: min(values) for size, values in turns.items()}
            print(f"  {name:28s} " + "   ".join(f"{size} models {us:6.1f} us"
                                                for size, us in cpu.items())
                  + f"   ratio {cpu[min(SIZES)] / cpu[max(SIZES)]:.2f}")
    for each, _ in apps.values():
        each.extensions["catalog_db"].dispose()


def steps(app, token: str) -> list[tuple[str, float]]:
    """What each step of the pipeline costs on its own, for a held read with a token: the
    parts a request's CPU is made of, beside the whole rows above."""
    from engine.observe import CallNote, record, request_id
    from wire.callers import identify, limit
    from wire.http import delivery

    answers = app.extensions["answers"]
    raw = json.dumps({"path": "pricing:getCreditCost", "args": LOOKUP}).encode()
    per_request(app, "query", {"path": "pricing:getCreditCost", "args": LOOKUP}, token, 1)
    identity = identify(app, f"Bearer {token}", "127.0.0.1")
    answer = answers.held("query", None, raw)
    note = CallNote("pricing:getCreditCost", "success", None, identity.name)
    request_log = logging.getLogger("catalog.request")

    def metrics_only() -> None:
        request_log.disabled = True
        try:
            record("id", "POST", "/api/query", 200, 0.001, note)
        finally:
            request_log.disabled = False

    parts = [
        ("request id", lambda: request_id("")),
        ("token check", lambda: identify(app, f"Bearer {token}", "127.0.0.1")),
        ("rate limit", lambda: limit(app, identity, "127.0.0.1")),
        ("held answer lookup", lambda: answers.held("query", None, raw)),
        ("delivery (headers)", lambda: delivery(answer, identity, "gzip, deflate")),
        ("metrics", metrics_only),
        ("metrics + log line", lambda: record("id", "POST", "/api/query", 200, 0.001, note)),
    ]
    costs = []
    for name, step in parts:
        runs = []
        for _ in range(5):
            started = time.process_time()
            for _ in range(REQUESTS):
                step()
            runs.append((time.process_time() - started) / REQUESTS * 1e6)
        costs.append((name, min(runs)))
    return costs


if __name__ == "__main__":
    main()
