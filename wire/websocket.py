"""simple-websocket's server, bounded both ways: a peer that stops reading, or that sends
faster than its session reads, is closed instead of holding a thread and growing memory.

- Out: each write to the socket finishes within SYNC_SEND_SECONDS, or the connection is shut
  (both ways, so the library's reader thread ends too) and the write fails with TimeoutError,
  which ends the session and gives its slot back. Writes are whole (`sendall`: the library's
  `send` may write part of a frame) and one at a time (the reader thread's pongs and pings
  never land inside the session's messages).
- In: the library's reader thread queues every message that arrives until the session reads
  it. Past MAX_UNREAD_MESSAGES messages or MAX_UNREAD_CHARACTERS characters queued, the queue
  is dropped and the connection closed with 1008.

simple-websocket is pinned (pyproject.toml): `BoundedServer` overrides its `_handle_events`.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from simple_websocket import Server
from wsproto.events import CloseConnection
from wsproto.frame_protocol import CloseReason

# Where the WSGI servers put the connection's socket (werkzeug's dev server, gunicorn).
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")
MAX_UNREAD_MESSAGES = 10_000  # a Convex client may pipeline hundreds of mutations
MAX_UNREAD_CHARACTERS = 8 << 20  # eight messages of the largest size
TOO_MANY_UNREAD = "Too many unread messages"


class DeadlineSocket:
    """A socket whose writes finish within `seconds`, whole and one at a time."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        sock.settimeout(seconds)  # reads too: the reader thread reads only what select saw
        self._sock = sock
        self._writing = threading.Lock()

    def send(self, data: bytes) -> int:
        with self._writing:
            try:
                self._sock.sendall(data)
            except TimeoutError:
                self.shut()
                raise
        return len(data)

    def shut(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already

    def __getattr__(self, name: str) -> Any:  # fileno, recv, close: the socket's own
        return getattr(self._sock, name)


class BoundedServer(Server):
    def __init__(self, environ: dict, *, send_seconds: float, **options: Any) -> None:
        environ = dict(environ)  # the server's own environ keeps its socket
        for key in SOCKET_KEYS:
            if key in environ:
                environ[key] = DeadlineSocket(environ[key], send_seconds)
                break
        super().__init__(environ, **options)

    def _handle_events(self) -> bool:
        """The library's, on the reader thread; then the queue of unread messages is bounded."""
        keep_going = super()._handle_events()
        unread = self.input_buffer
        if keep_going and len(unread) > 64 and (  # (nearly always short: counted only then)
                len(unread) > MAX_UNREAD_MESSAGES
                or sum(map(len, unread)) > MAX_UNREAD_CHARACTERS):
            unread.clear()
            self.close_reason, self.close_message = CloseReason.POLICY_VIOLATION, TOO_MANY_UNREAD
            try:
                self.sock.send(self.ws.send(CloseConnection(CloseReason.POLICY_VIOLATION,
                                                            TOO_MANY_UNREAD)))
            except OSError:
                pass  # the peer is gone or reads nothing: the socket is closed all the same
            self.event.set()
            return False
        return keep_going
