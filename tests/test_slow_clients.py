"""Slow, silent and greedy clients cannot starve plain requests (real gunicorn, gthread)."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time

import pytest
import requests
from simple_websocket import Client, ConnectionClosed
from simple_websocket import ConnectionError as HandshakeRefused
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from tests.conftest import within
from tests.servers import wait_for

QUERY = {"path": "models:getDefaultModel", "args": {}}
# One worker with two threads for requests: easy to starve, if anything could.
SMALL = {"GUNICORN_THREADS": "2", "SYNC_SOCKETS_PER_WORKER": "3",
         "SYNC_SOCKETS_PER_ADDRESS": "50", "SYNC_CONNECT_SECONDS": "60"}


def ws_url(server, path: str = "/api/1.48.0/sync") -> str:
    return server.url.replace("http", "ws", 1) + path


def open_socket(server, headers=None) -> Client | int:
    """A socket that sends nothing, or the status it was refused with."""
    try:  # (bounded: a server whose threads are all taken would never answer)
        return within(10, Client.connect, ws_url(server), None, headers)
    except HandshakeRefused as refused:
        return refused.status_code


def plain_requests_answer(server, count: int = 10) -> None:
    with requests.Session() as http:
        for _ in range(count):
            assert http.get(f"{server.url}/healthz", timeout=10).status_code == 200
            answer = http.post(f"{server.url}/api/query", json=QUERY, timeout=10)
            assert answer.json()["value"]["modelId"] == "luma/ray-flash-2-540p"


def raw_socket(server, receive_buffer: int | None = None) -> tuple[socket.socket, WSConnection]:
    """A WebSocket at /api/sync whose every byte the test sends and reads itself (wsproto)."""
    peer = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    if receive_buffer is not None:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    ws = WSConnection(ConnectionType.CLIENT)
    peer.sendall(ws.send(Request(host="127.0.0.1", target="/api/sync")))
    handshake = b""
    while b"\r\n\r\n" not in handshake:
        handshake += peer.recv(4096)
    ws.receive_data(handshake)
    assert any(isinstance(event, AcceptConnection) for event in ws.events())
    return peer, ws


def closed_within(ws: Client, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.receive(timeout=0.1)
    except ConnectionClosed:
        return True
    return False


def test_more_sockets_than_the_cap_leave_plain_requests_answering(seeded, gunicorn):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, **SMALL)
    held = [open_socket(server) for _ in range(12)]
    try:
        admitted = [ws for ws in held if isinstance(ws, Client)]
        assert len(admitted) == 3
        assert [s for s in held if not isinstance(s, Client)] == [503] * 9
        refused = requests.get(f"{server.url}/api/1.48.0/sync", timeout=10, headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
        assert refused.status_code == 503 and refused.json()["code"] == "TooManySockets"
        assert int(refused.headers["Retry-After"]) > 0
        plain_requests_answer(server)
    finally:
        for ws in held:
            if isinstance(ws, Client):
                ws.close()
    assert server.process.poll() is None


def test_one_address_holds_a_bounded_share_of_the_sockets(seeded, gunicorn):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, BEHIND_PROXY="1",
                      **{**SMALL, "SYNC_SOCKETS_PER_WORKER": "4",
                         "SYNC_SOCKETS_PER_ADDRESS": "2"})
    greedy = [open_socket(server, {"X-Forwarded-For": "203.0.113.7"}) for _ in range(4)]
    other = [open_socket(server, {"X-Forwarded-For": "198.51.100.1"}) for _ in range(2)]
    try:
        assert [isinstance(ws, Client) for ws in greedy] == [True, True, False, False]
        assert greedy[2:] == [503, 503]
        assert all(isinstance(ws, Client) for ws in other)
    finally:
        for ws in greedy + other:
            if isinstance(ws, Client):
                ws.close()


def test_silent_and_idle_sockets_are_closed_and_their_threads_freed(seeded, gunicorn):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1,
                      **{**SMALL, "SYNC_CONNECT_SECONDS": "1", "SYNC_IDLE_SECONDS": "1",
                         "SYNC_PING_SECONDS": "0.3"})
    silent = [open_socket(server) for _ in range(3)]  # every slot of the worker
    assert all(closed_within(ws, 10) for ws in silent)  # no Connect: closed

    idle = within(10, Client.connect, ws_url(server))
    idle.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0}))
    assert closed_within(idle, 10)  # connected, but no subscription and nothing said

    chatty = within(10, Client.connect, ws_url(server))
    chatty.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0}))
    deadline = time.monotonic() + 10
    try:  # telemetry alone does not keep a session without subscriptions open
        while time.monotonic() < deadline:
            chatty.send(json.dumps({"type": "Event", "eventType": "x", "event": {}}))
            chatty.receive(timeout=0.2)
        raise AssertionError("a session that only sends Events was kept")
    except (ConnectionClosed, OSError):
        pass  # closed by the server (a send may find the socket gone already)

    live = within(10, Client.connect, ws_url(server))  # the slots came back
    try:
        live.send(json.dumps({"type": "Connect", "sessionId": "s", "connectionCount": 0}))
        live.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                              "modifications": [{"type": "Add", "queryId": 0, "args": [{}],
                                                 "udfPath": "models:getDefaultModel"}]}))
        pings = 0
        while pings < 6:  # a subscribed session is kept (and pinged) past the idle time
            message = json.loads(live.receive(timeout=10))
            pings += message["type"] == "Ping"
    finally:
        live.close()
    plain_requests_answer(server, 2)


def test_a_peer_that_stops_answering_pings_is_closed(seeded, gunicorn):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1,
                      **{**SMALL, "SYNC_PING_SECONDS": "0.5"})
    peer, ws = raw_socket(server)
    for message in ({"type": "Connect", "sessionId": "s", "connectionCount": 0},
                    {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                     "modifications": [{"type": "Add", "queryId": 0, "args": [{}],
                                        "udfPath": "models:getDefaultModel"}]}):
        peer.sendall(ws.send(TextMessage(json.dumps(message))))
    # From now on this peer reads, but answers nothing: no pong.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not peer.recv(65536):
            break
    else:
        raise AssertionError("the server kept a peer that answers no ping")
    peer.close()


def test_a_peer_that_stops_reading_is_closed_and_its_place_freed(seeded, gunicorn):
    """It subscribes, then asks for results again and again and reads none: the session's
    writes fill the connection and wait. It once held its thread and its place for good."""
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1,
                      **{**SMALL, "SYNC_SOCKETS_PER_WORKER": "1", "SYNC_SEND_SECONDS": "1"})
    peer, ws = raw_socket(server, receive_buffer=4096)  # fills up soon
    add = {"type": "Add", "queryId": 0, "args": [{}], "udfPath": "models:getActiveModels"}
    messages = [{"type": "Connect", "sessionId": "s", "connectionCount": 0}]
    for version in range(8000):  # each Add is answered with every active model (10 MB)
        change = add if version % 2 == 0 else {"type": "Remove", "queryId": 0}
        messages.append({"type": "ModifyQuerySet", "baseVersion": version,
                         "newVersion": version + 1, "modifications": [change]})
    peer.sendall(b"".join(ws.send(TextMessage(json.dumps(m))) for m in messages))
    try:
        deadline = time.monotonic() + 30
        while not isinstance(second := open_socket(server), Client):
            assert second == 503 and time.monotonic() < deadline, second  # the one place
        second.close()
        plain_requests_answer(server, 2)
    finally:
        peer.close()


def slow_requests(server, count: int) -> list[socket.socket]:
    """`count` requests that announce a 100-byte body and send none of it yet."""
    conns = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn.sendall(b"POST /api/query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nOrigin: https://app.example.com\r\nContent-Length: 100\r\n\r\n")
        conns.append(conn)
    return conns


def drip(conns: list[socket.socket], seconds: float) -> None:
    """Send the bodies a byte every 0.1 s (the pace of the attack, not a wait for an outcome)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for conn in conns:
            try:
                conn.send(b" ")
            except OSError:
                pass  # answered and closed
        time.sleep(0.1)


