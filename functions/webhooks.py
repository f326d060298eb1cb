"""Webhooks: where alerts are sent, and their delivery outside any request.

Admins configure destinations (`models:createWebhook`, scope admin):

- `slack`: a Slack-compatible incoming webhook: a JSON POST `{"text": "..."}`;
- `signed`: a generic JSON POST `{"type": "model.health.changed", "alert": {...}}` signed with
  HMAC-SHA256. The secret is generated here and shown once, at creation. Each request carries
  `X-Catalog-Timestamp` (Unix seconds) and `X-Catalog-Signature: sha256=<hex>`, the HMAC of
  `<timestamp>.<body>` under the secret: the receiver recomputes it over the raw body,
  compares in constant time, and refuses old timestamps (replays).

Every alert is queued for every active webhook in the transaction that records it
(functions/health.py). The monitor (functions/monitor.py) delivers the queue outside any
request: it claims one delivery at a time (a short transaction), posts with a deadline and no
transaction open, then records the outcome. A failure is retried after 10 s, doubling up to an
hour, until WEBHOOK_MAX_ATTEMPTS; a delivery is never lost to a crash (an unfinished claim
expires and is retried). Given-up deliveries are sent again on an admin's word
(`models:retryWebhook`). Recording generations never waits for any of this.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import secrets
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update

from db.schema import HealthAlert, Webhook, WebhookDelivery
from engine.errors import FunctionError
from engine.runtime import Context, mutation, query
from engine.values import v
from functions.health import alert_document
from functions.spec import ASCII_URL

KINDS = ("slack", "signed")
NAME = v.string(1, 100, pattern=r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]*[A-Za-z0-9._-])?",
                hint="letters, digits, spaces, '.', '_' or '-', not ending in a space")
NAMED = v.string(1, 100, pattern=r"[A-Za-z0-9][A-Za-z0-9 ._-]*",  # finds one made before
                 hint="letters, digits, spaces, '.', '_' or '-'")  # the rule above, too
BACKOFF_SECONDS, BACKOFF_LIMIT_SECONDS = 10, 3600
CLAIM_MS = 60_000  # beyond the request's timeout: a claim left by a crash expires then
LATE_MS = 5 * 60_000  # a Slack alert older than this when sent says when it was raised


def private_allowed(config) -> bool:
    """WEBHOOK_PRIVATE_ADDRESSES: whether webhooks may post to addresses that are not public."""
    return config["WEBHOOK_PRIVATE_ADDRESSES"] == "1"


def webhook_document(hook: Webhook, deliveries: Deliveries | None = None) -> dict:
    deliveries = deliveries or Deliveries()
    return {"name": hook.name, "kind": hook.kind, "url": hook.url, "isActive": hook.is_active,
            "createdBy": hook.created_by, "createdAt": hook.created_at,
            "deliveries": deliveries.counts, "lastFailure": deliveries.last_failure}


@dataclass
class Deliveries:
    """One webhook's deliveries by state, and why the newest delivery whose last attempt
    failed (still pending, or given up) failed: the receiver's answer or the connection's
    error (None when no delivery's last attempt failed)."""

    counts: dict = field(default_factory=lambda: {"pending": 0, "delivered": 0, "failed": 0})
    last_failure: dict | None = None


def _find(ctx: Context, name: str) -> Webhook:
    hook = ctx.db.scalar(select(Webhook).where(Webhook.name == name))
    if hook is None:
        raise FunctionError("NOT_FOUND", f"No webhook named '{name}'", field="name")
    return hook


@mutation({"name": NAME, "kind": v.literal(*KINDS), "url": ASCII_URL}, scope="admin",
          admin_only=True, name="models:createWebhook")
def createWebhook(ctx: Context, name: str, kind: str, url: str) -> dict:
    """Send alerts to a URL: `slack` (Slack-compatible JSON) or `signed` (generic JSON signed
    with HMAC-SHA256; the secret is in this answer and never shown again)."""
    taken = ctx.db.scalar(select(Webhook.name).where(func.lower(Webhook.name) == name.lower()))
    if taken is not None:  # names that differ only in case read as one in a list
        raise FunctionError("DUPLICATE", f"A webhook named '{taken}' already exists",
                            field="name")
    _check_reachable(ctx, url)
    secret = secrets.token_urlsafe(32) if kind == "signed" else None
    hook = Webhook(name=name, kind=kind, url=url, secret=secret, is_active=True,
                   created_by=ctx.identity.name, created_at=ctx.now)
    ctx.db.add(hook)
    ctx.db.flush()
    return {**webhook_document(hook), **({"secret": secret} if secret else {})}


@mutation({"name": NAMED, "url": v.optional(ASCII_URL), "isActive": v.optional(v.boolean())},
          scope="admin", admin_only=True, name="models:updateWebhook")
def updateWebhook(ctx: Context, name: str, url: str | None = None,
                  isActive: bool | None = None) -> dict:
    """Change a webhook's URL, or switch it off (alerts are not queued for it meanwhile). A
    new URL, or switching it on, makes its pending deliveries due at once: their backoff was
    the old receiver's. A new URL also counts their attempts afresh and drops their last
    error, the old receiver's (given-up deliveries keep theirs: retryWebhook sends them)."""
    hook = _find(ctx, name)
    moved = url is not None and url != hook.url
    if url is not None:
        _check_reachable(ctx, url)
        hook.url = url
    again = moved or (isActive and not hook.is_active)
    if isActive is not None:
        hook.is_active = isActive
    pending = (WebhookDelivery.webhook_id == hook.id, WebhookDelivery.state == "pending")
    if moved:
        # (one being posted to the old URL too: its outcome is then ignored, finishDelivery)
        ctx.db.execute(update(WebhookDelivery).where(*pending).values(
            next_attempt_at=ctx.now, attempts=0, last_error=None, claimed_until=None))
    elif again:
        ctx.db.execute(update(WebhookDelivery)
                       .where(*pending, WebhookDelivery.next_attempt_at > ctx.now)
                       .values(next_attempt_at=ctx.now))
    return _document_now(ctx, hook)


@mutation({"name": NAMED}, scope="admin", admin_only=True, name="models:retryWebhook")
def retryWebhook(ctx: Context, name: str) -> dict:
    """Send a webhook's given-up deliveries again (once its receiver is fixed): each is
    pending and due now, with its attempts counted afresh. `retried`: how many."""
    hook = _find(ctx, name)
    retried = ctx.db.execute(update(WebhookDelivery)
                             .where(WebhookDelivery.webhook_id == hook.id,
                                    WebhookDelivery.state == "failed")
                             .values(state="pending", attempts=0, next_attempt_at=ctx.now,
                                     claimed_until=None)).rowcount
    return {**_document_now(ctx, hook), "retried": retried}


@mutation({"name": NAMED}, scope="admin", admin_only=True, name="models:deleteWebhook")
def deleteWebhook(ctx: Context, name: str) -> dict:
    """Remove a webhook and its queued deliveries."""
    hook = _find(ctx, name)
    document = _document_now(ctx, hook)
    ctx.db.delete(hook)
    return document


@query(scope="admin", name="models:listWebhooks")
def listWebhooks(ctx: Context) -> list[dict]:
    """Every webhook (never its secret), with its deliveries by state and `lastFailure`: the
    error of its newest delivery whose last attempt failed, pending or given up."""
    deliveries = _deliveries(ctx)
    return [webhook_document(h, deliveries.get(h.id))
            for h in ctx.db.scalars(select(Webhook).order_by(Webhook.name))]


def _document_now(ctx: Context, hook: Webhook) -> dict:
    """One webhook's document with its deliveries, as listWebhooks gives it."""
    return webhook_document(hook, _deliveries(ctx, hook.id).get(hook.id))


def _deliveries(ctx: Context, hook_id: int | None = None) -> dict[int, Deliveries]:
    """Deliveries by state and the last failure, by webhook id: of every webhook, or of the
    one given."""
    def of(query):
        return query if hook_id is None else query.where(WebhookDelivery.webhook_id == hook_id)

    found: dict[int, Deliveries] = {}
    for each, state, count in ctx.db.execute(of(
            select(WebhookDelivery.webhook_id, WebhookDelivery.state, func.count())
            .group_by(WebhookDelivery.webhook_id, WebhookDelivery.state))):
        found.setdefault(each, Deliveries()).counts[state] = count
    newest = of(select(func.max(WebhookDelivery.id))
                .where(WebhookDelivery.last_error.is_not(None))
                .group_by(WebhookDelivery.webhook_id))
    for delivery in ctx.db.scalars(select(WebhookDelivery)
                                   .where(WebhookDelivery.id.in_(newest.scalar_subquery()))):
        # (setdefault: on PostgreSQL each read is its own statement, and a failure read
        # after the counts may be of a delivery they did not see)
        found.setdefault(delivery.webhook_id, Deliveries()).last_failure = {
            "error": delivery.last_error, "attempts": delivery.attempts,
            "state": delivery.state, "alertId": str(delivery.alert_id),
            "nextAttemptAt": delivery.next_attempt_at if delivery.state == "pending" else None}
    return found


# -- delivery (the monitor) ------------------------------------------------------------------


@mutation({"skip": v.optional(v.array(v.int(1), 0, 10_000))}, scope="admin", internal=True)
def claimDelivery(ctx: Context, skip: list[int] | None = None) -> dict | None:
    """The next delivery that is due to a webhook that is on and not in `skip` (the webhooks
    that failed this round), claimed for CLAIM_MS; None when nothing is due."""
    delivery = ctx.db.scalar(
        select(WebhookDelivery)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= ctx.now,
               or_(WebhookDelivery.claimed_until.is_(None),
                   WebhookDelivery.claimed_until <= ctx.now),
               Webhook.is_active.is_(True), Webhook.id.not_in(skip or []))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(1))
    if delivery is None:
        return None
    hook = ctx.db.get(Webhook, delivery.webhook_id)
    alert = ctx.db.get(HealthAlert, delivery.alert_id)
    delivery.claimed_until = ctx.now + CLAIM_MS
    delivery.attempts += 1
    return {"id": delivery.id, "attempt": delivery.attempts, "webhook": hook.id,
            "kind": hook.kind, "url": hook.url, "secret": hook.secret,
            "alert": alert_document(alert)}


