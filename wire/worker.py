"""gunicorn's gthread worker, with a deadline on reading each request's head.

gunicorn waits for a connection's first bytes without holding a thread (for 5 s, then on its
poller), but once they arrive a thread reads the request line and headers to the end: a client
that sends its headers a byte at a time (slowloris) holds that thread as long as it likes. This
worker gives the head REQUEST_READ_SECONDS: the body reaper (wire/bodies.py) shuts the reading
side of a connection still sending its head then, gunicorn's parser sees the end of the stream
and closes the connection. Once the head is in, the body has its own deadline (ClientDeadlines).

When the worker stops (a signal, or max_requests reached), its live sync sessions are ended
(wire/live.py `Watcher.drain`), so their clients reconnect to a worker that serves.

deploy/gunicorn.conf.py names this class as its `worker_class`.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker

from config import server_settings
from wire.bodies import REAPER


class ReadDeadlineWorker(ThreadWorker):
    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        """gunicorn sets it False to stop the worker: in a signal handler, or on a request's
        thread once the worker has served max_requests. The sessions are rung on the main
        loop (gunicorn's own way out of a signal handler, `method_queue.defer`), which runs
        until the worker ends: a signal handler must not take the locks a thread it
        interrupted may hold."""
        self._alive = value
        if not value:
            self._drain(deferred=True)

    def is_parent_alive(self) -> bool:
        """An orphaned worker leaves its loop with `alive` still True: it drains too."""
        if super().is_parent_alive():
            return True
        self._drain(deferred=False)
        return False

    def _drain(self, deferred: bool) -> None:
        watcher = getattr(getattr(self, "wsgi", None), "extensions", {}).get("sync_watcher")
        if watcher is None:  # not started yet, or not the catalog (a bench floor app)
            return
        watcher.draining = True  # a plain store: new sessions are refused from now on
        if deferred:
            self.method_queue.defer(watcher.drain)
        else:
            watcher.drain()

    def init_process(self) -> None:
        self.read_seconds = server_settings()["read_seconds"]
        super().init_process()

    def handle(self, conn):
        conn.head_ticket = REAPER.watch(conn.sock, self.read_seconds)
        try:
            return super().handle(conn)
        finally:
            REAPER.done(conn.head_ticket)

    def handle_request(self, req, conn):
        REAPER.done(conn.head_ticket)  # the head is in: the body has a deadline of its own
        return super().handle_request(req, conn)
