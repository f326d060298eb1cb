"""gunicorn settings, for `make run` and for production."""

import os
import sys
from pathlib import Path

from config import Config, SettingError, instance_path, make_folders, server_settings

try:  # every setting is declared and read in config.py
    _settings = server_settings()
    # The app's too, here in the master: a wrong one stops the start in one line (a worker
    # that cannot boot would only be started again).
    _instance = Path(instance_path())
    make_folders(Config.from_environ(_instance), _instance)
except SettingError as error:
    sys.exit(f"Error: {error}")
bind = _settings["bind"]
workers = _settings["workers"]
# gthread, with a deadline on reading a request's head (wire/worker.py; bodies have theirs in
# wire/bodies.py). Each request, and each open live-query WebSocket, holds one thread: a worker
# runs GUNICORN_THREADS for requests plus SYNC_SOCKETS_PER_WORKER that only sockets may keep.
worker_class = "wire.worker.ReadDeadlineWorker"
threads = _settings["threads"]
timeout = 30
graceful_timeout = 20
keepalive = 5
# A worker is replaced after this many requests (a ceiling on any slow leak). Starting one costs
# about a second of CPU (imports, app) and cold caches: at 10,000, a busy worker was replaced
# every few seconds under load.
max_requests = _settings["max_requests"]
max_requests_jitter = max_requests // 10
# The app writes one JSON line per request (request id, function, caller, duration): that is the
# access log. Set GUNICORN_ACCESS_LOG (a path, or "-") to have gunicorn write its own as well.
accesslog = _settings["accesslog"]
errorlog = "-"
loglevel = _settings["loglevel"]
# The app is created in each worker after fork: no database connection crosses a fork.
preload_app = False
# No `gunicornc` control socket: its default path is one per user, so every instance on a host
# (the tests start several; a fleet may run two) would take it from the others.
control_socket_disable = True


def on_starting(server) -> None:
    """Metrics from every worker are aggregated through files in one folder (prometheus_client)."""
    import shutil
    import tempfile

    global _own_metrics
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)
    else:  # a folder of this server's own, removed when it stops (on_exit)
        _own_metrics = tempfile.mkdtemp(prefix="catalog-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _own_metrics


_own_metrics: str | None = None  # the folder on_starting made, if it made one


def on_exit(server) -> None:
    """The metrics folder this server made for itself goes with it (one a setting names
    stays, for whoever named it)."""
    import shutil

    if _own_metrics:
        shutil.rmtree(_own_metrics, ignore_errors=True)


def ready_banner(log) -> None:
    """The last lines of `make run`'s start: where the console is, and how to sign in."""
    host, _, port = bind.rpartition(":")
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    log.info("Model Catalog is ready: console %s/admin/ · API %s/api/", url, url)
    log.info("Sign in with an admin account: `make run` made admin@catalog.local on its first "
             "run and printed its password (a new one: .venv/bin/flask --app wsgi users "
             "set-password EMAIL; another account, or in production: users create EMAIL "
             "--role admin)")


def post_worker_init(worker) -> None:
    """Each worker runs the monitor's rounds on a thread (functions/monitor.py): health, alerts,
    webhooks, roll-up; leases in the database let one process do each job per round."""
    app = worker.wsgi
    if "catalog_db" in getattr(app, "extensions", {}):  # the catalog (not a bench floor app)
        from functions.monitor import start

        start(app)
        if worker.age == workers:  # the last of the first workers is up
            ready_banner(worker.log)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