@mutation({"id": v.int(1), "ok": v.boolean(), "error": v.optional(v.string(0, 500))},
          scope="admin", internal=True)
def finishDelivery(ctx: Context, id: int, ok: bool,  # noqa: A002
                   error: str | None = None) -> dict | None:
    """Record a delivery's outcome: delivered, retried later (backoff), or failed for good;
    None when the delivery is gone (its webhook was deleted while it was being posted), and
    nothing when its URL changed meanwhile."""
    delivery = ctx.db.get(WebhookDelivery, id)
    if delivery is None:
        return None
    if delivery.claimed_until is None:  # posted to a URL changed meanwhile (updateWebhook):
        # the old receiver's outcome; the delivery is due at the new one already
        return {"id": delivery.id, "state": delivery.state, "attempts": delivery.attempts,
                "nextAttemptAt": delivery.next_attempt_at}
    delivery.claimed_until = None
    if ok:
        delivery.state, delivery.delivered_at, delivery.last_error = "delivered", ctx.now, None
    else:
        delivery.last_error = (error or "")[:500]
        if delivery.attempts >= ctx.config["WEBHOOK_MAX_ATTEMPTS"]:
            delivery.state = "failed"
        else:
            delivery.next_attempt_at = ctx.now + backoff_ms(delivery.attempts)
    return {"id": delivery.id, "state": delivery.state, "attempts": delivery.attempts,
            "nextAttemptAt": delivery.next_attempt_at}


