"""Live queries: Convex's sync protocol over a WebSocket, for the official clients.

The JS `ConvexClient` opens `/api/<client version>/sync`, the Python client (PyPI `convex`)
`/api/sync`. A client sends `Connect`, then `ModifyQuerySet` (queries to add or remove),
`Authenticate` (a service token), `Mutation`, `Action` and `Event` messages. The server answers
with `Transition` messages that move the client from one version `{querySet, identity, ts}` to
the next, carrying only the query results that changed, with `MutationResponse`s whose `ts` a
later transition always reaches (read-your-writes), and with `AuthError` when a token is refused
or stops being valid, after which the session ends (as in Convex; the clients reconnect).

A session is held to the rules of the HTTP API: the token is checked again on every call and
whenever tokens change (revocation) or a ping is due (expiry); queries, mutations, actions and
each `Authenticate` (with every signed-in query it runs again) count against the same rate
limit; refused tokens count against the address. What one session
may subscribe to is bounded, in count and in total result size. A socket that sends no
`Connect`, or has no subscription and sends no call, is closed; so is a peer that stops
answering pings, stops reading, or sends faster than its session reads (wire/websocket.py).
A session sleeps until a message, a change or a deadline. Sockets are admitted per worker and
per address (wire/sockets.py). Nothing a client sends ends in anything but a protocol message
or a closed socket.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, request
from simple_websocket import ConnectionClosed, Server
from werkzeug.routing.exceptions import WebsocketMismatch

from engine import reads
from engine.errors import FunctionError, TransportError
from engine.runtime import ANONYMOUS, REGISTRY, Identity, call, canonical_path, run
from engine.values import DecodeError, canonical_json, decode_convex, parse_json
from wire.callers import check_token, count_weight, limit
from wire.live import TRANSIENT, LiveResults, Result, Watcher
from wire.sockets import SocketSlots
from wire.websocket import BoundedServer

log = logging.getLogger("catalog.sync")
EARLY = 0.01  # a session wakes this long after a deadline, not a hair before it
MAX_MESSAGE_BYTES = 1 << 20
# Received and not yet read by the session: past either bound the socket is closed with 1008
# (wire/websocket.py). A Convex client may pipeline hundreds of mutations.
MAX_UNREAD_MESSAGES = 10_000
MAX_UNREAD_CHARACTERS = 8 * MAX_MESSAGE_BYTES
MAX_ID = 2**32 - 1  # query ids, request ids and versions are u32 in Convex
RETRY_SECONDS = 1.0  # a query that failed for want of the database runs again this soon
# Statistics move with every recorded generation: a session runs its queries again for them
# at most this often (a catalog change is sent at once). Each query a session holds with its
# own arguments is one more run per change, so without this, one address's subscriptions
# multiplied every recording's cost by the hundreds.
STATS_REFRESH_SECONDS = 1.0
URLS = ("/api/sync", "/api/<client_version>/sync")  # Python client; JS client
# What keeps a session without subscriptions open: calls, not telemetry (Event) or Connect.
ACTIVITY = {"ModifyQuerySet", "Mutation", "Action", "Authenticate"}


class Doorbell(threading.Event):
    """simple-websocket's event for one socket (set when a message arrives), which also rings
    the session's `bell`; the watcher rings the bell on a change (wire/live.py). The session
    sleeps on the bell until either, or a deadline: an idle socket costs no CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.bell = threading.Event()

    def set(self) -> None:
        super().set()
        self.bell.set()


class ProtocolError(Exception):
    """The client broke the protocol: the session ends with a FatalError."""


class SessionEnd(Exception):  # noqa: N818 - not an error: how a session ends
    """The session ends, with this close code and reason (after `message`, if any)."""

    def __init__(self, code: int, reason: str, message: dict | None = None) -> None:
        super().__init__(reason)
        self.code, self.reason, self.message = code, reason, message