def test_slow_request_bodies_cannot_hold_the_threads(seeded, gunicorn):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, REQUEST_READ_SECONDS="1",
                      **SMALL)
    conns = slow_requests(server, 12)  # more than the worker's threads
    attack = threading.Thread(target=drip, args=(conns, 4))
    attack.start()
    try:
        plain_requests_answer(server, 5)
    finally:
        attack.join()
    answers = []
    for conn in conns:
        try:
            answers.append(conn.recv(4096))
        except OSError:
            answers.append(b"")
        conn.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
    assert b'"code": "RequestTimeout"' in answers[0]
    assert b"Access-Control-Allow-Origin: *" in answers[0]  # a web page may read it too


def test_slow_request_heads_cannot_hold_the_threads(seeded, gunicorn):
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, REQUEST_READ_SECONDS="1",
                      **SMALL)
    conns = []
    for _ in range(12):  # headers that never end, a byte at a time (slowloris)
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        conn.sendall(b"POST /api/query HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        conns.append(conn)
    attack = threading.Thread(target=drip, args=(conns, 4))
    attack.start()
    try:
        plain_requests_answer(server, 5)
    finally:
        attack.join()
    for conn in conns:
        try:
            assert conn.recv(4096) == b""  # closed by the server, answered nothing
        except ConnectionResetError:
            pass  # closed with bytes unread: as closed
        conn.close()


def never_reading(server, count: int, requests_each: int = 100) -> list[socket.socket]:
    """Connections from another address (127.0.0.2) that ask for large answers, pipelined,
    and read none of them."""
    conns = []
    for _ in range(count):
        conn = socket.socket()
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        conn.settimeout(10)
        conn.bind(("127.0.0.2", 0))
        conn.connect(("127.0.0.1", server.port))
        conn.sendall(b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n"
                     b"Origin: https://app.example.com\r\n\r\n" * requests_each)
        conns.append(conn)
    return conns


def test_clients_that_never_read_their_answers_cannot_hold_the_threads(seeded, gunicorn):
    """gunicorn writes an answer with a blocking sendall: a client that asks for large answers
    (here pipelined, 100 at a time) and reads none had held every thread for as long as it
    kept its connections. Its connection is closed RESPONSE_SEND_SECONDS into an answer."""
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, RESPONSE_SEND_SECONDS="1",
                      **SMALL)
    assert len(requests.get(f"{server.url}/api/openapi.json", timeout=10).content) > 50_000
    conns = never_reading(server, 6)  # more than the worker's threads
    try:
        plain_requests_answer(server, 5)
    finally:
        ended = [_read_to_the_end(conn)[1] for conn in conns]
    assert all(ended), "the server closes a connection that does not take its answers"


