"""simple-websocket's server, bounded both ways: a peer that stops reading, or that sends
faster than its session reads, is closed instead of holding a thread and growing memory.

- Out: a write ends the connection when the peer takes none of it for SYNC_SEND_SECONDS (a
  slow reader that keeps taking bytes is waited for): the socket is shut both ways, so the
  library's reader thread ends too, and the write fails with TimeoutError, which ends the
  session and gives its place back. Writes are whole (the library's own `send` may write part
  of a frame) and one at a time: a frame is made and written under one lock, so the reader
  thread's close never lands inside, or ahead of, the session's messages.
- In: the library's reader thread queues every message that arrives until the session reads
  it. Past `max_unread_messages` messages or `max_unread_characters` characters queued, the
  queue is dropped and the connection closed with 1008.

simple-websocket is pinned (pyproject.toml): `BoundedServer` overrides its `_handle_events`
and replaces its `input_buffer` list with `Unread`, which counts what it holds.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from simple_websocket import ConnectionClosed, Server
from wsproto.events import CloseConnection
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import LocalProtocolError

# Where the WSGI servers put the connection's socket (werkzeug's dev server, gunicorn).
SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")
TOO_MANY_UNREAD = "Too many unread messages"


class DeadlineSocket:
    """A socket whose writes end the connection when the peer takes nothing for `seconds`."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        sock.settimeout(seconds)  # per call; the reader thread reads only what select saw
        self._sock = sock
        self.writing = threading.RLock()

    def send(self, data: bytes) -> int:
        view = memoryview(data)
        with self.writing:
            try:
                while view:
                    view = view[self._sock.send(view):]
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


class Unread(list):
    """The messages received and not yet read, and how many characters they hold (the reader
    thread appends, the session pops)."""

    def __init__(self) -> None:
        super().__init__()
        self.characters = 0
        self._lock = threading.Lock()

    def append(self, message: str | bytes) -> None:
        with self._lock:
            super().append(message)
            self.characters += len(message)

    def pop(self, index: int = -1) -> str | bytes:
        with self._lock:
            message = super().pop(index)
            self.characters -= len(message)
            return message

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self.characters = 0


class BoundedServer(Server):
    def __init__(self, environ: dict, *, send_seconds: float, max_unread_messages: int,
                 max_unread_characters: int, **options: Any) -> None:
        self.max_unread_messages = max_unread_messages
        self.max_unread_characters = max_unread_characters
        environ = dict(environ)  # the server's own environ keeps its socket
        key = next((k for k in SOCKET_KEYS if k in environ), None)
        if key is None:
            raise RuntimeError("no socket of werkzeug or gunicorn in the WSGI environment")
        environ[key] = DeadlineSocket(environ[key], send_seconds)
        super().__init__(environ, **options)

    @property
    def input_buffer(self) -> Unread:
        return self._unread

    @input_buffer.setter
    def input_buffer(self, messages: list) -> None:  # the library's `self.input_buffer = []`
        assert not messages
        self._unread = Unread()

    def send(self, data: str | bytes) -> None:
        with self.sock.writing:
            try:
                super().send(data)
            except LocalProtocolError:  # the reader thread closed the connection meanwhile
                raise ConnectionClosed(self.close_reason, self.close_message) from None

    def close(self, reason: int | None = None, message: str | None = None) -> None:
        with self.sock.writing:
            try:
                super().close(reason, message)
            except LocalProtocolError:
                raise ConnectionClosed(self.close_reason, self.close_message) from None

    def _handle_events(self) -> bool:
        """The library's, on the reader thread; then the queue of unread messages is bounded."""
        keep_going = super()._handle_events()
        unread = self._unread
        if keep_going and (len(unread) > self.max_unread_messages
                           or unread.characters > self.max_unread_characters):
            with self.sock.writing:
                self.connected = False  # before the close: the session writes no more
                unread.clear()
                self.close_reason = CloseReason.POLICY_VIOLATION
                self.close_message = TOO_MANY_UNREAD
                try:
                    self.sock.send(self.ws.send(CloseConnection(CloseReason.POLICY_VIOLATION,
                                                                TOO_MANY_UNREAD)))
                except OSError:
                    pass  # the peer is gone or reads nothing: the socket is closed all the same
            self.event.set()
            return False
        return keep_going
