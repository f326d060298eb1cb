"""Webhooks (functions/webhooks.py) against a real HTTP receiver on 127.0.0.1: Slack-compatible
and HMAC-signed posts, retries with backoff, and recordings never waiting on a delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from functions import monitor
from functions.webhooks import RefusedAddressError, backoff_ms, resolve
from tests.conftest import Api, run_as_system
from tests.servers import wait_for
from tests.test_catalog import RAY
from tests.test_health import evaluate, record
from tests.test_usage import MINUTE, NOW, event, run


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps what it is sent. It answers `statuses` in turn
    (then 200), and holds each request while `gate` is closed."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[dict] = []
        self.statuses = list(statuses or [])
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                receiver.arrived.set()
                receiver.gate.wait(30)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(autouse=True)
def receivers_on_this_host(app):
    """The receivers here listen on 127.0.0.1: a private address, refused unless allowed."""
    app.config["WEBHOOK_PRIVATE_ADDRESSES"] = "1"


@pytest.fixture
def admin(client, make_token) -> Api:
    return Api(client, make_token("admin"))


def deliver(app, now: int, timeout: float = 5) -> list[dict]:
    with app.app_context():
        return monitor.deliver(now, timeout=timeout)


def alert_to(app, admin: Api, webhook: dict) -> None:
    """Add the webhook, then make RAY fail: one alert, queued for it."""
    admin.value("mutation", "models:createWebhook", webhook)
    record(app, RAY, 0, 30)
    evaluate(app)


def test_alerts_are_posted_to_slack_and_signed_webhooks(seeded, admin):
    with Receiver() as receiver:
        slack = admin.value("mutation", "models:createWebhook",
                            {"name": "ops slack", "kind": "slack", "url": receiver.url + "/s"})
        assert "secret" not in slack
        signed = admin.value("mutation", "models:createWebhook",
                             {"name": "pager", "kind": "signed", "url": receiver.url + "/g"})
        secret = signed["secret"]
        assert len(secret) >= 32
        assert all("secret" not in hook for hook in admin.value("query",
                                                                "models:listWebhooks"))
        record(seeded, RAY, 5, 25)
        (alert,) = evaluate(seeded)
        outcomes = deliver(seeded, NOW)
        assert [o["state"] for o in outcomes] == ["delivered", "delivered"]
        by_path = {r["path"]: r for r in receiver.received}
        text = json.loads(by_path["/s"]["body"])["text"]
        assert text.startswith(f"Model {RAY} is now *failing* (was unknown)")
        assert "success rate 16.7% over 15 min (30 generations)" in text
        assert "late" not in text  # sent when it was raised
        generic = by_path["/g"]
        timestamp = generic["headers"]["X-Catalog-Timestamp"]
        assert timestamp == str(NOW // 1000)
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + generic["body"],
                            hashlib.sha256).hexdigest()
        assert generic["headers"]["X-Catalog-Signature"] == f"sha256={expected}"
        payload = json.loads(generic["body"])
        assert payload == {"type": "model.health.changed", "alert": alert}
        assert deliver(seeded, NOW + MINUTE) == []  # delivered once
        listed = {h["name"]: h for h in admin.value("query", "models:listWebhooks")}
        assert listed["pager"]["deliveries"] == {"pending": 0, "delivered": 1, "failed": 0}


def test_a_failed_delivery_is_retried_with_backoff_then_given_up(seeded, admin):
    seeded.config["WEBHOOK_MAX_ATTEMPTS"] = 4
    with Receiver(statuses=[500, 503]) as receiver:
        alert_to(seeded, admin, {"name": "flaky", "kind": "slack", "url": receiver.url})
        (first,) = deliver(seeded, NOW)
        assert (first["state"], first["attempts"]) == ("pending", 1)
        assert first["nextAttemptAt"] == NOW + backoff_ms(1) == NOW + 10_000
        (listed,) = admin.value("query", "models:listWebhooks")
        assert listed["lastFailure"] == {"error": "HTTP 500: ok", "attempts": 1,
                                         "state": "pending", "nextAttemptAt": NOW + 10_000,
                                         "alertId": listed["lastFailure"]["alertId"]}
        assert deliver(seeded, NOW + 9_999) == []  # not due yet
        (second,) = deliver(seeded, NOW + 10_000)
        assert second["nextAttemptAt"] == NOW + 10_000 + 20_000
        (third,) = deliver(seeded, NOW + 30_000)
        assert third["state"] == "delivered" and len(receiver.received) == 3
    assert admin.value("query", "models:listWebhooks")[0]["lastFailure"] is None  # delivered
    # A receiver that is gone: attempts until WEBHOOK_MAX_ATTEMPTS, then failed.
    moved = admin.value("mutation", "models:updateWebhook", {"name": "flaky",
                                                             "url": receiver.url + "/gone"})
    assert moved["deliveries"] == {"pending": 0, "delivered": 1, "failed": 0}  # as listed
    record(seeded, RAY, 30, 0, at=NOW + 16 * MINUTE)
    assert [a["to"] for a in evaluate(seeded, NOW + 16 * MINUTE)] == ["healthy"]
    waiting = admin.value("mutation", "models:updateWebhook", {"name": "flaky", "isActive": True})
    assert waiting["deliveries"] == {"pending": 1, "delivered": 1, "failed": 0}
    moment, states = NOW + 16 * MINUTE, []
    for _ in range(4):
        (outcome,) = deliver(seeded, moment)
        states.append(outcome["state"])
        moment = outcome["nextAttemptAt"]
    assert states == ["pending", "pending", "pending", "failed"]
    assert deliver(seeded, moment + 3_600_000) == []
    hook = admin.value("query", "models:listWebhooks")[0]
    assert hook["deliveries"] == {"pending": 0, "delivered": 1, "failed": 1}
    failure = hook["lastFailure"]
    assert (failure["state"], failure["attempts"], failure["nextAttemptAt"]) == ("failed", 4, None)
    assert failure["error"].startswith("ConnectionRefusedError")  # the receiver is gone
    alerts = admin.value("query", "models:listAlerts",
                         {"paginationOpts": {"numItems": 1, "cursor": None}})
    assert failure["alertId"] == alerts["page"][0]["_id"]  # the newest alert: healthy again


def test_given_up_deliveries_are_sent_again_on_an_admins_word(seeded, admin, client,
                                                              make_token):
    """Once the receiver is fixed: each is due now, with a full round of attempts again;
    what was delivered is left as it is. Sent after a newer alert, it says when it was raised
    (it had read as the model's state now)."""
    seeded.config["WEBHOOK_MAX_ATTEMPTS"] = 2
    with Receiver(statuses=[500, 500]) as receiver:
        alert_to(seeded, admin, {"name": "fixed", "kind": "slack", "url": receiver.url})
        (first,) = deliver(seeded, NOW)
        (given_up,) = deliver(seeded, first["nextAttemptAt"])
        assert given_up["state"] == "failed"
        record(seeded, RAY, 30, 0, at=NOW + 16 * MINUTE)
        evaluate(seeded, NOW + 16 * MINUTE)
        (delivered,) = deliver(seeded, NOW + 16 * MINUTE)  # the receiver is fixed
        assert delivered["state"] == "delivered"
        at = int(time.time() * 1000)
        again = admin.value("mutation", "models:retryWebhook", {"name": "fixed"})
        assert again["retried"] == 1
        assert again["deliveries"] == {"pending": 1, "delivered": 1, "failed": 0}
        assert again["lastFailure"]["attempts"] == 0  # a full round again
        assert at <= again["lastFailure"]["nextAttemptAt"] <= time.time() * 1000  # due now
        (sent,) = deliver(seeded, int(time.time() * 1000))
        assert (sent["state"], sent["attempts"]) == ("delivered", 1)
        texts = [json.loads(r["body"])["text"] for r in receiver.received]
        assert ["*failing*" in t for t in texts] == [True, True, False, True]
        assert ["delivered late" in t for t in texts] == [False, False, False, True]
        raised = datetime.fromtimestamp(NOW / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        assert f"(Raised {raised} UTC, delivered late: it may no longer hold)." in texts[3]
    nothing = admin.value("mutation", "models:retryWebhook", {"name": "fixed"})
    assert nothing["retried"] == 0 and nothing["deliveries"]["pending"] == 0
    assert admin.mutation("models:retryWebhook", {"name": "gone"})["errorData"]["code"] == \
        "NOT_FOUND"
    writer = Api(client, make_token("catalog:write"))
    assert writer.post("mutation", "models:retryWebhook", {"name": "fixed"}).status_code == 403


def test_recording_never_waits_for_a_delivery(seeded, api, admin):
    with Receiver() as receiver:
        receiver.gate.clear()  # the receiver holds every request
        alert_to(seeded, admin, {"name": "slow", "kind": "signed", "url": receiver.url})
        # the post's own timeout far past the recordings: only the gate ends it
        delivering = threading.Thread(target=deliver, args=(seeded, NOW, 120), daemon=True)
        delivering.start()
        assert receiver.arrived.wait(10)  # a delivery is in flight, held by the receiver
        for _ in range(20):
            assert api.value("mutation", "models:updateModelStats",
                             {"modelId": RAY, "generationTime": 1, "success": True})
        assert api.value("mutation", "models:recordGenerations",
                         {"events": [event(RAY, 2)] * 50})["recorded"] == 50
        assert delivering.is_alive()
        receiver.gate.set()
        delivering.join(10)
        wait_for(lambda: not delivering.is_alive(), 10, "the delivery to finish")
    assert run(seeded, "models:getModelById", {"modelId": RAY})["totalGenerations"] == 100


def test_webhooks_are_for_admins_and_checked(seeded, client, make_token, admin):
    editor = Api(client, make_token("catalog:write"))
    args = {"name": "x", "kind": "slack", "url": "https://hooks.example.com/T0"}
    assert editor.post("mutation", "models:createWebhook", args).status_code == 403
    assert editor.post("query", "models:listWebhooks").status_code == 403
    assert admin.mutation("models:createWebhook", {**args, "url": "ftp://x"})["errorData"][
        "field"] == "url"
    assert admin.mutation("models:createWebhook", {**args, "kind": "email"})["errorData"][
        "field"] == "kind"
    admin.value("mutation", "models:createWebhook", args)
    assert admin.mutation("models:createWebhook", args)["errorData"]["code"] == "DUPLICATE"
    off = admin.value("mutation", "models:updateWebhook", {"name": "x", "isActive": False})
    assert off["isActive"] is False
    record(seeded, RAY, 0, 30)
    evaluate(seeded)
    assert deliver(seeded, NOW) == []  # switched off: nothing was queued for it
    assert admin.value("mutation", "models:deleteWebhook", {"name": "x"})["name"] == "x"
    assert admin.mutation("models:deleteWebhook", {"name": "x"})["errorData"]["code"] == \
        "NOT_FOUND"


def test_a_round_stops_starting_deliveries_when_its_time_is_up(seeded, admin):
    with Receiver() as receiver:
        for name in ("a", "b"):
            admin.value("mutation", "models:createWebhook",
                        {"name": name, "kind": "slack", "url": receiver.url})
        record(seeded, RAY, 0, 30)
        evaluate(seeded)
        with seeded.app_context():
            assert monitor.deliver(NOW, timeout=5, budget=0) == []  # the next round's
            assert len(monitor.deliver(NOW, timeout=5, budget=60)) == 2
        assert len(receiver.received) == 2


class Tarpit:
    """A receiver that answers 500 with a 100 MB reply, or only its status line, a byte at a
    time for as long as the connection stays open (or `flood`: a 50 MB reply at once)."""

    def __init__(self, how: str) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.how, self.done = how, threading.Event()
        self.sent_all = False  # the flood: whether the whole reply was taken
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 100000000\r\n\r\n"
            try:
                if self.how == "flood":  # more than any socket buffer holds
                    connection.sendall(head.replace(b"100000000", b"50000000") + b"x" * 50_000_000)
                    self.sent_all = True
                    return
                drip = head + b"x" if self.how == "body" else head[:12]
                connection.sendall(drip)
                while not self.done.wait(0.05):  # a byte at a time until cut off
                    connection.sendall(b"x")
            except OSError:
                pass  # cut off

    def close(self) -> None:
        self.done.set()
        self.listener.close()
        self.thread.join(10)


@pytest.mark.waits
@pytest.mark.parametrize("how", ["body", "head", "flood"])
def test_a_receiver_that_never_finishes_is_cut_off(how):
    """A per-read timeout never fires on a receiver that sends a byte at a time: the delivery
    has a deadline of its own, and reads only the start of a reply."""
    from functions.webhooks import post

    tarpit = Tarpit(how)
    outcome: list = []
    # The flood is read at once, and cut after REPLY_BYTES: its deadline is never reached, so
    # it is long (a loaded machine may take more than the others' 2 s to read a status line).
    deadline = 30 if how == "flood" else 2
    poster = threading.Thread(target=lambda: outcome.append(post(
        {"kind": "slack", "url": tarpit.url, "alert": ALERT}, NOW, deadline, private=True)))
    try:
        poster.start()
        poster.join(60)  # a bound on a hang, not a measure of speed
        assert not poster.is_alive(), "the delivery was never cut off"
    finally:
        tarpit.close()
    (error,) = outcome
    if how == "head":  # not even a status: the read under way fails
        assert "cut off after 2 s" in error, error
    elif how == "body":  # the status, and what of the reply came in time (if any did)
        assert error.startswith("HTTP 500: ") and error.endswith("(cut off after 2 s)")
    else:  # its first REPLY_BYTES, and the connection closed on the rest
        assert error.startswith("HTTP 500: x") and len(error) <= len("HTTP 500: ") + 200, error
        assert not tarpit.sent_all


ALERT = {"modelId": RAY, "from": "healthy", "to": "failing", "figures": {}, "at": NOW}


@pytest.mark.parametrize("url", ["http://127.0.0.1:abc/x", "http://127.0.0.1:99999/",
                                 "http://[::1/"])
def test_a_url_that_cannot_be_reached_is_a_failed_delivery(url):
    """Stored before the URL rule refused them: the delivery fails, recorded, never an
    exception that would leave the claim to expire and block the queue."""
    from functions.webhooks import post

    error = post({"kind": "slack", "url": url, "alert": ALERT}, NOW, 0.5, private=True)
    assert error.startswith(("ValueError", "InvalidURL", "OSError")), error


class Silent:
    """A receiver that takes the connection and the request, and never answers."""

    def __init__(self) -> None:
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        self.connections: list = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.connections.append(connection)

    def close(self) -> None:
        import socket

        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self.listener.close()
        for connection in self.connections:
            connection.close()
        self.thread.join(10)


def every_model_fails(app) -> list[dict]:
    """An alert for each seeded model, queued for every webhook in the order they came."""
    for model in run_as_system(app, "models:getActiveModels"):
        record(app, model["modelId"], 0, 30)
    return evaluate(app)


def test_a_receiver_that_hangs_costs_the_round_one_timeout_not_one_per_alert(seeded, admin):
    """Deliveries go out alert by alert (hanging, healthy, hanging, ...): a webhook that fails
    is passed over for the rest of the round, so the healthy one gets every alert at once
    (it got one per timeout, behind the hanging one's)."""
    silent = Silent()
    try:
        with Receiver() as healthy:
            admin.value("mutation", "models:createWebhook",
                        {"name": "hangs", "kind": "signed", "url": silent.url})
            admin.value("mutation", "models:createWebhook",
                        {"name": "healthy", "kind": "slack", "url": healthy.url})
            alerts = every_model_fails(seeded)
            with seeded.app_context():
                outcomes = monitor.deliver(NOW, timeout=1, budget=5)
            assert len(healthy.received) == len(alerts) == 3
            assert sorted(o["state"] for o in outcomes) == ["delivered"] * 3 + ["pending"]
    finally:
        silent.close()


def test_a_webhook_switched_off_is_sent_nothing_until_it_is_on_again(seeded, admin):
    with Receiver() as receiver:
        alert_to(seeded, admin, {"name": "ops", "kind": "slack", "url": receiver.url})
        admin.value("mutation", "models:updateWebhook", {"name": "ops", "isActive": False})
        assert deliver(seeded, NOW) == [] and receiver.received == []
        admin.value("mutation", "models:updateWebhook", {"name": "ops", "isActive": True})
        assert [o["state"] for o in deliver(seeded, NOW)] == ["delivered"]


def test_webhook_names_read_as_one_are_one(seeded, admin):
    """'ops', 'OPS' and 'ops ' look alike in a list: one webhook, the others refused."""
    admin.value("mutation", "models:createWebhook",
                {"name": "ops", "kind": "slack", "url": "https://example.com/a"})
    for name, code in (("OPS", "DUPLICATE"), ("ops ", "INVALID_ARGUMENT")):
        refused = admin.mutation("models:createWebhook",
                                 {"name": name, "kind": "slack", "url": "https://example.com/b"})
        assert refused["errorData"] == {"code": code, "field": "name"}, name
    assert [h["name"] for h in admin.value("query", "models:listWebhooks")] == ["ops"]


def test_a_new_url_is_tried_at_once_not_after_the_old_ones_backoff(seeded, admin):
    """The backoff, the attempts and the error were the old receiver's: a delivery waiting on
    it is due as soon as the URL is fixed (it waited up to an hour more), and the webhook no
    longer shows the old receiver's failure."""
    with Receiver(statuses=[500]) as receiver:
        alert_to(seeded, admin, {"name": "fixed", "kind": "slack", "url": receiver.url + "/old"})
        (failed,) = deliver(seeded, int(time.time() * 1000))
        assert failed["state"] == "pending" and failed["nextAttemptAt"] > time.time() * 1000
        listed = admin.value("query", "models:listWebhooks")[0]["lastFailure"]
        assert (listed["error"], listed["attempts"]) == ("HTTP 500: ok", 1)
        moved = admin.value("mutation", "models:updateWebhook",
                            {"name": "fixed", "url": receiver.url + "/new"})
        # The old receiver's error no longer describes the webhook, nor its attempts
        assert moved["lastFailure"] is None
        assert moved["deliveries"] == {"pending": 1, "delivered": 0, "failed": 0}
        (outcome,) = deliver(seeded, int(time.time() * 1000))
        assert (outcome["state"], outcome["attempts"]) == ("delivered", 1)
        assert [r["path"] for r in receiver.received] == ["/old", "/new"]


def test_a_webhook_deleted_while_its_delivery_is_posted_ends_nothing_else(seeded, admin):
    with Receiver() as doomed, Receiver() as other:
        for name, receiver in (("doomed", doomed), ("other", other)):
            admin.value("mutation", "models:createWebhook",
                        {"name": name, "kind": "slack", "url": receiver.url})
        record(seeded, RAY, 0, 30)
        evaluate(seeded)
        doomed.gate.clear()  # its post waits in the receiver
        outcomes: list = []
        rounds = threading.Thread(target=lambda: outcomes.extend(deliver(seeded, NOW)))
        rounds.start()
        assert doomed.arrived.wait(10)
        admin.value("mutation", "models:deleteWebhook", {"name": "doomed"})
        doomed.gate.set()
        rounds.join(30)
        assert not rounds.is_alive()
        assert [o["state"] for o in outcomes] == ["delivered"] and len(other.received) == 1


def test_a_post_to_the_old_url_that_ends_after_the_change_is_not_counted(seeded, admin):
    """The URL changes while a delivery is being posted to the old one: its failure (the old
    receiver's) neither counts as an attempt nor shows, and the delivery is due at the new
    URL at once."""
    with Receiver(statuses=[500]) as old, Receiver() as new:
        alert_to(seeded, admin, {"name": "moving", "kind": "slack", "url": old.url})
        old.gate.clear()  # its post waits in the old receiver
        outcomes: list = []
        rounds = threading.Thread(target=lambda: outcomes.extend(deliver(seeded, NOW)))
        rounds.start()
        assert old.arrived.wait(10)
        admin.value("mutation", "models:updateWebhook", {"name": "moving", "url": new.url})
        old.gate.set()
        rounds.join(30)
        assert not rounds.is_alive()
        assert [(o["state"], o["attempts"]) for o in outcomes] == [("pending", 0)]
        (hook,) = admin.value("query", "models:listWebhooks")
        assert hook["lastFailure"] is None
        assert hook["deliveries"] == {"pending": 1, "delivered": 0, "failed": 0}
        (outcome,) = deliver(seeded, int(time.time() * 1000))
        assert (outcome["state"], outcome["attempts"]) == ("delivered", 1)
        assert len(new.received) == 1


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1/é", "ASCII"), ("https://example.com/a b", "ASCII"),
    ("https://example.com/?q=\u2028", "ASCII"), ("http://example.com:0/hook", "port 0"),
    ("https://user:secret@example.com/hook", "would not be sent"),
    ("https://token@example.com/hook", "would not be sent"),
    ("https://:secret@example.com/hook", "would not be sent")])
