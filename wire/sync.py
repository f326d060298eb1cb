"""Live queries: enough of Convex's sync protocol for the official `ConvexClient`.

A client opens a WebSocket at `/api/<client version>/sync` and sends `Connect`, then
`ModifyQuerySet` (queries to add or remove), `Authenticate` (a service token) and `Mutation`
messages. The server answers with `Transition` messages that move the client from one version
`{querySet, identity, ts}` to the next, carrying only the query results that changed, and with
`MutationResponse`s whose `ts` a later transition always reaches, so that a mutation's promise
resolves only once its own write is visible (read-your-writes).

Changes made anywhere (another worker, another host, the console, the CLI) are noticed by a
per-process watcher that polls two cheap fingerprints in the shared database: the catalog
version and the statistics. On a change, it bumps the host's change marks (so the read caches
look again, whoever made the change), and every open subscription re-runs its query through the
ordinary runtime and sends a result only when it differs.
"""

from __future__ import annotations

import base64
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from flask_sock import ConnectionClosed, Sock
from sqlalchemy import func, select

from db import get_db
from db.engine import autocommit_connection
from db.schema import CatalogState, ModelStats
from engine.errors import FunctionError, TransportError
from engine.runtime import ANONYMOUS, Identity, call
from functions.access import authenticate_token

log = logging.getLogger("catalog.sync")
sock = Sock()
POLL_SECONDS = 0.05
PING_SECONDS = 15.0
MAX_MESSAGE_BYTES = 1 << 20
MAX_QUERIES = 1000


class ProtocolError(Exception):
    """The client broke the protocol: the session ends with a FatalError."""


def u64(ts: int) -> str:
    return base64.b64encode(struct.pack("<Q", ts)).decode()


