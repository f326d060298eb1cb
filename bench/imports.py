"""`python -m bench.imports [--postgres] [--map FILE]`: a public price map imported at catalog
scale, and an export -> apply round trip; `make bench` runs the same rows (`measure`).

On a fresh, migrated and seeded catalog (a SQLite file, or a database on a throwaway durable
PostgreSQL with --postgres), through the same calls the CLI makes, as the operator:

1. LiteLLM's whole map (`LITELLM_MAP`, default .venv/litellm-maps/litellm-1.110.2.json, which
   `make install-test` fetches) and genai-prices' data: converted (pure, outside any
   transaction), planned (`catalog:planImport`: a read, no lock), applied
   (`catalog:importPrices`: planned before the writers' lock, written in one transaction), then
   planned again (nothing left to do);
2. at that size (5,600 models): `models:listModels` by each filter, and `getActiveModels` once
   every model is switched on;
3. the catalog exported and applied to a fresh database (every model created), then applied
   again (nothing changes).

Each step's wall time and the process's peak resident memory during it (sampled every 5 ms
from /proc) are printed; the statements each apply sent are counted. Speed is reported, never
asserted.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CATALOG_MARKS_DIR", tempfile.mkdtemp(prefix="catalog-marks-"))

LITELLM_MAP = Path(os.environ.get("LITELLM_MAP", Path(__file__).parent.parent
                                  / ".venv/litellm-maps/litellm-1.110.2.json"))


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def measured(figures: dict, name: str):
    """Wall time and peak RSS (MiB) of the block, sampled by a thread."""
    peak, start_rss, done = [rss_kib()], rss_kib(), threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        figures[name] = {"seconds": seconds, "peak_mib": max(peak[0], rss_kib()) / 1024,
                         "start_mib": start_rss / 1024}


@contextmanager
def counting_statements(engine):
    """The statements sent to the database in the block (a list of one count)."""
    from sqlalchemy import event

    count = [0]

    def before(*_args, **_kw) -> None:
        count[0] += 1

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _app(url: str):
    from alembic import command

    from db.revision import alembic_config
    from wsgi import create_app

    command.upgrade(alembic_config(url), "head")
    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})


def measure(urls: dict[str, str]) -> dict:
    """Figures for one database: `urls` has "import" and "roundtrip" (two fresh databases)."""
    import seeds
    from engine.runtime import call, system
    from functions import sources

    who = {"identity": system("bench"), "source": "bench"}
    figures: dict = {}
    app = _app(urls["import"])
    engine = app.extensions["catalog_db"].engine
    with app.app_context():
        seeds.load()
        runs = [("genai-prices", None)]
        if LITELLM_MAP.exists():
            runs.insert(0, ("litellm", json.loads(LITELLM_MAP.read_text())))
        for source, data in runs:
            with measured(figures, f"{source} convert"):
                converted = sources.convert(source, data)
            args = converted.args()
            figures[f"{source} source"] = {
                "entries": converted.entries, "priced": converted.priced,
                "models": len(converted.models),
                "not_representable_priced": sum(1 for i in converted.not_representable
                                                if i["priced"])}
            with measured(figures, f"{source} plan"):
                plan = call("catalog:planImport", args, **who)
            figures[f"{source} plan"]["counts"] = plan["counts"]
            with measured(figures, f"{source} apply"), counting_statements(engine) as count:
                applied = call("catalog:importPrices", {**args, "reason": "bench"}, **who)
            figures[f"{source} apply"].update(statements=count[0], counts=applied["counts"])
            with measured(figures, f"{source} plan again"):
                again = call("catalog:planImport", args, **who)
            figures[f"{source} plan again"]["counts"] = again["counts"]
        with measured(figures, "export"):
            catalog = call("catalog:exportCatalog", {}, **who)
        figures["reads at this size"] = reads(app, who)
    app.extensions["catalog_db"].dispose()
    figures["export"]["models"] = len(catalog["models"])
    fresh = _app(urls["roundtrip"])
    engine = fresh.extensions["catalog_db"].engine
    with fresh.app_context():
        with measured(figures, "apply to a fresh catalog"), counting_statements(engine) as count:
            call("catalog:applyCatalog", {"catalog": catalog, "reason": "bench"}, **who)
        figures["apply to a fresh catalog"]["statements"] = count[0]
        with measured(figures, "apply again"):
            summary = call("catalog:applyCatalog", {"catalog": catalog, "reason": "bench"},
                           **who)
        figures["apply again"]["changed"] = len(summary["changed"]) + len(summary["created"])
        same = call("catalog:exportCatalog", {}, **who) == catalog
        figures["apply again"]["export equal"] = same
    fresh.extensions["catalog_db"].dispose()
    return figures


LISTS = [
    ("listModels, no filter", {}),
    ("listModels, contentType=chat", {"contentType": "chat"}),
    ("listModels, provider=openai", {"provider": "openai"}),
    ("listModels, capability=vision", {"capability": "vision"}),
    ("listModels, contentType=video + capability=text_to_video",
     {"contentType": "video", "capability": "text_to_video"}),
    ("listModels, search=gpt-4", {"search": "gpt-4"}),
    ("listModels, search matching nothing (a full scan)", {"search": "no-such-model"}),
]


def per_call_ms(work, count: int = 50) -> float:
    """The best of 3 runs of `count` calls, in ms per call."""
    work()
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            work()
        runs.append((time.perf_counter() - started) / count * 1000)
    return min(runs)


def reads(app, who: dict) -> dict:
    """At this catalog's size: listModels (pages of 50) by each kind of filter, in the
    function; then every model switched on and getActiveModels through the WSGI app (the first
    answer after the change, then again: an answer is held at most 50 ms and only until the next
    statistics write), with its size."""
    from engine.runtime import call

    out: dict = {}
    for name, filters in LISTS:
        body = {"paginationOpts": {"numItems": 50, "cursor": None}, **filters}
        found = call("models:listModels", body, **who)
        out[name] = {"ms": round(per_call_ms(lambda b=body: call("models:listModels", b,
                                                                    **who)), 3),
                     "page": len(found["page"])}
    started = time.perf_counter()
    switched = call("models:setModelsActive", {"isActive": True, "reason": "bench"}, **who)
    out["setModelsActive, every model on"] = {
        "seconds": round(time.perf_counter() - started, 2), "changed": len(switched["changed"])}
    request = {"path": "models:getActiveModels", "args": {}, "format": "json"}
    started = time.perf_counter()
    first = wsgi_post(app, request)
    cold = (time.perf_counter() - started) * 1000
    models = len(json.loads(first)["value"])
    zipped = wsgi_post(app, request, gzip=True)
    out["getActiveModels"] = {
        "models": models, "first ms": round(cold, 1),
        # answers are held at most RECHECK_SECONDS (50 ms) and until the next statistics write:
        # a request after that computes the answer again
        "again ms": round(per_call_ms(lambda: wsgi_post(app, request), 10), 1),
        "again gzip ms": round(per_call_ms(lambda: wsgi_post(app, request, gzip=True), 10), 1),
        "bytes": len(first), "gzip bytes": len(zipped)}
    return out


def wsgi_post(app, body: dict, gzip: bool = False) -> bytes:
    """One POST /api/query straight into the WSGI app (as gunicorn calls it): the answer's
    bytes."""
    import io

    raw = json.dumps(body).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/query", "SERVER_NAME": "bench",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(raw)),
               "wsgi.errors": sys.stderr, "wsgi.input": io.BytesIO(raw)}
    if gzip:
        environ["HTTP_ACCEPT_ENCODING"] = "gzip"
    return b"".join(app(environ, lambda *_: None))


def render(database: str, figures: dict) -> list[str]:
    lines = []
    for name, f in figures.items():
        if "seconds" in f:
            extra = {k: val for k, val in f.items()
                     if k not in ("seconds", "peak_mib", "start_mib")}
            lines.append(f"| {database} | {name} | {f['seconds']:.2f} | {f['peak_mib']:.0f} | "
                         f"{f['peak_mib'] - f['start_mib']:+.0f} | "
                         f"{json.dumps(extra, separators=(', ', ': ')) if extra else ''} |")
        else:
            lines.append(f"| {database} | {name} | | | | {json.dumps(f)} |")
    return lines


HEADER = ["| database | step | seconds | peak RSS MiB | growth MiB | figures |",
          "| --- | --- | --- | --- | --- | --- |"]


def main() -> None:
    if "--map" in sys.argv:
        global LITELLM_MAP
        LITELLM_MAP = Path(sys.argv[sys.argv.index("--map") + 1])
    if "--postgres" not in sys.argv[1:]:
        folder = tempfile.mkdtemp(prefix="catalog-imports-")
        figures = measure({"import": f"sqlite:///{folder}/import.db",
                           "roundtrip": f"sqlite:///{folder}/roundtrip.db"})
        print("\n".join(HEADER + render("sqlite", figures)))
        return
    from tests.servers import PostgresServer

    postgres = PostgresServer(durable=True)
    postgres.start()
    try:
        for name in ("import", "roundtrip"):
            postgres.create_database(name)
        figures = measure({name: postgres.url(name) for name in ("import", "roundtrip")})
    finally:
        postgres.remove()
    print("\n".join(HEADER + render("postgresql", figures)))


if __name__ == "__main__":
    main()