def test_a_url_that_cannot_be_sent_as_it_is_is_refused_at_once(seeded, admin, url, why):
    refused = admin.mutation("models:createWebhook", {"name": "x", "kind": "slack", "url": url})
    assert refused["status"] == "error" and refused["errorData"]["field"] == "url"
    assert why in refused["errorMessage"]
    assert admin.value("query", "models:listWebhooks") == []
    admin.value("mutation", "models:createWebhook",  # a scheme in capitals is a scheme
                {"name": "x", "kind": "slack", "url": "HTTPS://example.com/hook"})
    admin.value("mutation", "models:updateWebhook",
                {"name": "x", "url": "https://example.com/hook"})
    refused = admin.mutation("models:updateWebhook", {"name": "x", "url": url})
    assert refused["status"] == "error" and refused["errorData"]["field"] == "url"
    assert [h["url"] for h in admin.value("query", "models:listWebhooks")] \
        == ["https://example.com/hook"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/",
                                 "http://[::1]:{port}/", "http://[::ffff:127.0.0.1]:{port}/",
                                 "http://10.0.0.1:{port}/", "http://169.254.169.254/latest"])
def test_a_webhook_posts_to_no_private_address_unless_allowed(seeded, admin, url):
    """A webhook cannot reach the service's own network (its database, a cloud metadata
    service) unless WEBHOOK_PRIVATE_ADDRESSES allows it: the attempt is a failed delivery
    that says why, and nothing is sent."""
    with Receiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        alert_to(seeded, admin, {"name": "inside", "kind": "slack", "url": url.format(port=port)})
        seeded.config["WEBHOOK_PRIVATE_ADDRESSES"] = None
        (outcome,) = deliver(seeded, NOW)
        assert outcome["state"] == "pending" and receiver.received == []
        (hook,) = admin.value("query", "models:listWebhooks")
        assert hook["deliveries"] == {"pending": 1, "delivered": 0, "failed": 0}
        host = url.split("//")[1].split("/")[0].rsplit(":", 1)[0].strip("[]")
        with pytest.raises(RefusedAddressError, match="not a public address"):
            resolve(host, 80)


