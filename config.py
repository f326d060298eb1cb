"""The one configuration: every setting, read from the environment here and nowhere else.

Each setting is declared once, with its default and its meaning; the README's configuration
table is generated from the same declarations and a test keeps the two equal. `create_app`
reads the app's settings through `Config.from_environ`; `deploy/gunicorn.conf.py` reads the
server's through `server_settings`.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingError(RuntimeError):
    """A setting the service cannot start with; the entry points print it in one line."""


def _positive_decimal(name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SettingError(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise SettingError(f"{name} must be positive, got {raw!r}")
    return value


def _whole(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise SettingError(f"{name} must not be negative, got {raw!r}")
    if value > LARGEST_WHOLE:
        raise SettingError(f"{name} must be at most {LARGEST_WHOLE}, got {raw!r}")
    return value


LARGEST_WHOLE = 2**31 - 1  # what a database's INTEGER holds


def _text(name: str, raw: str) -> str:
    return raw


def _at_least(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        value = _whole(name, raw)
        if value < minimum:
            raise SettingError(f"{name} must be at least {minimum}, got {raw!r}")
        return value

    return parse


def _between(minimum: int, maximum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        value = _at_least(minimum)(name, raw)
        if value > maximum:
            raise SettingError(f"{name} must be at most {maximum}, got {raw!r}")
        return value

    return parse


def _whole_minutes(minimum: int, maximum: int) -> Callable[[str, str], int]:
    """Seconds between the bounds, in whole minutes (usage is counted by the minute)."""
    def parse(name: str, raw: str) -> int:
        value = _between(minimum, maximum)(name, raw)
        if value % MINUTE_SECONDS:
            raise SettingError(f"{name} must be whole minutes (a multiple of {MINUTE_SECONDS}), "
                               f"got {raw!r}")
        return value

    return parse


def _seconds_at_most(limit: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        value = _seconds(name, raw)
        if value > limit:
            raise SettingError(f"{name} must be at most {limit:g} seconds, got {raw!r}")
        return value

    return parse


def _hash_method(name: str, raw: str) -> str:
    """A Werkzeug password hashing method (`scrypt[:n:r:p]`, `pbkdf2[:hash[:iterations]]`),
    checked here as Werkzeug will take it: a typo stops the start, not a sign-in. scrypt with
    its parameters is tried once (OpenSSL's own limits on them meet Werkzeug's memory cap),
    bounded first so that trying costs no more than a sign-in may: memory (128 n r bytes) at
    most 1 GiB, p at most 16. pbkdf2's hash a fixed-size one of hashlib's, its iterations 1 to
    10^8."""
    kind, *params = raw.split(":")
    numbers = [int(p) if p.isascii() and p.isdigit() else 0 for p in params]
    if kind == "scrypt":
        valid = not params or (len(numbers) == 3 and all(numbers) and numbers[2] <= 16
                               and 128 * numbers[0] * numbers[1] <= 2**30 and _hashes(raw))
    else:
        valid = kind == "pbkdf2" and len(params) <= 2 and (
            not params or params[0] in hashlib.algorithms_guaranteed - SIZELESS) and (
            len(params) < 2 or 1 <= numbers[1] <= 10**8)
    if not valid:
        raise SettingError(f"{name} must be a Werkzeug hashing method such as scrypt or "
                           f"pbkdf2:sha256:600000, got {raw!r}")
    return raw


def _hashes(method: str) -> bool:
    """Whether Werkzeug hashes a password with `method` (a sign-in's cost, paid once)."""
    from werkzeug.security import generate_password_hash

    try:
        generate_password_hash("a password", method=method)
    except (ValueError, OverflowError, MemoryError):
        return False
    return True


SIZELESS = {"shake_128", "shake_256"}  # hashes whose digest has no size of its own


def _credits_rate(name: str, raw: str) -> Decimal:
    """Credits per USD: a price times it must stay a number of credits a client can hold."""
    value = _positive_decimal(name, raw)
    if not Decimal("0.000001") <= value <= 1_000_000:
        raise SettingError(f"{name} must be from 0.000001 to 1000000, got {raw!r}")
    return value


def _database_url(name: str, raw: str) -> str:
    """SQLite (`sqlite:///path`) or PostgreSQL through psycopg 3 (`postgresql+psycopg://...`),
    the two this service runs on: anything else would fail at the first connection."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        url = None
    if url is not None and url.drivername in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        return raw.strip()
    shown = url.render_as_string(hide_password=True) if url is not None else "a URL it cannot read"
    raise SettingError(f"{name} must be sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@"
                       f"HOST/DATABASE, got {shown!r}")  # (never the password: logs keep it)


def _one_of(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        if raw not in choices:
            raise SettingError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    return parse


def _port(name: str, raw: str) -> int:
    value = _whole(name, raw)
    if not 1 <= value <= 65535:
        raise SettingError(f"{name} must be a port, 1 to 65535, got {raw!r}")
    return value


def _log_level(name: str, raw: str) -> str:
    """A level of Python's logging, in either case (gunicorn's own are lower-case)."""
    if raw.upper() not in LOG_LEVELS:
        raise SettingError(f"{name} must be one of {', '.join(LOG_LEVELS).lower()}, "
                           f"got {raw!r}")
    return raw


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _switch(name: str, raw: str) -> str:
    """`1` (on) or `0` (off): anything else would read as off, so it stops the start."""
    if raw not in ("0", "1"):
        raise SettingError(f"{name} is a switch: 1 (on) or 0 (off), got {raw!r}")
    return raw


def _origins(name: str, raw: str) -> frozenset[str]:
    """`*`, `none`, or origins (`https://app.example.com`) separated by spaces or commas."""
    if raw.strip() == "none":
        return frozenset()
    if raw.strip() == "*":
        return frozenset({"*"})
    origins = set()
    for origin in raw.replace(",", " ").split():
        parts = urlsplit(origin)
        if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path
                or parts.query or parts.fragment or "@" in parts.netloc):
            raise SettingError(f"{name} must be *, none, or origins such as "
                               f"https://app.example.com (no path), got {origin!r}")
        origins.add(origin.lower())
    return frozenset(origins)


def _percent(name: str, raw: str) -> float:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SettingError(f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise SettingError(f"{name} must be a percentage (0 to 100), got {raw!r}")
    return float(value)


def _seconds(name: str, raw: str) -> float:
    return float(_positive_decimal(name, raw))


# The bounds of a health policy, the catalog-wide one (these settings) and each model's
# (functions/health_policy.py) alike.
HEALTH_WINDOW_SECONDS = (60, 86400)
MINUTE_SECONDS = 60  # a health window is whole minutes: usage is counted by the minute
HEALTH_MIN_GENERATIONS = (1, 1_000_000)
HEALTH_MAX_P95_SECONDS = 86400


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default (as shown in the README), parser and meaning."""

    name: str
    default: str | None
    meaning: str
    parse: Callable[[str, str], Any] = _text
    shown_default: str | None = None  # how the README shows a default computed at start

    def read(self, environ: Mapping[str, str], fallback: str | None = None) -> Any:
        raw = environ.get(self.name)
        if raw is None or raw == "":
            raw = self.default if fallback is None else fallback
        return None if raw is None else self.parse(self.name, raw)


