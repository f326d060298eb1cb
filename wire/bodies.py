"""Deadlines on a client's side of a request: REQUEST_READ_SECONDS to send its body, and
RESPONSE_SEND_SECONDS to take the answer.

gunicorn's gthread worker gives each request a thread, and the application reads the body on
it: a client that sends its body a byte at a time would hold that thread for as long as it
likes, and forty of them held every thread (`/healthz` timed out). So `ClientDeadlines`, in
front of everything, reads each body whole before the application runs. A reaper thread, one per
worker, shuts the reading side of any connection whose body is still not in when its deadline
passes (`shutdown(SHUT_RD)` wakes the blocked read); the request is answered 408
`RequestTimeout` and its connection closed. Bodies over MAX_CONTENT_LENGTH are not read (Flask
answers 413).

The same holds for answers: gunicorn writes one with a blocking `sendall`, so a client that
never reads (a few pipelined requests for a large answer fill the socket's buffers) held the
thread for good, and enough of them held every thread. `ClientDeadlines` hands gunicorn the
answer in parts (`Sending`), each with RESPONSE_SEND_SECONDS from the moment gunicorn starts
writing it: a client that takes nothing for that long is cut (the reaper shuts the socket both
ways, the blocked write fails with a broken pipe, which gunicorn closes quietly, and the thread
is free), and a slow one that keeps reading is waited for. The application's own time is not
counted: only the sending.

The request line and headers are read by gunicorn before the application runs; the worker
class in wire/worker.py gives them the same deadline. Behind nginx (deploy/nginx.conf)
requests reach gunicorn whole anyway: nginx buffers them and bounds the time to send a head
and a body itself.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask
from werkzeug.wsgi import get_content_length

from engine import process
from engine.ratelimit import retry_after
from wire import cors

log = logging.getLogger("catalog.wire")
SWEEP_SECONDS = 0.25  # how often the reaper looks: a deadline is kept within this


# A part of an answer not taken this long: its client is stuck (a reading client takes 256 KiB
# in far less).
STUCK_SECONDS = 2.0
# Stuck answers one address may hold in a worker; the reaper cuts the others at once, and the
# address's new requests are refused (503 `SlowClient`) while it holds that many, and for a
# deadline after one of its answers was cut.
STUCK_PER_ADDRESS = 2


@dataclass(slots=True)
class Watch:
    deadline: float  # monotonic
    sock: socket.socket
    how: int  # what is shut: the reading side (a head, a body), or both (an answer)
    seconds: float
    started: float
    who: str | None = None  # an answer's client address


class Reaper:
    """Shuts connections whose client is late (to send a head or a body: the reading side; to
    take an answer: both sides), and keeps an address from holding more than
    STUCK_PER_ADDRESS threads with answers it does not take; one thread per process."""

    def __init__(self) -> None:
        self._late: dict[int, Watch] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stuck: dict[str, int] = {}  # address -> its stuck answers, at the last sweep
        self._held_back: dict[str, float] = {}  # address -> refused until (monotonic)

    def watch(self, sock: socket.socket, seconds: float, how: int = socket.SHUT_RD,
              who: str | None = None) -> int:
        """Shut `sock` (its reading side, or `how`) unless done() comes within `seconds`;
        `who`: the address an answer is sent to."""
        self._start()
        ticket, now = next(self._ids), time.monotonic()
        self._late[ticket] = Watch(now + seconds, sock, how, seconds, now, who)
        return ticket

    def done(self, ticket: int) -> bool:
        """Stop watching; False when the deadline had passed (the socket was shut)."""
        return self._late.pop(ticket, None) is not None

    def refused(self, who: str | None) -> float | None:
        """The seconds an address is to wait before asking again, when it holds its share of
        stuck answers or had one cut lately; None when it may ask now."""
        if self._stuck.get(who, 0) >= STUCK_PER_ADDRESS:
            return STUCK_SECONDS
        until = self._held_back.get(who)
        left = None if until is None else until - time.monotonic()
        return left if left is not None and left > 0 else None

    def _start(self) -> None:
        if self._pid != process.pid():  # one thread per worker (gunicorn forks)
            with self._lock:
                if self._pid != process.pid():
                    self._pid = process.pid()
                    threading.Thread(target=self._run, name="deadline-reaper", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(SWEEP_SECONDS)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        stuck: dict[str, list[tuple[int, Watch]]] = {}
        cut: dict[str, int] = {}
        for ticket, watch in list(self._late.items()):
            if watch.deadline <= now:
                self._cut(ticket, watch, now, cut)
            elif watch.who is not None and now - watch.started >= STUCK_SECONDS:
                stuck.setdefault(watch.who, []).append((ticket, watch))
        for held in stuck.values():  # the oldest are kept; the rest of an address's are cut
            for ticket, watch in sorted(held, key=lambda t: t[1].started)[STUCK_PER_ADDRESS:]:
                self._cut(ticket, watch, now, cut)
        self._stuck = {who: min(len(held), STUCK_PER_ADDRESS) for who, held in stuck.items()}
        self._held_back = {who: until for who, until in self._held_back.items() if until > now}
        for who, count in cut.items():
            log.warning("%s took %d answer(s) too slowly, or not at all: connection(s) closed, "
                        "its requests refused for a while", who, count)

    def _cut(self, ticket: int, watch: Watch, now: float, cut: dict[str, int]) -> None:
        if self._late.pop(ticket, None) is None:
            return  # done meanwhile
        if watch.how != socket.SHUT_RD:
            who = watch.who or "a client"
            cut[who] = cut.get(who, 0) + 1
            if watch.who is not None:
                self._held_back[watch.who] = now + watch.seconds
        try:
            watch.sock.shutdown(watch.how)
        except OSError:
            pass  # gone already


# The environ key of a body read whole in time.
BODY = "catalog.body"
REAPER = Reaper()  # one per process: the body deadline's and the head deadline's (worker.py)


class Sending:
    """An answer as gunicorn iterates it to send it, in parts of at most PART bytes: each part
    must be taken within the deadline from the moment gunicorn starts writing it. So a client
    that takes nothing (or less than PART in that long) is cut, and a slow one that keeps
    reading is waited for, however large the answer. The application's time is not counted."""

    PART = 256 * 1024
    __slots__ = ("answer", "sock", "seconds", "who", "ticket", "last")

    def __init__(self, answer, sock: socket.socket, seconds: float,
                 who: str | None = None, last: bool = False) -> None:
        self.answer, self.sock, self.seconds, self.who = answer, sock, seconds, who
        self.ticket, self.last = None, last  # last: the connection's (gunicorn keeps it
        # alive whatever the app's Connection header says; shutting its reading side ends it)

    def __iter__(self):
        for part in self.answer:
            for start in range(0, max(len(part), 1), self.PART):  # (a whole slice is the part)
                self._arm()
                yield part[start:start + self.PART]

    def _arm(self) -> None:
        if self.ticket is not None:
            REAPER.done(self.ticket)
        self.ticket = REAPER.watch(self.sock, self.seconds, socket.SHUT_RDWR, self.who)

    def close(self) -> None:
        if self.ticket is not None:
            REAPER.done(self.ticket)
        close = getattr(self.answer, "close", None)
        if close is not None:
            close()
        if self.last:
            try:
                self.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass  # gone already