def test_a_webhook_to_a_private_address_it_names_is_refused_at_once(seeded, admin):
    seeded.config["WEBHOOK_PRIVATE_ADDRESSES"] = None
    for url in ("http://127.0.0.1:9/hook", "http://localhost/", "https://[fd00::1]/",
                # the older spellings of IPv4 the resolver reads, named at once as well
                "http://0x7f000001:9/a", "http://2130706433:9/b", "http://0:9/c",
                "http://127.1:9/d", "http://0177.0.0.1:9/e",
                # and with the root's dot
                "http://127.0.0.1.:9/f", "http://localhost./g"):
        refused = admin.mutation("models:createWebhook",
                                 {"name": "inside", "kind": "slack", "url": url})
        assert refused["errorData"] == {"code": "INVALID_ARGUMENT", "field": "url"}, url
        assert "not a public address" in refused["errorMessage"]
    for url in ("http://[::1/", "http://127.0.0.1:abc/x", "http://example.com:99999/",
                "http:///no-host"):  # no URL a connection could be made to: not a 500
        refused = admin.mutation("models:createWebhook",
                                 {"name": "inside", "kind": "slack", "url": url})
        assert refused["errorData"] == {"code": "INVALID_ARGUMENT", "field": "url"}, url
    assert admin.value("query", "models:listWebhooks") == []