class Watcher:
    """One per process: notices committed changes in the shared database."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.generation = 0
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="catalog-watcher", daemon=True).start()

    def _fingerprint(self) -> tuple[int, tuple]:
        with autocommit_connection(get_db().engine) as conn:
            version = conn.scalar(select(CatalogState.version).where(CatalogState.id == 1))
            stats = conn.execute(select(func.coalesce(func.sum(ModelStats.total_generations), 0),
                                        func.coalesce(func.max(ModelStats.updated_at), 0))).one()
        return version, tuple(stats)

    def _run(self) -> None:
        last = None
        while True:
            try:
                with self.app.app_context():
                    current = self._fingerprint()
                if last is not None and current != last:
                    # The caches may not know yet: the change came from another host, or its
                    # writer has not bumped the marks yet. Make them look before re-running.
                    moved = {slot for slot, now, before in zip(("catalog", "stats"), current, last,
                                                               strict=True) if now != before}
                    self.app.extensions["catalog_marks"].bump(moved)
                    self.generation += 1
                last = current
            except Exception:  # noqa: BLE001 - the database may be away; keep watching
                log.warning("sync watcher could not read the catalog", exc_info=True)
            time.sleep(POLL_SECONDS)


@dataclass
class Subscription:
    path: str
    args: Any
    last: str | None = None  # the last result sent, as canonical JSON


@dataclass
class SyncSession:
    """One client connection and its protocol state."""

    ws: Any
    identity: Identity = ANONYMOUS
    query_set: int = 0  # the versions the client has asked for ...
    identity_version: int = 0
    query_set_sent: int = 0  # ... and the ones the last transition reached
    identity_sent: int = 0
    ts: int = 0
    queries: dict[int, Subscription] = field(default_factory=dict)

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message, separators=(",", ":"), allow_nan=False))

    def transition(self, modifications: list[dict]) -> None:
        start = {"querySet": self.query_set_sent, "identity": self.identity_sent,
                 "ts": u64(self.ts)}
        self.ts = max(time.time_ns(), self.ts + 1)
        self.query_set_sent, self.identity_sent = self.query_set, self.identity_version
        end = {"querySet": self.query_set, "identity": self.identity_version, "ts": u64(self.ts)}
        self.send({"type": "Transition", "startVersion": start, "endVersion": end,
                   "modifications": modifications})

    # -- queries --------------------------------------------------------------------------

    def evaluate(self, query_id: int, sub: Subscription) -> dict | None:
        """The query's modification if its result changed since it was last sent."""
        try:
            value = call(sub.path, sub.args, identity=self.identity, source="sync",
                         kind="query", public=True)
            update = {"type": "QueryUpdated", "queryId": query_id, "value": value,
                      "logLines": [], "journal": None}
        except FunctionError as error:
            update = {"type": "QueryFailed", "queryId": query_id,
                      "errorMessage": error.message, "errorData": error.data, "logLines": [],
                      "journal": None}
        except TransportError as error:
            update = {"type": "QueryFailed", "queryId": query_id,
                      "errorMessage": f"{error.code}: {error.message}", "logLines": [],
                      "journal": None}
        canonical = json.dumps(update, sort_keys=True)
        if canonical == sub.last:
            return None
        sub.last = canonical
        return update

    def refresh(self, force: bool = False) -> None:
        changed = [m for qid, sub in list(self.queries.items())
                   if (m := self.evaluate(qid, sub)) is not None]
        if changed or force:
            self.transition(changed)

    # -- messages -------------------------------------------------------------------------

    def handle(self, raw: str | bytes) -> None:
        if len(raw) > MAX_MESSAGE_BYTES:
            raise ProtocolError("Message too large")
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            raise ProtocolError("Message is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise ProtocolError("Message must be an object with a type")
        handler = getattr(self, f"on_{message['type']}", None)
        if handler is None:
            raise ProtocolError(f"Unknown message type {message['type']!r}")
        handler(message)

    def on_Connect(self, message: dict) -> None:
        pass

    def on_Event(self, message: dict) -> None:
        pass

    def on_ModifyQuerySet(self, message: dict) -> None:
        if message.get("baseVersion") != self.query_set:
            raise ProtocolError(
                f"Invalid base version {message.get('baseVersion')}, expected {self.query_set}")
        new_version = message.get("newVersion")
        modifications = message.get("modifications")
        if not isinstance(new_version, int) or not isinstance(modifications, list):
            raise ProtocolError("ModifyQuerySet needs newVersion and modifications")
        changes = []
        for mod in modifications:
            if not isinstance(mod, dict) or not isinstance(mod.get("queryId"), int):
                raise ProtocolError("Each modification needs a queryId")
            if mod.get("type") == "Add":
                if len(self.queries) >= MAX_QUERIES:
                    raise ProtocolError(f"At most {MAX_QUERIES} queries per connection")
                args = mod.get("args", [{}])
                sub = Subscription(str(mod.get("udfPath", "")),
                                   args[0] if isinstance(args, list) and len(args) == 1 else args)
                self.queries[mod["queryId"]] = sub
                changes.append(self.evaluate(mod["queryId"], sub))
            elif mod.get("type") == "Remove":
                if self.queries.pop(mod["queryId"], None) is not None:
                    changes.append({"type": "QueryRemoved", "queryId": mod["queryId"]})
            else:
                raise ProtocolError(f"Unknown modification {mod.get('type')!r}")
        self.query_set = new_version
        self.transition([c for c in changes if c is not None])

    def on_Authenticate(self, message: dict) -> None:
        base = message.get("baseVersion")
        if not isinstance(base, int):
            raise ProtocolError("Authenticate needs a baseVersion")
        kind, value = message.get("tokenType"), message.get("value")
        if kind == "None":
            identity: Identity | None = ANONYMOUS
        elif kind == "User" and isinstance(value, str):
            identity = authenticate_token(current_app._get_current_object(), value)
        else:
            identity = None
        if identity is None:
            self.send({"type": "AuthError", "error": "The token is unknown, expired or revoked",
                       "baseVersion": base, "authUpdateAttempted": True})
            return
        self.identity = identity
        self.identity_version = base + 1
        for sub in self.queries.values():
            sub.last = None  # results may depend on who asks
        self.refresh(force=True)

    def on_Mutation(self, message: dict) -> None:
        request_id, path = message.get("requestId"), message.get("udfPath")
        args = message.get("args", [{}])
        args = args[0] if isinstance(args, list) and len(args) == 1 else args
        try:
            result = call(str(path), args, identity=self.identity, source="sync",
                          kind="mutation", public=True)
        except FunctionError as error:
            self.send({"type": "MutationResponse", "requestId": request_id, "success": False,
                       "result": error.message, "errorData": error.data, "logLines": []})
            return
        except TransportError as error:
            self.send({"type": "MutationResponse", "requestId": request_id, "success": False,
                       "result": f"{error.code}: {error.message}", "logLines": []})
            return
        written = max(time.time_ns(), self.ts + 1)
        self.send({"type": "MutationResponse", "requestId": request_id, "success": True,
                   "result": result, "ts": u64(written), "logLines": []})
        self.refresh(force=True)  # reaches `written`: the client sees its own write

    def on_Action(self, message: dict) -> None:
        self.send({"type": "ActionResponse", "requestId": message.get("requestId"),
                   "success": False, "result": "This service has no actions", "logLines": []})


def serve(ws) -> None:
    app = current_app._get_current_object()
    watcher: Watcher = app.extensions["sync_watcher"]
    watcher.start()
    session = SyncSession(ws)
    seen = watcher.generation
    last_sent = time.monotonic()
    try:
        while True:
            raw = ws.receive(timeout=POLL_SECONDS)
            if raw is not None:
                session.handle(raw)
                last_sent = time.monotonic()
            if watcher.generation != seen:
                seen = watcher.generation
                session.refresh()
                last_sent = time.monotonic()
            if time.monotonic() - last_sent > PING_SECONDS:
                session.send({"type": "Ping"})
                last_sent = time.monotonic()
    except ProtocolError as error:
        session.send({"type": "FatalError", "error": str(error)})
        ws.close(reason=1008, message=str(error)[:120])
    except ConnectionClosed:
        pass


def init_app(app: Flask) -> None:
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"max_message_size": MAX_MESSAGE_BYTES})
    sock.init_app(app)
    app.extensions["sync_watcher"] = Watcher(app)

    @sock.route("/api/<client_version>/sync")
    def sync(ws, client_version: str) -> None:
        serve(ws)