def sent_file(answer, sock: socket.socket, seconds: float, who: str | None):
    """A file gunicorn sends with sendfile (wsgi.file_wrapper: static files), whole within the
    deadline: its close (gunicorn's FileWrapper sets one per instance too) ends the watch."""
    ticket = REAPER.watch(sock, seconds, socket.SHUT_RDWR, who)
    close = getattr(answer, "close", None)

    def closed() -> None:
        REAPER.done(ticket)
        if close is not None:
            close()

    answer.close = closed
    return answer


class ClientDeadlines:
    """WSGI, outermost: a request's body is read within REQUEST_READ_SECONDS, or answered 408;
    its answer is taken within RESPONSE_SEND_SECONDS, or its connection is closed."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app, self.wsgi_app = app, wsgi_app
        self.reaper = REAPER
        self.send_seconds = app.config["RESPONSE_SEND_SECONDS"]

    def __call__(self, environ: dict, start_response):
        sock = environ.get("gunicorn.socket")
        if sock is None:  # not under gunicorn (the tests' client, werkzeug's server)
            return self.wsgi_app(environ, start_response)
        who = environ.get("REMOTE_ADDR")
        wait = REAPER.refused(who)
        if wait is not None:  # a few bytes, watched too; then the connection ends
            return Sending(_slow_client(start_response, wait, self._readable(environ)), sock,
                           self.send_seconds, who, last=True)
        answer = self._read(sock, environ, start_response)
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None and isinstance(answer, wrapper):
            return sent_file(answer, sock, self.send_seconds, who)  # sendfile kept
        return Sending(answer, sock, self.send_seconds, who)

    def _read(self, sock: socket.socket, environ: dict, start_response):
        length = get_content_length(environ)  # None when chunked or absent
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        largest = self.app.config["MAX_CONTENT_LENGTH"]
        if not (length or chunked) or (length or 0) > largest:
            return self.wsgi_app(environ, start_response)
        ticket = self.reaper.watch(sock, self.app.config["REQUEST_READ_SECONDS"])
        try:
            body = environ["wsgi.input"].read(largest + 1 if length is None else length)
        except Exception:  # noqa: BLE001 - a body cut short (the reaper, the client)
            body = None
        in_time = self.reaper.done(ticket)
        if body is None or not in_time or (length is not None and len(body) < length):
            return self._late(start_response, in_time, self._readable(environ))
        environ["wsgi.input"] = io.BytesIO(body)
        environ[BODY] = body  # the calls' pipeline takes it as it is (wire/http.py)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.wsgi_app(environ, start_response)

    def _readable(self, environ: dict) -> list[tuple[str, str]]:
        """The headers that let a web page read a refusal of its API call (wire/cors.py)."""
        if not environ.get("PATH_INFO", "").startswith("/api/"):
            return []
        return cors.allowed(environ.get("HTTP_ORIGIN"), self.app.config["API_ALLOWED_ORIGINS"])

    def _late(self, start_response, in_time: bool, readable: list[tuple[str, str]]):
        if in_time:  # the client closed or broke its body: likely nobody to answer
            message = "The request body ended early"
        else:
            message = (f"The request body took longer than "
                       f"{self.app.config['REQUEST_READ_SECONDS']:g} s to arrive")
            log.warning("request body too slow; connection closed")
        body = json.dumps({"code": "RequestTimeout", "message": message}).encode()
        start_response("408 Request Timeout", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body))),
                                               ("Connection", "close"), *readable])
        return [body]


def _slow_client(start_response, wait: float,
                 readable: list[tuple[str, str]]) -> list[bytes]:
    """The answer to an address that leaves answers untaken: a few bytes."""
    retry = retry_after(wait)
    body = json.dumps({"code": "SlowClient", "message": (
        "This address is not taking the answers sent to it; ask again in "
        f"{retry} s")}).encode()
    start_response("503 Service Unavailable", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))),
        ("Retry-After", retry), *readable])
    return [body]
