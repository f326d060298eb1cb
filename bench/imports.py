"""`python -m bench.imports [--postgres] [--map FILE]`: a public price map imported at catalog
scale, and an export -> apply round trip; `make bench` runs the same rows (`measure`).

On a fresh, migrated and seeded catalog (a SQLite file, or a database on a throwaway durable
PostgreSQL with --postgres), through the same calls the CLI makes, as the operator:

1. LiteLLM's whole map (`LITELLM_MAP`, default /work/litellm-map/litellm-1.110.2.json; skipped
   when absent) and genai-prices' data: converted (pure, outside any transaction), planned
   (`catalog:planImport`: a read, no lock), applied (`catalog:importPrices`: planned before the
   writers' lock, written in one transaction), then planned again (nothing left to do);
2. the catalog exported and applied to a fresh database (every model created), then applied
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

LITELLM_MAP = Path(os.environ.get("LITELLM_MAP", "/work/litellm-map/litellm-1.110.2.json"))


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

    from db.cli import alembic_config
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