def backoff_ms(attempts: int) -> int:
    """The wait after `attempts` failed attempts: 10 s, 20 s, 40 s, ... at most an hour."""
    return min(BACKOFF_SECONDS * 2 ** (attempts - 1), BACKOFF_LIMIT_SECONDS) * 1000


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]


def slack_text(alert: dict, now_ms: int) -> str:
    """The alert in words; one delivered late (after retries, or sent again on an admin's
    word, perhaps after a newer alert) says when it was raised."""
    figures = alert["figures"]
    text = f"Model {alert['modelId']} is now *{alert['to']}* (was {alert['from']})"
    if figures.get("generations"):
        text += (f": success rate {figures['successRate']:.1f}% over "
                 f"{figures['windowSeconds'] // 60} min ({figures['generations']} generations)")
        if figures.get("p95GenerationTime") is not None:
            text += f", p95 {figures['p95GenerationTime']:g} s"
    if alert.get("action"):
        text += f". {alert['action'][0].upper()}{alert['action'][1:]}"
    if now_ms - alert["at"] > LATE_MS:
        raised = datetime.fromtimestamp(alert["at"] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        text += f". (Raised {raised} UTC, delivered late: it may no longer hold)"
    return text + "."


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def request_for(claimed: dict, now_ms: int) -> Request:
    """What to POST for a claimed delivery."""
    headers = {"Content-Type": "application/json", "User-Agent": "model-catalog-webhooks/1"}
    if claimed["kind"] == "slack":
        body = json.dumps({"text": slack_text(claimed["alert"], now_ms)}).encode()
        return Request(body, headers)
    body = json.dumps({"type": "model.health.changed", "alert": claimed["alert"]},
                      separators=(",", ":"), sort_keys=True).encode()
    timestamp = now_ms // 1000
    headers.update({"X-Catalog-Timestamp": str(timestamp),
                    "X-Catalog-Signature": sign(claimed["secret"], timestamp, body),
                    "X-Catalog-Delivery": str(claimed["id"])})
    return Request(body, headers)


def post(claimed: dict, now_ms: int, timeout: float, private: bool = False) -> str | None:
    """POST a claimed delivery; None when the receiver took it (2xx), else why not. Unless
    `private` (WEBHOOK_PRIVATE_ADDRESSES), a host that resolves to an address that is not
    public (loopback, private, link-local) is not posted to.

    `timeout` bounds the whole delivery, not each read: a receiver that answers a byte at a
    time is cut off when it is up (the connection is shut down under the read), a connection
    that took all of it is not used, and at most REPLY_BYTES of a reply are read. (Resolving
    the name is the system resolver's to bound.) One slow receiver must not hold the monitor's
    round, which also judges health and sends every other alert. No proxy is used: receivers
    are reached directly."""
    request = request_for(claimed, now_ms)
    cut = threading.Event()
    connection = watchdog = None
    try:
        url = urlsplit(claimed["url"])
        kind = (http.client.HTTPSConnection if url.scheme == "https"
                else http.client.HTTPConnection)
        # The port given, never left to http.client: it would read an IPv6 literal's last
        # group as one ([2606:4700::1111] is not port 1111 of 2606:4700::).
        port = url.port or (443 if url.scheme == "https" else 80)
        connection = kind(url.hostname or "", port, timeout=timeout)
        try:
            addresses = resolve(url.hostname or "", port, private)
        except RefusedAddressError as refused:
            return str(refused)
        # The connection goes to the addresses checked, not to the name looked up again: a
        # name whose answer changes after the check (DNS rebinding) reaches nothing new. (An
        # HTTPS connection still sends the name, and checks the certificate against it.)
        connection._create_connection = partial(_connect_to_any, addresses)
        watchdog = threading.Timer(timeout, _cut, (connection, cut))
        watchdog.start()
        connection.connect()  # under the watchdog: a connection made too late is not used
        if cut.is_set():
            raise TimeoutError("connecting took the whole deadline")
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        connection.request("POST", target, body=request.body, headers=request.headers)
        response = connection.getresponse()
        try:
            reply = response.read(REPLY_BYTES)
        except (OSError, http.client.HTTPException):  # cut off in the reply: its status
            reply = b""  # is what counts
    except (OSError, http.client.HTTPException, ValueError) as error:
        return f"{type(error).__name__}: {error}{_late(cut, timeout)}"[:500]
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if connection is not None:
            connection.close()
    if 200 <= response.status < 300:
        return None
    return f"HTTP {response.status}: {reply.decode('utf-8', 'replace')[:200]}" \
        + _late(cut, timeout)


def _check_reachable(ctx: Context, url: str) -> None:
    """At once, for a host that names its address (an IP, localhost): refused when it is not
    public and WEBHOOK_PRIVATE_ADDRESSES does not allow it. A name is looked up when posting."""
    host = (urlsplit(url).hostname or "").removesuffix(".")  # "localhost." is localhost
    if not _names_an_address(host):
        return
    if not private_allowed(ctx.config):
        try:
            resolve(host, 443)
        except RefusedAddressError as refused:
            raise FunctionError("INVALID_ARGUMENT", f"url: {refused}", field="url") from None


def _names_an_address(host: str) -> bool:
    """Whether a URL's host is an address, in any spelling the resolver reads as one: an IP,
    IPv4 in the older forms too (127.1, 0x7f000001, 2130706433, 0177.0.0.1), or localhost."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(host)  # never a lookup: the numeric forms only
        return True
    except OSError:
        return host == "localhost" or host.endswith(".localhost")


class RefusedAddressError(Exception):
    """Why a webhook is not posted to a host: it does not resolve, or not to public addresses."""


def resolve(host: str, port: int, private: bool = False) -> list[str]:
    """The addresses a webhook's host resolves to, once. Unless `private`
    (WEBHOOK_PRIVATE_ADDRESSES), every one must be public, so that an admin's webhook cannot
    reach the service's own network (its database, a cloud metadata service)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise RefusedAddressError(f"{type(error).__name__}: {error}"[:500]) from None
    addresses = [address[0] for *_, address in found]
    if private:
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not (getattr(ip, "ipv4_mapped", None) or ip).is_global:
            raise RefusedAddressError(f"refused: {host} is at {ip}, not a public address "
                                      "(WEBHOOK_PRIVATE_ADDRESSES=1 allows it)")
    return addresses


def _connect_to_any(addresses: list[str], target: tuple[str, int], timeout: float | None,
                    source_address=None) -> socket.socket:
    """http.client's `_create_connection` for a webhook: socket.create_connection to each of
    the addresses resolved, in turn, instead of to the name."""
    failed: OSError = OSError(f"{target[0]} resolves to no address")
    for address in addresses:
        try:
            return socket.create_connection((address, target[1]), timeout, source_address)
        except OSError as error:
            failed = error
    raise failed


def _late(cut: threading.Event, timeout: float) -> str:
    return f" (cut off after {timeout:g} s)" if cut.is_set() else ""


REPLY_BYTES = 1024  # of a receiver's reply, read for the error it may state


def _cut(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
    """End a delivery that is past its time: the read under way fails at once."""
    cut.set()  # first: the failing read must know why
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