LAST_TS = 2**63 - 1  # the last a session may reach: its timestamps are nanoseconds


def u64(ts: int) -> str:
    return base64.b64encode(struct.pack("<Q", ts)).decode()


def from_u64(encoded: Any) -> int | None:
    if not isinstance(encoded, str):
        return None
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return struct.unpack("<Q", raw)[0] if len(raw) == 8 else None


def _id(message: dict, name: str) -> int:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise ProtocolError(f"{message.get('type')} needs {name}, a whole number 0..{MAX_ID}")
    return value


def _failure(message: str, data: Any = None) -> dict:
    update = {"type": "QueryFailed", "errorMessage": message, "logLines": [], "journal": None}
    if data is not None:
        update["errorData"] = data
    return update


def _failed(query_id: int, message: str, data: Any = None) -> dict:
    return {**_failure(message, data), "queryId": query_id}


@dataclass
class Subscription:
    path: str
    args: Any
    args_key: str  # the arguments as canonical JSON
    key: tuple  # what LiveResults shares it under
    result: Result | None = None  # the one the client has (or one that differs in its moment)
    weight: int = 1  # the queries it counts as against SYNC_QUERIES_PER_ADDRESS (Context.weigh)

    @property
    def moment(self) -> str | None:
        """The key of its answer that only says when it was computed (Function.moment)."""
        fn = REGISTRY.get(self.path)
        return fn.moment if fn is not None else None

    def size(self, result: Result | None = None) -> int:
        """What it holds against SYNC_MAX_RESULT_BYTES: its arguments and a result (the one
        the client has, unless given another)."""
        result = result or self.result
        return len(self.args_key) + (result.size if result is not None else 0)


@dataclass(frozen=True)
class Limits:
    connect_seconds: float
    idle_seconds: float
    ping_seconds: float
    max_queries: int
    max_result_bytes: int
    queries_per_address: int

    @classmethod
    def of(cls, config: dict) -> Limits:
        return cls(config["SYNC_CONNECT_SECONDS"], config["SYNC_IDLE_SECONDS"],
                   config["SYNC_PING_SECONDS"], config["SYNC_MAX_QUERIES"],
                   config["SYNC_MAX_RESULT_BYTES"], config["SYNC_QUERIES_PER_ADDRESS"])


