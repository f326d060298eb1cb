"""gunicorn settings, for `make run` and for production."""

import multiprocessing
import os

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() * 2)))
# gthread: each request, and each open live-query WebSocket, holds one thread. Raise
# GUNICORN_THREADS to the sockets a worker should hold (plus headroom for plain requests).
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# A worker is replaced after this many requests (a ceiling on any slow leak). Starting one costs
# about a second of CPU (imports, app) and cold caches: at 10,000, a busy worker was replaced
# every few seconds under load.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000000"))
max_requests_jitter = max_requests // 10
# The app writes one JSON line per request (request id, function, caller, duration): that is the
# access log. Set GUNICORN_ACCESS_LOG (a path, or "-") to have gunicorn write its own as well.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG")
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
# The app is created in each worker after fork: no database connection crosses a fork.
preload_app = False


def on_starting(server) -> None:
    """Metrics from every worker are aggregated through files in one folder (prometheus_client)."""
    import shutil
    import tempfile

    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="catalog-metrics-")


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