APP = (
    Setting("DATABASE_URL", None, "SQLAlchemy URL; `postgresql+psycopg://...` in production",
            _database_url, shown_default="`sqlite:///instance/catalog.db`"),
    Setting("SECRET_KEY", None, "session signing; required when `CATALOG_ENV=production`",
            shown_default="generated once into `instance/secret_key`"),
    Setting("CATALOG_ENV", None, "`production`: secure cookies, `SECRET_KEY` required; "
            "`development` (or unset): neither", _one_of("production", "development")),
    Setting("INSTANCE_PATH", None, "where the SQLite file and the development secret live",
            shown_default="`instance/` beside `config.py`"),
    Setting("CREDITS_PER_USD", "100", "credits charged per USD (a decimal, 0.000001 to "
            "1,000,000)", _credits_rate),
    Setting("RATE_LIMIT_PER_MINUTE", "6000",
            "API requests a minute per token (or per address without one); `0` turns it off; "
            "over it: 429 `RateLimited` with `Retry-After`. A `models:recommendModel` "
            "computed for the caller (over HTTP, or subscribed) counts as one request per 20 "
            "models it prices, plus one", _whole),
    Setting("RATE_LIMIT_COUNTERS", "auto",
            "where the API's rate-limit and refused-token counts live: `database` (the "
            "`rate_hits` table: one limit for the whole fleet), `host` (the file below: one "
            "limit per host), or `auto`: `database` on PostgreSQL, `host` on SQLite", _one_of(
                "auto", "database", "host")),
    Setting("RATE_LIMIT_STORAGE", None,
            "the host's counters' file (`RATE_LIMIT_COUNTERS=host`), shared by every worker on "
            "the host; wherever the counts live, far from the limit a worker adds its hits in "
            "batches (every 1% of the limit or 0.1 s), so a caller may pass the limit by 1% per "
            "other worker (of the host, or of the fleet); below 100 a minute every hit is "
            "shared at once", shown_default="`instance/ratelimit.sqlite3`"),
    Setting("INVALID_TOKENS_PER_MINUTE", "30",
            "refused credentials (unknown, expired or revoked tokens, malformed `Authorization`) "
            "a minute per address, over HTTP and sockets; past it the address's refused and "
            "unknown tokens get 429 `RateLimited` without a database lookup, while a valid "
            "token from the address still works; `0` turns it off", _whole),
    Setting("API_ALLOWED_ORIGINS", "*",
            "web pages that may call the API from a browser (CORS): `*` (any: the API takes "
            "tokens in `Authorization`, never cookies), origins separated by spaces "
            "(`https://app.example.com`), or `none`", _origins),
    Setting("REQUEST_READ_SECONDS", "10",
            "the time a client has to send a request's head, and again its body (under gunicorn): "
            "a slower head is closed, a slower body answered 408 `RequestTimeout`", _seconds),
    Setting("RESPONSE_SEND_SECONDS", "30",
            "under gunicorn, a client that takes nothing of an answer being sent to it for this "
            "long (less than 256 KiB of it) is closed, freeing its thread; a slow one that "
            "keeps reading is waited for", _seconds),
    Setting("SYNC_SOCKETS_PER_WORKER", "16",
            "live-query WebSockets a worker holds at once; each holds a thread, and gunicorn gets "
            "this many threads on top of `GUNICORN_THREADS`, so sockets never take the threads "
            "of plain requests; more are refused with 503 `TooManySockets`", _whole),
    Setting("SYNC_SOCKETS_PER_ADDRESS", "8",
            "live-query WebSockets one address may hold on a worker", _whole),
    Setting("SYNC_CONNECT_SECONDS", "10",
            "the time a new socket has to send `Connect`; then it is closed", _seconds),
    Setting("SYNC_IDLE_SECONDS", "60",
            "a socket with no subscription that sends no call (a query set change, mutation, "
            "action or `Authenticate`) for this long is closed (the Convex clients reconnect)",
            _seconds),
    Setting("SYNC_PING_SECONDS", "15",
            "how often a socket is pinged (a sync `Ping` and a WebSocket ping); a peer that has "
            "not answered the previous WebSocket ping is closed, and a token's expiry is "
            "noticed", _seconds),
    Setting("SYNC_SEND_SECONDS", "30",
            "a live-query socket whose peer takes no byte of a message sent to it for this "
            "long is closed, freeing its thread and its place (a slow reader that keeps "
            "taking bytes is waited for)", _seconds),
    Setting("SYNC_MAX_QUERIES", "100",
            "queries one socket may subscribe to; more are answered `QueryFailed`", _whole),
    Setting("SYNC_QUERIES_PER_ADDRESS", "200",
            "queries one address may subscribe to on a worker, across its sockets (each with "
            "arguments of its own is run again when statistics move; a `models:recommendModel` "
            "counts as what it weighs against the rate limit); more are answered "
            "`QueryFailed` (`TooManyQueries`)", _whole),
    Setting("SYNC_MAX_RESULT_BYTES", "2097152",
            "the total size (JSON) of one socket's subscriptions, their results and their "
            "arguments; a query that would pass it is answered `QueryFailed` and dropped",
            _whole),
    Setting("CATALOG_MARKS_DIR", None,
            "the change marks' files (one per database), shared by every process on the host",
            shown_default="`$TMPDIR/model-catalog-marks`"),
    Setting("PUSH_RECHECK_SECONDS", "5",
            "on PostgreSQL, while a worker hears the fleet's changes by push (`LISTEN`), how "
            "stale its caches may be about a change that sent no notification (a hand-made SQL "
            "update); without push (SQLite, or the channel lost) they recheck every 0.05 s",
            _seconds),
    Setting("MIN_TS_WAIT_SECONDS", "1",
            "how long a query sent with `minTs` waits for this host to hear of that write "
            "(at most 10); a committed write not heard of by then is read afresh from the "
            "database. A `ts` no write was answered, an unreachable database, or more than 8 "
            "queries of a worker waiting, is 503 `NotYetSeen` with `Retry-After`",
            _seconds_at_most(10)),
    Setting("SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS", "5",
            "failed sign-ins allowed per 15 minutes for one account from one address; beyond "
            "it that pair is refused (429) while the account can still sign in from elsewhere; "
            "`0` turns it off", _whole),
    Setting("SIGN_IN_FAILURES_PER_ADDRESS", "20",
            "failed sign-ins allowed per 15 minutes from one address, whatever the accounts; "
            "`0` turns it off", _whole),
    Setting("SIGN_IN_FAILURES_PER_ACCOUNT", "1000",
            "failed sign-ins allowed per 15 minutes for one account from all addresses "
            "together: a backstop against guessing from many addresses; reaching it refuses "
            "that account everywhere, so keep it high; `0` turns it off", _whole),
    Setting("OIDC_ISSUER", None, "with the two below: enable \"Sign in with SSO\""),
    Setting("OIDC_CLIENT_ID", None, "the console's client id at the issuer"),
    Setting("OIDC_CLIENT_SECRET", None, "the console's client secret at the issuer"),
    Setting("OIDC_ALLOWED_DOMAIN", None, "let unknown SSO users of that e-mail domain in..."),
    Setting("OIDC_DEFAULT_ROLE", None, "...with this role", _one_of("admin", "editor",
                                                                   "viewer")),
    Setting("OIDC_TRUST_UNVERIFIED_EMAIL", None,
            "`1`: take an SSO email the provider does not say is verified (Microsoft Entra ID "
            "sends no `email_verified`); only where no user can set their own email", _switch),
    Setting("PASSWORD_HASH_METHOD", "scrypt",
            "how new console passwords are hashed (Werkzeug's methods: `scrypt`, "
            "`pbkdf2:sha256:600000`); a stored hash is checked by the method it names",
            _hash_method),
    Setting("BEHIND_PROXY", None, "`1` behind nginx: trust one hop of `X-Forwarded-*`",
            _switch),
    Setting("CATALOG_LOG_LEVEL", "INFO", "log lines on standard error at this level and above "
            "(requests for static files are logged at DEBUG)", _log_level),
    Setting("CATALOG_LOG_FORMAT", "auto", "`json`: one JSON object a line (production); "
            "`text`: short lines for people; `auto`: text on a terminal, else JSON",
            _one_of("auto", "json", "text")),
    Setting("USAGE_MINUTE_RETENTION_HOURS", "48",
            "usage is kept per minute this long; then each hour of minutes is rolled up into "
            "one hour row (a recording's `at` may go back this long, less an hour; 2 to "
            "8,784, a year)", _between(2, 8784)),
    Setting("USAGE_HOUR_RETENTION_DAYS", "90",
            "hour rows are kept this long; then each day of hours is rolled up into one day row "
            "(3 to 3,660)", _between(3, 3660)),
    Setting("USAGE_DAY_RETENTION_DAYS", "0",
            "day rows are kept this long; `0`: for ever", _between(0, 36600)),
    Setting("USAGE_MAX_ERROR_CODES", "10",
            "distinct error codes kept per usage row; rarer ones are counted under `other`",
            _at_least(2)),
    Setting("MONITOR_INTERVAL_SECONDS", "10",
            "how often each gunicorn worker's monitor thread looks for work (health, roll-up, "
            "webhooks; a lease in the database lets one process do each job per round); `0`: "
            "no thread, run `flask monitor run` instead (at most 86,400)", _between(0, 86400)),
    Setting("HEALTH_WINDOW_SECONDS", "900",
            "the sliding window a model's health is judged on, in seconds (whole minutes)",
            _whole_minutes(*HEALTH_WINDOW_SECONDS)),
    Setting("HEALTH_MIN_GENERATIONS", "20",
            "fewer generations than this in the window: `unknown`",
            _between(*HEALTH_MIN_GENERATIONS)),
    Setting("HEALTH_DEGRADED_SUCCESS_RATE", "95",
            "a success rate (%) below this: `degraded`", _percent),
    Setting("HEALTH_FAILING_SUCCESS_RATE", "80",
            "a success rate (%) below this: `failing`", _percent),
    Setting("HEALTH_DEGRADED_P95_SECONDS", None,
            "a p95 generation time (s) above this: `degraded` (unset: no latency rule; set "
            "it per model in `healthPolicy`)", _seconds_at_most(HEALTH_MAX_P95_SECONDS)),
    Setting("HEALTH_FAILING_P95_SECONDS", None,
            "a p95 generation time (s) above this: `failing`",
            _seconds_at_most(HEALTH_MAX_P95_SECONDS)),
    Setting("HEALTH_RECOVERY_MARGIN_PERCENT", "20",
            "hysteresis: a model gets a better state only once its failure rate and p95 beat "
            "that state's thresholds by this share", _percent),
    Setting("WEBHOOK_MAX_ATTEMPTS", "8",
            "attempts to deliver an alert to a webhook (backoff 10 s, doubling, at most 1 h) "
            "before it is marked failed", _at_least(1)),
    Setting("WEBHOOK_TIMEOUT_SECONDS", "5", "how long one delivery may take", _seconds),
    Setting("WEBHOOK_PRIVATE_ADDRESSES", None,
            "`1`: webhooks may post to loopback, private and link-local addresses (a receiver "
            "inside your network); unset, they are refused, so a webhook cannot reach the "
            "service's own network (the database, a metadata service)", _switch),
    Setting("PROMETHEUS_MULTIPROC_DIR", None,
            "where workers leave their metrics (set by `deploy/gunicorn.conf.py`); a folder "
            "of its own: gunicorn empties it at each start",
            shown_default="a fresh temporary folder"),
)