def test_an_address_holds_at_most_two_threads_with_answers_it_does_not_take(seeded, gunicorn):
    """Forty connections that take no answer, against five threads, with a minute to take
    one: had each waited its turn for a thread and held it a minute, the others would wait
    eight minutes. An address may hold two stuck answers (STUCK_PER_ADDRESS) a worker; the
    rest are cut within seconds, and its new requests are refused at once, 503 SlowClient."""
    server = gunicorn(seeded.config["DATABASE_URL"], workers=1, RESPONSE_SEND_SECONDS="60",
                      **SMALL)
    conns = never_reading(server, 40)
    try:
        plain_requests_answer(server, 5)  # from 127.0.0.1: within the requests' 10 s each
        # (on a fast run they are answered before any answer is 2 s stuck: wait for the cut)
        wait_for(lambda: "127.0.0.2 took" in server.log.read_text(), 30, "127.0.0.2's cut")
        [asking] = never_reading(server, 1, requests_each=3)  # the same address, again
        answer, ended = _read_to_the_end(asking)
    finally:
        for conn in conns:
            conn.close()
    assert answer.startswith(b"HTTP/1.1 503") and b'"code": "SlowClient"' in answer, answer
    assert b"Retry-After: " in answer and b"200 OK" not in answer
    assert b"Access-Control-Allow-Origin: *" in answer  # a web page may read it too
    assert ended  # a few bytes each, then the server ended the connection


def _read_to_the_end(conn: socket.socket) -> tuple[bytes, bool]:
    """What the server sent, and whether it ended the connection (not 10 s of silence)."""
    got = b""
    try:
        while chunk := conn.recv(65536):
            got += chunk
        return got, True
    except TimeoutError:
        return got, False
    except OSError:
        return got, True  # reset
    finally:
        conn.close()


@pytest.mark.waits
def test_a_slow_reader_that_keeps_reading_is_waited_for(monkeypatch):
    """The deadline is per part of an answer (wire/bodies.py `Sending`): a client that takes a
    1 MiB answer at about 0.4 MiB/s, for longer than the deadline in all, gets all of it; one that
    stops reading is cut within a deadline. A real socket pair and the real reaper.

    Parts of 16 KiB here: each is read in a tenth of the deadline or less, so a loaded machine
    that slows the reader several times over still reads every part in time (with 256 KiB parts,
    each took about half the deadline)."""
    from wire.bodies import Sending

    monkeypatch.setattr(Sending, "PART", 16 * 1024)

    def send(answer: bytes, reading: bool) -> tuple[int, BaseException | None]:
        server, client = socket.socketpair()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        failed: list[BaseException] = []

        def write() -> None:
            sending = Sending([answer], server, 1.5)
            try:
                for part in sending:
                    server.sendall(part)
            except OSError as error:
                failed.append(error)
            finally:
                sending.close()
                server.close()

        writer = threading.Thread(target=write)
        writer.start()
        got, started = 0, time.monotonic()
        client.settimeout(10)
        try:
            while reading or time.monotonic() - started < 5:
                if reading:
                    chunk = client.recv(16 * 1024)
                    if not chunk:
                        break
                    got += len(chunk)
                    time.sleep(0.02)  # a steady reader: about 0.4 MiB/s, as buffered here
                elif not writer.is_alive():
                    break
                else:
                    writer.join(0.1)
        finally:
            writer.join(10)
            client.close()
        return got, failed[0] if failed else None

    answer = b"x" * (1024 * 1024)  # 64 parts
    got, failed = send(answer, reading=True)
    assert (got, failed) == (len(answer), None)  # more than 1.5 s in all, and whole
    got, failed = send(answer, reading=False)
    assert isinstance(failed, OSError)  # cut: the reaper shut the socket