class Session:
    """One client connection and its protocol state."""

    def __init__(self, app: Flask, ws: Any, address: str | None) -> None:
        self.app, self.ws, self.address = app, ws, address
        self.bell: threading.Event = ws.event.bell
        self.watcher: Watcher = app.extensions["sync_watcher"]
        self.limits = Limits.of(app.config)
        self.live: LiveResults = app.extensions["live_results"]
        self.slots: SocketSlots = app.extensions["socket_slots"]
        self.marks = app.extensions["catalog_marks"]
        self.identity: Identity = ANONYMOUS
        self.token: str | None = None
        self.query_set = self.identity_version = 0  # the versions the client has asked for
        self.query_set_sent = self.identity_sent = 0  # those the last transition reached
        self.ts = 0  # the last transition's timestamp
        self.promised = 0  # a timestamp the next transition must reach (a mutation's)
        self.queries: dict[int, Subscription] = {}
        self.connected = False
        self.opened = self.heard = self.sent = self.pinged = self.retried = time.monotonic()
        self.seen_marks = self.live.marks()
        self.seen_access = self.marks.read("access")
        self.stats_sent = float("-inf")  # when the session last ran its queries for statistics

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        self.app.extensions["fleet"].start()  # pushed changes reach this worker's sessions
        self.watcher.listen(self.bell)
        try:
            while True:
                if self.watcher.draining:  # (wire/live.py `Watcher.drain`)
                    raise SessionEnd(1012, "Service restart")
                self.bell.wait(self.until_next_deadline())
                self.bell.clear()  # before reading: a message or change after this rings again
                while (raw := self.ws.receive(timeout=0)) is not None:
                    self.handle(raw)
                self.tick()
        except ProtocolError as error:
            self.end(SessionEnd(1008, str(error), {"type": "FatalError", "error": str(error)}))
        except SessionEnd as end:
            self.end(end)
        except TransportError as error:  # the database is away: the client reconnects later
            self.end(SessionEnd(1011, error.code, {
                "type": "FatalError", "error": f"{error.code}: {error.message}"}))
        except (ConnectionClosed, OSError):
            pass  # the peer went away
        except Exception:  # a fault of ours: the session ends, never the worker
            log.exception("live session failed")
            self.end(SessionEnd(1011, "Internal error", {"type": "FatalError",
                                                         "error": "Internal error"}))
        finally:
            try:
                self.watcher.forget(self.bell)
            finally:
                for query_id in list(self.queries):
                    self.unsubscribe(query_id)

    def end(self, end: SessionEnd) -> None:
        # A close frame's reason holds at most 123 bytes of UTF-8.
        reason = end.reason.encode()[:120].decode(errors="ignore")
        try:
            if end.message is not None:
                self.send(end.message)
            self.ws.close(reason=end.code, message=reason)
        except (ConnectionClosed, OSError):
            pass

    def stats_due(self) -> float:
        """Seconds until the session may run its queries again for statistics alone."""
        return self.stats_sent + STATS_REFRESH_SECONDS - time.monotonic()

    def until_next_deadline(self) -> float:
        """Seconds until the session has something to do unasked: a ping, a deadline, a retry,
        statistics held back."""
        times = [self.pinged + self.limits.ping_seconds]
        if self.queries and self.live.marks()["stats"] != self.seen_marks["stats"]:
            times.append(self.stats_sent + STATS_REFRESH_SECONDS)
        if not self.connected:
            times.append(self.opened + self.limits.connect_seconds)
        if not self.queries:
            times.append(self.heard + self.limits.idle_seconds)
        if any(sub.result is not None and TRANSIENT in sub.result.reads
               for sub in self.queries.values()):
            times.append(self.retried + RETRY_SECONDS)
        expiring = [sub.result.expires for sub in self.queries.values()
                    if sub.result is not None and sub.result.expires is not None]
        if expiring:  # a scheduled price takes effect: its subscribers get it then
            times.append(time.monotonic() + (min(expiring) - time.time() * 1000) / 1000)
        return max(0.0, min(times) - time.monotonic()) + EARLY

    def tick(self) -> None:
        now = time.monotonic()
        if not self.connected and now - self.opened > self.limits.connect_seconds:
            raise SessionEnd(1008, "Connect expected")
        if not self.queries and now - self.heard > self.limits.idle_seconds:
            raise SessionEnd(1000, "Idle")
        access = self.marks.read("access")
        if access != self.seen_access:  # a token was revoked somewhere
            self.seen_access = access
            self.caller()
        if now - self.pinged >= self.limits.ping_seconds:
            self.pinged = now
            self.caller()  # a token may have expired
            if now - self.sent >= self.limits.ping_seconds:
                self.send({"type": "Ping"})
        retry = now - self.retried >= RETRY_SECONDS
        if retry:
            self.retried = now
        self.refresh(retry=retry)

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message, separators=(",", ":"), allow_nan=False))
        self.sent = time.monotonic()

    def transition(self, modifications: list[dict]) -> None:
        start = {"querySet": self.query_set_sent, "identity": self.identity_sent,
                 "ts": u64(self.ts)}
        self.ts = max(time.time_ns(), self.ts + 1, self.promised)
        self.query_set_sent, self.identity_sent = self.query_set, self.identity_version
        end = {"querySet": self.query_set, "identity": self.identity_version, "ts": u64(self.ts)}
        self.send({"type": "Transition", "startVersion": start, "endVersion": end,
                   "modifications": modifications})

    # -- the caller -------------------------------------------------------------------------

    def caller(self) -> Identity:
        """The session's identity, checked again as HTTP checks every request: a token that is
        no longer valid ends the session with an AuthError."""
        if self.token is None:
            return self.identity
        try:
            self.identity = check_token(self.app, self.token, self.address)
        except TransportError as error:
            if error.status == 503:
                raise
            self.auth_failed(error, attempted=False)
        return self.identity

    def auth_failed(self, error: TransportError, attempted: bool) -> None:
        self.identity, self.token = ANONYMOUS, None
        raise SessionEnd(1000, "AuthError", {
            "type": "AuthError", "error": f"{error.code}: {error.message}",
            "baseVersion": self.identity_version, "authUpdateAttempted": attempted})

    def key(self, path: str, args_key: str) -> tuple:
        """What a query's result is shared under: public queries answer every caller alike."""
        fn = REGISTRY.get(path)
        if fn is None or fn.scope is None:
            return ("public", path, args_key)
        return (self.identity.kind, self.identity.name, path, args_key)

    # -- queries ----------------------------------------------------------------------------

    def run_query(self, sub: Subscription, weighed: bool = False
                  ) -> tuple[dict, set[str], int | None, int]:
        """Run a subscribed query: its modification, what it read, until when it holds by
        itself (a price scheduled to change), and what it weighed (Context.weigh). `weighed`:
        its weight counts against the caller's rate limit (a subscription's first run, not the
        runs again that changes make, which SYNC_QUERIES_PER_ADDRESS bounds by weight)."""
        expires, weight = None, 1
        with reads.recording() as read:
            try:
                outcome = run(sub.path, sub.args, identity=self.identity, source="sync",
                              kind="query", public=True)
                expires, weight = outcome.expires, outcome.weight
                update = {"type": "QueryUpdated", "value": outcome.value, "logLines": [],
                          "journal": None}
            except FunctionError as error:
                expires = error.expires  # e.g. no price until a scheduled one starts
                weight = error.weight
                update = _failure(error.message, error.data)
            except TransportError as error:
                update = _failure(f"{error.code}: {error.message}")
                if error.status >= 500:  # not a result: run it again soon
                    read.add(TRANSIENT)
        if weighed:
            count_weight(self.app, self.identity, self.address, weight)
        return update, read, expires, weight

    def evaluate(self, sub: Subscription, weighed: bool = False) -> Result:
        """Its result: the one shared while current, else computed now (and then, when
        `weighed`, counted against this caller's rate limit)."""
        return self.live.result(sub.key, lambda: self.run_query(sub, weighed))

    def used_bytes(self) -> int:
        """What the session's subscriptions hold: their arguments and results."""
        return sum(sub.size() for sub in self.queries.values())

    def refresh(self, force: bool = False, retry: bool = False) -> None:
        """Send the results that changed since the client last got them."""
        marks = self.live.marks()
        waiting = retry and any(sub.result is not None and TRANSIENT in sub.result.reads
                                for sub in self.queries.values())
        now_ms = time.time() * 1000
        expired = any(sub.result is not None and sub.result.expires is not None
                      and now_ms >= sub.result.expires for sub in self.queries.values())
        if marks == self.seen_marks and not (force or waiting or expired):
            return
        stats_only = all(marks[slot] == self.seen_marks[slot] for slot in marks if slot != "stats")
        if stats_only and not (force or waiting or expired) and self.stats_due() > 0:
            return  # the statistics moved again soon after: sent when due (until_next_deadline)
        if marks["stats"] != self.seen_marks["stats"]:
            self.stats_sent = time.monotonic()
        self.caller()
        self.seen_marks = marks
        changes, used = [], 0
        for query_id in sorted(self.queries):
            sub = self.queries[query_id]
            result = self.evaluate(sub)
            if used + sub.size(result) > self.limits.max_result_bytes:
                changes.append(self.drop_too_large(query_id))
                continue
            used += sub.size(result)
            if sub.result is None or not result.same_answer(sub.result, sub.moment):
                changes.append({**result.update, "queryId": query_id})
            sub.result = result
        if changes or force:
            self.transition(changes)

    def drop_too_large(self, query_id: int) -> dict:
        sub = self.unsubscribe(query_id)
        return self.too_large(query_id, f"{sub.path} is dropped")

    def too_large(self, query_id: int, what: str) -> dict:
        return _failed(query_id, f"SubscriptionsTooLarge: this session's subscriptions (their "
                                 f"arguments and results) may hold at most "
                                 f"{self.limits.max_result_bytes} bytes; {what}")

    def add(self, query_id: int, mod: dict) -> dict:
        """Subscribe to a query: its first result, or why not."""
        if query_id in self.queries:
            raise ProtocolError(f"Query {query_id} is subscribed already")
        if len(self.queries) >= self.limits.max_queries:
            return _failed(query_id, f"TooManyQueries: a session subscribes to at most "
                                     f"{self.limits.max_queries} queries")
        try:
            identity = self.caller()
            limit(self.app, identity, self.address)
            path, args = self.call_args(mod)
        except TransportError as error:
            return _failed(query_id, f"{error.code}: {error.message}")
        args_key = canonical_json(args)
        sub = Subscription(path, args, args_key, self.key(path, args_key))
        if self.used_bytes() + sub.size() > self.limits.max_result_bytes:
            return self.too_large(query_id, f"{path}'s arguments are {len(args_key)}")
        if not self.slots.take_query(self.address, self.limits.queries_per_address):
            return self.too_many(query_id)
        self.queries[query_id] = sub  # from here, unsubscribe() gives its place back
        self.live.watch(sub.key)
        result = self.evaluate(sub, weighed=True)
        if result.weight > 1:  # it is run again on changes: it holds that many places
            if not self.slots.take_query(self.address, self.limits.queries_per_address,
                                         result.weight - 1):
                self.unsubscribe(query_id)
                return self.too_many(query_id, f", and {path} counts as {result.weight} (what "
                                               f"running it weighs)")
            sub.weight = result.weight
        if self.used_bytes() + result.size > self.limits.max_result_bytes:  # its args counted
            return self.drop_too_large(query_id)
        sub.result = result
        return {**result.update, "queryId": query_id}

    def too_many(self, query_id: int, why: str = "") -> dict:
        return _failed(query_id, f"TooManyQueries: an address subscribes to at most "
                                 f"{self.limits.queries_per_address} queries on a worker, "
                                 f"across its sockets{why}")

    def unsubscribe(self, query_id: int) -> Subscription:
        """Forget a subscribed query: its place in the address's count and its shared result."""
        sub = self.queries.pop(query_id)
        self.slots.give_back_query(self.address, sub.weight)
        self.live.unwatch(sub.key)
        return sub

    def call_args(self, message: dict) -> tuple[str, Any]:
        """The function and its arguments, as the HTTP API reads them: `args` is an array of
        one object, in Convex's encoded JSON."""
        path, args = message.get("udfPath"), message.get("args", [{}])
        if message.get("componentPath") not in (None, ""):
            raise TransportError(400, "BadPath", "Components are not supported")
        if not isinstance(path, str) or not 0 < len(path) <= 200:
            raise TransportError(400, "BadPath", "udfPath must name a function")
        if not isinstance(args, list) or len(args) != 1:
            raise TransportError(400, "BadArgs", "args must be an array holding one object")
        try:
            return canonical_path(path), decode_convex(args[0])
        except DecodeError as error:
            raise TransportError(400, "BadConvexValue", str(error)) from None

    # -- messages ---------------------------------------------------------------------------

    def handle(self, raw: str | bytes) -> None:
        if len(raw) > MAX_MESSAGE_BYTES or (isinstance(raw, str) and not raw.isascii()
                                            and len(raw.encode()) > MAX_MESSAGE_BYTES):
            raise ProtocolError("Message too large")
        try:
            message = parse_json(raw)
        except DecodeError as error:
            raise ProtocolError(f"Message {error}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("Message must be an object with a type")
        handler = getattr(self, f"on_{message['type']}", None)
        if handler is None:
            raise ProtocolError(f"Unknown message type {message['type'][:40]!r}")
        if message["type"] in ACTIVITY:
            self.heard = time.monotonic()
        handler(message)

    def on_Connect(self, message: dict) -> None:
        self.connected = True
        observed = from_u64(message.get("maxObservedTimestamp"))
        if observed is not None and observed > LAST_TS:
            raise ProtocolError(f"maxObservedTimestamp {observed} is past any timestamp this "
                                "server gives")
        if observed is not None:  # never answer from before what the client has seen
            self.promised = max(self.promised, observed)

    def on_Event(self, message: dict) -> None:
        pass  # client telemetry (e.g. reconnect statistics): nothing to do

    def on_ModifyQuerySet(self, message: dict) -> None:
        base, new = _id(message, "baseVersion"), _id(message, "newVersion")
        if base != self.query_set:
            raise ProtocolError(f"Invalid base version {base}, expected {self.query_set}")
        if new <= base:
            raise ProtocolError(f"newVersion {new} must be greater than baseVersion {base}")
        modifications = message.get("modifications")
        if not isinstance(modifications, list):
            raise ProtocolError("ModifyQuerySet needs modifications")
        changes = []
        for mod in modifications:
            if not isinstance(mod, dict):
                raise ProtocolError("Each modification must be an object")
            query_id = _id(mod, "queryId")
            if mod.get("type") == "Add":
                changes.append(self.add(query_id, mod))
            elif mod.get("type") == "Remove":
                if query_id in self.queries:
                    self.unsubscribe(query_id)
                    changes.append({"type": "QueryRemoved", "queryId": query_id})
            else:
                raise ProtocolError("Each modification must be an Add or a Remove")
        self.query_set = new
        self.transition(changes)

    def on_Authenticate(self, message: dict) -> None:
        base = _id(message, "baseVersion")
        if base != self.identity_version:
            raise ProtocolError(
                f"Invalid identity base version {base}, expected {self.identity_version}")
        kind, value = message.get("tokenType"), message.get("value")
        if kind == "None":
            self.identity, self.token = ANONYMOUS, None
        elif kind == "User" and isinstance(value, str):
            try:
                self.identity, self.token = check_token(self.app, value, self.address), value
            except TransportError as error:
                if error.status == 503:
                    raise
                self.auth_failed(error, attempted=True)
        elif kind == "Admin":
            self.auth_failed(TransportError(401, "InvalidToken", "Admin keys are not "
                                            "supported; send a service token"), attempted=True)
        else:
            raise ProtocolError("Authenticate needs tokenType User (with a value) or None")
        moved = {query_id: key for query_id, sub in self.queries.items()
                 if (key := self.key(sub.path, sub.args_key)) != sub.key}
        try:  # an Authenticate is a call, and so is each signed-in query it runs again
            for _ in range(1 + len(moved)):
                limit(self.app, self.identity, self.address)
        except TransportError as error:
            self.auth_failed(error, attempted=True)
        self.identity_version = base + 1
        for query_id, key in moved.items():  # results of signed-in queries depend on who asks
            sub = self.queries[query_id]
            self.live.unwatch(sub.key)
            self.live.watch(key)
            sub.key = key
        self.refresh(force=True)

    def on_Mutation(self, message: dict) -> None:
        request_id = _id(message, "requestId")
        response = {"type": "MutationResponse", "requestId": request_id, "success": False}
        try:
            identity = self.caller()
            limit(self.app, identity, self.address)
            path, args = self.call_args(message)
            response.update(result=call(path, args, identity=identity, source="sync",
                                        kind="mutation", public=True), success=True)
        except FunctionError as error:
            response.update(result=error.message, errorData=error.data)
        except TransportError as error:
            response["result"] = f"{error.code}: {error.message}"
        # Every answer carries a ts that the transition sent next reaches: the Rust client
        # (and so the Python one) completes a mutation, even a refused one, on that transition.
        self.promised = max(self.promised, time.time_ns(), self.ts + 1)
        self.send({**response, "ts": u64(self.promised), "logLines": []})
        self.refresh(force=True)  # the client sees its own write

    def on_Action(self, message: dict) -> None:
        request_id = _id(message, "requestId")
        try:
            limit(self.app, self.caller(), self.address)
            error = "This service has no actions"
        except TransportError as refused:
            error = f"{refused.code}: {refused.message}"
        self.send({"type": "ActionResponse", "requestId": request_id, "success": False,
                   "result": error, "logLines": []})


def _refused(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    return Response(json.dumps({"code": code, "message": message}), status=status,
                    headers=headers, mimetype="application/json")


def _finished(ws: Server) -> Response:
    """What the view returns once the socket is closed: nothing more may be written."""

    class Finished(Response):
        def __call__(self, environ, start_response):
            if ws.mode == "gunicorn":
                raise StopIteration()  # gunicorn closes the connection, writing nothing
            if ws.mode == "werkzeug":
                return super().__call__(environ, start_response)
            return []

    return Finished()


def sync(client_version: str | None = None) -> Response:
    """A live session on this WebSocket, if the worker and the address have room for it."""
    app = current_app._get_current_object()
    watcher = app.extensions["sync_watcher"]
    if watcher.draining:
        return _refused(503, "ServiceRestart", "This worker is stopping; connect again",
                        {"Retry-After": "1"})
    watcher.start()
    slots: SocketSlots = app.extensions["socket_slots"]
    address = request.remote_addr
    refusal = slots.take(address)
    if refusal is not None:
        return _refused(503, "TooManySockets", refusal, {"Retry-After": "5"})
    try:
        try:
            ws = BoundedServer(request.environ, max_message_size=MAX_MESSAGE_BYTES,
                               ping_interval=app.config["SYNC_PING_SECONDS"],
                               send_seconds=app.config["SYNC_SEND_SECONDS"],
                               max_unread_messages=MAX_UNREAD_MESSAGES,
                               max_unread_characters=MAX_UNREAD_CHARACTERS,
                               event_class=Doorbell)
        except Exception:  # noqa: BLE001 - whatever the handshake refused, it is the client's
            return _refused(400, "BadWebSocketHandshake", "Not a WebSocket handshake")
        try:
            Session(app, ws, address).run()
        finally:
            try:
                ws.close()
            except (ConnectionClosed, OSError):
                pass
    finally:
        slots.give_back(address)
    return _finished(ws)


def init_app(app: Flask) -> None:
    app.extensions["sync_watcher"] = Watcher(app)
    app.extensions["live_results"] = LiveResults(app.extensions["catalog_marks"])
    app.extensions["socket_slots"] = SocketSlots(app.config["SYNC_SOCKETS_PER_WORKER"],
                                                 app.config["SYNC_SOCKETS_PER_ADDRESS"])
    for url in URLS:
        app.add_url_rule(url, "sync", sync, websocket=True)

    @app.errorhandler(WebsocketMismatch)
    def _not_a_handshake(_error: WebsocketMismatch) -> Response:
        """A plain request to the sync URL (or a WebSocket to any other): said in the API's
        words, not Werkzeug's "the browser (or proxy) sent a request..."."""
        if request.environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            return _refused(400, "BadWebSocketHandshake",
                            f"{request.path} does not take a WebSocket; the sync protocol is at "
                            "/api/sync")
        return _refused(400, "BadWebSocketHandshake",
                        f"{request.path} takes a WebSocket: a GET with 'Connection: Upgrade' "
                        "and 'Upgrade: websocket'")
