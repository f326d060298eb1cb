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

import threading

from gunicorn.workers.gthread import ThreadWorker

from config import server_settings
from wire.bodies import REAPER


class ReadDeadlineWorker(ThreadWorker):
    @property
    def alive(self) -> bool:
        return self._alive

    @alive.setter
    def alive(self, value: bool) -> None:
        """gunicorn sets it False to stop the worker: in a signal handler, or once the worker
        has served max_requests. (A thread rings the sessions: a signal handler must not wait
        on their locks.)"""
        self._alive = value
        watcher = getattr(getattr(self, "wsgi", None), "extensions", {}).get("sync_watcher")
        if not value and watcher is not None:
            threading.Thread(target=watcher.drain, name="catalog-drain", daemon=True).start()

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
