"""Live queries: the official ConvexClient (under Node) subscribes and sees every change."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import requests

from tests.conftest import ROOT

CLIENT = ROOT / "tests" / "convex_client"
SOCKETS = {"GUNICORN_THREADS": "16"}  # each open socket holds a worker thread


def test_official_convex_client_live_queries(seeded, gunicorn, make_token):
    token = make_token("catalog:write")
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, **SOCKETS)
    node = subprocess.Popen(["node", "live.mjs", server.url, token], cwd=CLIENT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    steps: dict[str, dict] = {}
    try:
        for line in node.stdout:
            step = json.loads(line)
            steps[step["step"]] = step
            if step["step"] == "restart":
                server.stop()
                server.start()
                node.stdin.write("restarted\n")
                node.stdin.flush()
        node.wait(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, node.stderr.read()

    assert steps["subscribed"]["credits"] == 162 and steps["subscribed"]["active"] == 3
    assert steps["pushed"]["credits"] == 180
    assert steps["pushed"]["otherUpdates"] == 1  # Veo-3's quote did not change: not sent
    assert steps["unchanged"]["quoteUpdates"] == 2  # a description change is not a new quote
    assert steps["ownWrite"]["credits"] == 225  # seen by the time the mutation resolved
    assert steps["refused"]["error"]["code"] == "DEFAULT_REQUIRED"
    assert steps["unsubscribed"]["newUpdates"] == 0
    assert steps["resumed"]["costPerSecond"] == 0.4


def test_hostile_sync_messages_end_the_session_not_the_worker(seeded, gunicorn):
    from simple_websocket import Client, ConnectionClosed

    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, **SOCKETS)
    endpoint = server.url.replace("http", "ws") + "/api/1.48.0/sync"

    def fatal(*messages: str) -> str:
        ws = Client.connect(endpoint)
        try:
            for message in messages:
                ws.send(message)
            while True:
                answer = json.loads(ws.receive(timeout=10))
                if answer["type"] == "FatalError":
                    return answer["error"]
        finally:
            # The server ends the session: by now the client's reader thread may have closed
            # the socket itself, and closing it again then fails with EBADF.
            try:
                ws.close()
            except (ConnectionClosed, OSError):
                pass

    assert "not valid JSON" in fatal("{nope")
    assert "Unknown message type" in fatal(json.dumps({"type": "DropTables"}))
    assert "with a type" in fatal("[1, 2, 3]")
    assert "Invalid base version" in fatal(json.dumps(
        {"type": "ModifyQuerySet", "baseVersion": 7, "newVersion": 8, "modifications": []}))
    assert "queryId" in fatal(json.dumps(
        {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
         "modifications": [{"type": "Add", "udfPath": "models:getActiveModels"}]}))

    ws = Client.connect(endpoint)
    ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                        "modifications": [
                            {"type": "Add", "queryId": 0, "udfPath": "models:noSuch",
                             "args": [{}]},
                            {"type": "Add", "queryId": 1, "udfPath": "models:getModelById",
                             "args": [{"modelId": 5}]},
                            {"type": "Add", "queryId": 2, "udfPath": "models:getDefaultModel",
                             "args": [{}]}]}))
    transition = json.loads(ws.receive(timeout=10))
    ws.close()
    by_id = {m["queryId"]: m for m in transition["modifications"]}
    assert by_id[0]["type"] == "QueryFailed" and "FunctionNotFound" in by_id[0]["errorMessage"]
    assert by_id[1]["type"] == "QueryFailed"
    assert by_id[1]["errorData"]["code"] == "INVALID_ARGUMENT"
    assert by_id[2]["value"]["modelId"] == "luma/ray-flash-2-540p"
    assert server.process.poll() is None
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_a_change_made_where_the_marks_are_not_shared_is_pushed(
        seeded, gunicorn, tmp_path, monkeypatch):
    """Another host changes the price while this worker's caches are hot: the subscription
    still gets the new quote (the watcher makes the caches look again before re-running)."""
    from simple_websocket import Client

    from tests.conftest import run_as_system
    from wsgi import create_app

    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, **SOCKETS)
    ws = Client.connect(server.url.replace("http", "ws") + "/api/1.48.0/sync")
    done = threading.Event()
    try:
        ws.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0}))
        ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                            "modifications": [{
                                "type": "Add", "queryId": 0, "udfPath": "pricing:getCreditCost",
                                "args": [{"modelId": "luma/ray-2-720p", "duration": 5,
                                          "quality": "high"}]}]}))
        first = json.loads(ws.receive(timeout=10))
        assert first["modifications"][0]["value"]["costPerSecond"] == 0.18
        threading.Thread(target=keep_reading, args=(server.url, done), daemon=True).start()
        time.sleep(0.3)  # the worker's caches are now never older than a few milliseconds
        monkeypatch.setenv("CATALOG_MARKS_DIR", str(tmp_path / "elsewhere"))
        elsewhere = create_app({"DATABASE_URL": seeded.config["DATABASE_URL"],
                                "SECRET_KEY": "x"})
        run_as_system(elsewhere, "models:updateModel",
                      {"modelId": "luma/ray-2-720p", "patch": {"costPerSecond": 0.25}})
        elsewhere.extensions["catalog_db"].dispose()
        while True:
            message = json.loads(ws.receive(timeout=10))
            if message["type"] == "Transition" and message["modifications"]:
                break
        assert message["modifications"][0]["value"]["costPerSecond"] == 0.25
    finally:
        done.set()
        ws.close()


def keep_reading(url: str, done: threading.Event) -> None:
    with requests.Session() as http:
        while not done.is_set():
            try:
                http.post(f"{url}/api/query", json={"path": "models:getActiveModels"},
                          timeout=10)
            except requests.RequestException:
                return  # the server stopped at the test's end


def test_a_stopping_worker_ends_its_sessions_so_their_clients_reconnect(seeded, gunicorn):
    """A worker that stops (max_requests reached, or told to by a deploy's signal) closes each
    live session with 1012 Service Restart, at once: its client reconnects to a worker that
    serves. (The session had held the stopping worker until gunicorn's graceful timeout, 20 s,
    then lost its socket without a word.)"""
    from simple_websocket import ConnectionClosed
    from simple_websocket import ConnectionError as HandshakeRefused

    from tests.sync_client import QUOTE, SyncClient

    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, GUNICORN_MAX_REQUESTS="20",
                      **SOCKETS)

    def subscribed() -> SyncClient:
        """As a client does: one that reached the stopping worker is refused (503), or told
        1012 at once, and tries again."""
        for _ in range(10):
            try:
                live = SyncClient(server.url)
            except HandshakeRefused as refused:
                assert refused.status_code == 503
                continue
            try:
                live.connect()
                quote = live.subscribe(0, "pricing:getCreditCost", QUOTE)
            except ConnectionClosed as closed:
                assert closed.reason == 1012
                continue
            assert quote["value"]["credits"] == 162
            return live
        raise AssertionError("no worker took a session")

    live = subscribed()
    for _ in range(30):  # the worker restarts after 20 to 22 requests
        requests.get(f"{server.url}/healthz", timeout=30)  # (across a worker's boot)
        if live.ws.connected is False:
            break
    assert live.close_code() == 1012
    subscribed().close()  # the new worker serves

    live = subscribed()
    server.process.send_signal(signal.SIGTERM)  # a deploy stops the host
    assert live.close_code() == 1012
    assert server.process.wait(timeout=60) == 0