def connections_refused(monkeypatch) -> list[tuple]:
    """Where deliveries try to connect: each target is noted and refused (nothing leaves
    this machine)."""
    targets: list[tuple] = []

    def refuse(target, *args, **kwargs):
        targets.append(target[:2])
        raise ConnectionRefusedError("refused by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return targets


def test_a_name_that_resolves_elsewhere_after_the_check_is_not_followed(seeded, admin,
                                                                        monkeypatch):
    """DNS rebinding: a name that answers a public address when it is checked and this host's
    address when asked again. The delivery connects to the address checked, never to the
    receiver here."""
    resolver, answers = socket.getaddrinfo, iter(["2606:4700::1111"])

    def rebinding(host, port, *args, **kwargs):
        if host == "rebinding.example":  # the public address once, then this host's
            host = next(answers, "127.0.0.1")
        return resolver(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with Receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        admin.value("mutation", "models:createWebhook",
                    {"name": "rebound", "kind": "slack",
                     "url": f"http://rebinding.example:{port}/hook"})
        record(seeded, RAY, 0, 30)
        evaluate(seeded)
        seeded.config["WEBHOOK_PRIVATE_ADDRESSES"] = None
        targets = connections_refused(monkeypatch)
        (outcome,) = deliver(seeded, NOW)
        assert targets == [("2606:4700::1111", port)]
        assert outcome["state"] == "pending" and receiver.received == []


@pytest.mark.parametrize("url,target", [
    ("http://[2606:4700::4700:1111]/hook", ("2606:4700::4700:1111", 80)),
    ("https://[2606:4700::4700:1111]/hook", ("2606:4700::4700:1111", 443)),
    ("http://[2606:4700::4700:1111]:8080/hook", ("2606:4700::4700:1111", 8080)),
])
def test_an_ipv6_address_is_reached_on_the_port_the_url_names(seeded, admin, monkeypatch,
                                                              url, target):
    """Not on its last group read as a port (http.client's reading of a bare IPv6 host)."""
    admin.value("mutation", "models:createWebhook", {"name": "six", "kind": "slack",
                                                     "url": url})
    record(seeded, RAY, 0, 30)
    evaluate(seeded)
    seeded.config["WEBHOOK_PRIVATE_ADDRESSES"] = None
    targets = connections_refused(monkeypatch)
    deliver(seeded, NOW)
    assert targets == [target]