SERVER = (
    Setting("PORT", "8000", "where gunicorn listens (with `BIND` unset)", _port),
    Setting("BIND", None, "gunicorn's address", shown_default="`127.0.0.1:$PORT`"),
    Setting("WEB_CONCURRENCY", None,
            "gunicorn workers; on PostgreSQL a worker opens at most two connections per busy "
            "thread and 30 in all (two pools of 15: transactions, which the console's list "
            "views read through too, and reads in autocommit), plus one that listens for the "
            "fleet's changes, so keep hosts × workers × 31 under the server's "
            "`max_connections` (100 by default; README, *A fleet of hosts*)",
            _whole, shown_default="`min(4, 2×cores)`"),
    Setting("GUNICORN_THREADS", "4",
            "threads per worker for requests (gunicorn runs `SYNC_SOCKETS_PER_WORKER` more, for "
            "live-query sockets; requests may use those while no socket does)", _whole),
    Setting("GUNICORN_MAX_REQUESTS", "1000000",
            "requests after which a worker is replaced (a ceiling on slow leaks; starting a "
            "worker costs about a second of CPU)", _whole),
    Setting("GUNICORN_ACCESS_LOG", None,
            "gunicorn's own access log (a path, or `-`); the app's JSON request lines are the "
            "access log"),
    Setting("LOG_LEVEL", "info", "gunicorn's own log level", _log_level),
)

