"""wire/websocket.py: a peer that reads nothing, or sends faster than its session reads, is
closed; the socket's server end is held to its bounds directly, over a socket pair."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from simple_websocket import ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from wire.websocket import BoundedServer


class Peer:
    """The client end of a socket pair whose server end is a BoundedServer."""

    def __init__(self, send_seconds: float, unread_messages: int = 10_000,
                 unread_characters: int = 1 << 23) -> None:
        self.sock, server_end = socket.socketpair()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up soon
        self.ws = WSConnection(ConnectionType.CLIENT)
        head = self.ws.send(Request(host="catalog", target="/api/sync")).decode()
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if line)
        environ = {"gunicorn.socket": server_end,
                   **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}}
        self.server = BoundedServer(environ, send_seconds=send_seconds, ping_interval=60,
                                    max_message_size=1 << 20,
                                    max_unread_messages=unread_messages,
                                    max_unread_characters=unread_characters)
        self.events = self.read_until(AcceptConnection, 10)

    def read_until(self, kind: type, seconds: float) -> list:
        """Events the server sent, up to one of `kind` (within `seconds`)."""
        deadline, events = time.monotonic() + seconds, []
        self.sock.settimeout(seconds)
        while time.monotonic() < deadline:
            data = self.sock.recv(65536)
            if not data:
                break
            self.ws.receive_data(data)
            for event in self.ws.events():
                events.append(event)
                if isinstance(event, kind):
                    return events
        raise AssertionError(f"no {kind.__name__} within {seconds} s: {events[-3:]}")

    def close(self) -> None:
        self.sock.close()
        self.server.sock.shut()


@pytest.fixture
def peer():
    made = []
    yield lambda *args, **bounds: made.append(Peer(*args, **bounds)) or made[-1]
    for each in made:
        each.close()


def test_a_peer_that_reads_nothing_fails_the_write_within_its_deadline(peer):
    client = peer(0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        for _ in range(1000):  # 100 MB: far more than the socket pair's buffers hold
            client.server.send("y" * 100_000)
    assert time.monotonic() - started < 10
    with pytest.raises(OSError):  # the connection was shut: nothing more is written
        client.server.sock.send(b"x")


@pytest.mark.waits
def test_a_slow_reader_that_keeps_taking_bytes_is_waited_for(peer):
    """The deadline is on progress, not on a whole message: 2 MB read in small sips, each
    much sooner than the deadline, arrive whole, though they take longer than it in all."""
    client = peer(1.0)
    payload = "y" * 2_000_000
    sent = threading.Thread(target=client.server.send, args=(payload,))
    sent.start()
    got, started = 0, time.monotonic()
    client.sock.settimeout(10)
    while got < len(payload):
        time.sleep(0.01)  # the pace of a slow reader, not a wait for an outcome
        data = client.sock.recv(8192)
        assert data, "the connection was closed"
        client.ws.receive_data(data)
        got += sum(len(e.data) for e in client.ws.events() if isinstance(e, TextMessage))
    sent.join(10)
    assert got == len(payload) and time.monotonic() - started > 1.0


@pytest.mark.parametrize("bound", [{"unread_messages": 100}, {"unread_characters": 10_000}])
def test_a_peer_that_sends_faster_than_it_is_read_is_closed_with_1008(peer, bound):
    client = peer(5, **bound)
    frames = b"".join(client.ws.send(TextMessage(json.dumps({"n": n, "pad": "x" * 90})))
                      for n in range(101))  # 101 messages of about 100 characters
    client.sock.sendall(frames)  # nobody reads them on the server's side
    closing = client.read_until(CloseConnection, 10)[-1]
    assert (closing.code, closing.reason) == (1008, "Too many unread messages")
    assert client.server.input_buffer == []  # dropped: the session reads nothing more
    assert client.server.input_buffer.characters == 0
    with pytest.raises(ConnectionClosed):
        client.server.receive(timeout=5)
    with pytest.raises(ConnectionClosed):  # the session's own writes stop there
        client.server.send("late")


def test_messages_within_the_bounds_are_kept_for_the_session(peer):
    client = peer(5, unread_messages=100, unread_characters=10_000)
    for n in range(90):  # about 9,000 characters
        client.sock.sendall(client.ws.send(TextMessage(json.dumps({"n": n, "pad": "x" * 90}))))
    received = [json.loads(client.server.receive(timeout=5))["n"] for _ in range(90)]
    assert received == list(range(90))
    assert client.server.input_buffer.characters == 0
