"""A raw client of the sync protocol, for tests that send what the official clients would not,
and a real server in this process (werkzeug's) for them to talk to."""

from __future__ import annotations

import json
import threading
import time

from simple_websocket import Client, ConnectionClosed
from werkzeug.serving import make_server

QUOTE = {"modelId": "luma/ray-2-720p", "duration": 9, "quality": "high"}


class LiveServer:
    """The app served by werkzeug's threaded server on a free loopback port, in this process:
    its sockets, threads and extensions are the test's to inspect."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        # (shutdown waits for the loop's next poll: 0.5 s by default, at every test's end)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
        self.app.extensions["sync_watcher"].stop()


class SyncClient:
    """One socket: send messages as dicts (or raw text) and read the server's answers."""

    def __init__(self, url: str, path: str = "/api/1.48.0/sync", headers=None) -> None:
        self.ws = Client.connect(url.replace("http", "ws", 1) + path, headers=headers)
        self.query_set = 0
        self.identity = 0
        self.request_id = 0

    def send(self, message) -> None:
        self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def receive(self, timeout: float = 10, pings: bool = False) -> dict:
        """The next message (Pings skipped unless asked for); ConnectionClosed once closed."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message from the server")
            raw = self.ws.receive(timeout=left)
            if raw is None:
                continue
            message = json.loads(raw)
            if pings or message["type"] != "Ping":
                return message

    def until(self, predicate, timeout: float = 10) -> dict:
        """The first message that satisfies `predicate`, skipping the others."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            if predicate(message):
                return message

    def closed(self, timeout: float = 10) -> list[dict]:
        """Every message until the server closes the socket."""
        seen = []
        try:
            while True:
                seen.append(self.receive(timeout))
        except ConnectionClosed:
            return seen

    def close_code(self, timeout: float = 15) -> int:
        """The code the server closes the socket with, skipping any messages before it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ws.receive(timeout=max(0.01, deadline - time.monotonic()))
            except ConnectionClosed as closed:
                return closed.reason
            if time.monotonic() >= deadline:
                raise TimeoutError("the server never closed the socket")

    def connect(self) -> None:
        self.send({"type": "Connect", "sessionId": "00000000-0000-0000-0000-000000000000",
                   "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0})

    def modify(self, *modifications: dict) -> dict:
        self.send({"type": "ModifyQuerySet", "baseVersion": self.query_set,
                   "newVersion": self.query_set + 1, "modifications": list(modifications)})
        self.query_set += 1
        return self.until(lambda m: m["type"] == "Transition"
                          and m["endVersion"]["querySet"] == self.query_set)

    def subscribe(self, query_id: int, path: str, args: dict | None = None) -> dict:
        """The first result of a query: its QueryUpdated or QueryFailed modification."""
        transition = self.modify({"type": "Add", "queryId": query_id, "udfPath": path,
                                  "args": [args or {}]})
        return next(m for m in transition["modifications"] if m["queryId"] == query_id)

    def authenticate(self, token: str | None) -> dict:
        """The answer to an Authenticate: a Transition, or an AuthError."""
        message = {"type": "Authenticate", "baseVersion": self.identity, "tokenType": "None"}
        if token is not None:
            message.update(tokenType="User", value=token)
        self.send(message)
        self.identity += 1
        return self.until(lambda m: m["type"] == "AuthError" or (
            m["type"] == "Transition" and m["endVersion"]["identity"] == self.identity))

    def mutation(self, path: str, args: dict) -> dict:
        self.request_id += 1
        self.send({"type": "Mutation", "requestId": self.request_id, "udfPath": path,
                   "args": [args]})
        return self.until(lambda m: m["type"] in ("MutationResponse", "AuthError", "FatalError"))

    def close(self) -> None:
        try:
            self.ws.close()
        except (ConnectionClosed, OSError):
            pass  # the server may have closed it first