SETTINGS = APP + SERVER
SOCKETS_PER_WORKER = next(s for s in APP if s.name == "SYNC_SOCKETS_PER_WORKER")
READ_SECONDS = next(s for s in APP if s.name == "REQUEST_READ_SECONDS")


class Config(dict):
    """The app's settings: a mapping for `app.config`, read from the environment once."""

    @classmethod
    def from_environ(cls, instance: Path, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        fallbacks = {
            "DATABASE_URL": f"sqlite:///{instance / 'catalog.db'}",
            "RATE_LIMIT_STORAGE": str(instance / "ratelimit.sqlite3"),
            "CATALOG_MARKS_DIR": str(Path(tempfile.gettempdir()) / "model-catalog-marks"),
        }
        config = cls({s.name: s.read(env, fallbacks.get(s.name)) for s in APP})
        production = config["CATALOG_ENV"] == "production"
        config.update(
            MAX_CONTENT_LENGTH=1024 * 1024,
            # A form field may be as large as a body (the Import page carries a compressed
            # price map from its plan to its confirmation); Flask's own default is 500 kB.
            MAX_FORM_MEMORY_SIZE=1024 * 1024,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_SECURE=production,
            PERMANENT_SESSION_LIFETIME=8 * 3600,  # from sign-in (admin/auth.py: _fresh)
            # A form's CSRF token lasts as long as its session (Flask-WTF's default is an hour:
            # a page left open longer could not even sign out, and the session stayed on).
            WTF_CSRF_TIME_LIMIT=None,
            # The cookie is sent only when the session changes. Sent on every answer, a
            # request that left before a message was flashed (a stylesheet, the favicon,
            # another tab) would put the old session back, and the message would be lost.
            SESSION_REFRESH_EACH_REQUEST=False,
        )
        _in_order(config)
        check_secret(config)
        if config["SECRET_KEY"] is None:
            del config["SECRET_KEY"]
        return config


def check_secret(config: Mapping[str, Any]) -> None:
    """In production the sessions' key is given, of at least 16 characters that are not
    spaces (checked again on create_app's test_config)."""
    key = config.get("SECRET_KEY") or ""
    if config.get("CATALOG_ENV") == "production" and sum(
            ch.isprintable() and not ch.isspace() for ch in key) < 16:
        raise SettingError("SECRET_KEY must be set when CATALOG_ENV=production, at least 16 "
                           "characters that are not spaces (a random one: python3 -c 'import "
                           "secrets; print(secrets.token_hex(32))')")


def health_out_of_order(rates: tuple, times: tuple) -> str | None:
    """Which of a health policy's pairs of (degraded, failing) thresholds is out of order:
    "rate" when the failing success rate is above the degraded one, "p95" when the failing
    p95 time is below the degraded one (None in a pair: no rule); None when both hold. The
    rule of the catalog-wide settings and of every model's healthPolicy."""
    if None not in rates and rates[1] > rates[0]:
        return "rate"
    if None not in times and times[1] < times[0]:
        return "p95"
    return None


def _in_order(config: Mapping[str, Any]) -> None:
    rates = config["HEALTH_DEGRADED_SUCCESS_RATE"], config["HEALTH_FAILING_SUCCESS_RATE"]
    times = config["HEALTH_DEGRADED_P95_SECONDS"], config["HEALTH_FAILING_P95_SECONDS"]
    wrong = health_out_of_order(rates, times)
    if wrong == "rate":
        raise SettingError(f"HEALTH_FAILING_SUCCESS_RATE ({rates[1]:g}) must not be above "
                           f"HEALTH_DEGRADED_SUCCESS_RATE ({rates[0]:g})")
    if wrong == "p95":
        raise SettingError(f"HEALTH_FAILING_P95_SECONDS ({times[1]:g}) must not be below "
                           f"HEALTH_DEGRADED_P95_SECONDS ({times[0]:g})")


def make_folders(config: Mapping[str, Any], instance: Path) -> None:
    """The folders the settings name, made before anything opens a file in them: one that
    cannot be made or written (a read-only path, a file in the way) stops the start, naming its
    setting. (A rate-limit file that could not be opened had failed every API call; without
    it the limits would be off. CATALOG_MARKS_DIR is not among them: without it a process
    rechecks its caches instead, engine/marks.py.)"""
    host_counters = config["RATE_LIMIT_COUNTERS"] == "host" or (
        config["RATE_LIMIT_COUNTERS"] == "auto" and config["DATABASE_URL"].startswith("sqlite"))
    folders = [("INSTANCE_PATH", instance, False)]
    if host_counters:  # the file is written on every call's count
        folders.append(("RATE_LIMIT_STORAGE", Path(config["RATE_LIMIT_STORAGE"]).parent, True))
    for name, folder, written in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SettingError(f"{name}: the folder {folder} cannot be made: "
                               f"{error.strerror or error}") from None
        if written and not os.access(folder, os.W_OK | os.X_OK):
            raise SettingError(f"{name}: the folder {folder} cannot be written")
    if host_counters:  # and the file itself (a folder of that name, /proc: not a database)
        path = config["RATE_LIMIT_STORAGE"]
        try:
            sqlite3.connect(path).execute("PRAGMA user_version").close()
        except sqlite3.Error as error:
            raise SettingError(f"RATE_LIMIT_STORAGE: {path} cannot be opened: {error}") from None


def instance_path(environ: Mapping[str, str] | None = None) -> str:
    """INSTANCE_PATH, needed before the app (and so its config) exists: `instance` beside this
    file when unset, a relative one read from the working folder (Flask takes absolute ones
    only). The app and gunicorn's master both ask here."""
    raw = (os.environ if environ is None else environ).get("INSTANCE_PATH") or None
    return os.path.abspath(raw) if raw else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "instance")


def server_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """gunicorn's settings, for `deploy/gunicorn.conf.py`."""
    env = os.environ if environ is None else environ
    values = {s.name: s.read(env) for s in SERVER}
    sockets = SOCKETS_PER_WORKER.read(env)
    workers = values["WEB_CONCURRENCY"] or min(4, multiprocessing.cpu_count() * 2)
    return {
        "bind": values["BIND"] or f"127.0.0.1:{values['PORT']}",
        "workers": workers,
        # Sockets get threads of their own: a worker admits at most `sockets` of them.
        "threads": max(1, values["GUNICORN_THREADS"]) + sockets,
        "max_requests": values["GUNICORN_MAX_REQUESTS"],
        "accesslog": values["GUNICORN_ACCESS_LOG"],
        "read_seconds": READ_SECONDS.read(env),
        "loglevel": values["LOG_LEVEL"],
    }


def readme_table() -> str:
    """The README's configuration table, from the declarations above."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = s.shown_default or (f"`{s.default}`" if s.default is not None else "(unset)")
        rows.append(f"| `{s.name}` | {default} | {s.meaning} |")
    return "\n".join(rows)
