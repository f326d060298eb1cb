"""access:* - console accounts and service tokens (internal: the CLI and the console only)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

from flask import Flask
from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from db.engine import read, read_again_if_dropped, single_statement
from db.schema import ApiToken, User
from engine.errors import FunctionError, TransportError
from engine.marks import Generation, Marks, once
from engine.runtime import ROLES, SCOPES, SIGNED_IN, Context, Identity, mutation, query
from engine.values import Line, String, v

audit = logging.getLogger("catalog.audit")
EMAIL = v.string(3, 320, pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+", hint="an email address")


class NewEmail(String):
    """The email of a new account: an address as mail servers take it (RFC 5321: at most 64
    characters before the '@'), without controls or invisible characters (a direction
    override shows another address than the one stored). EMAIL finds accounts made before."""

    def __init__(self) -> None:
        super().__init__(EMAIL.min_length, EMAIL.max_length, EMAIL.pattern.pattern,
                         EMAIL.hint)

    def check(self, value, path):
        value = super().check(value, path)
        local = value.rpartition("@")[0]
        if len(local) > 64:
            raise FunctionError("INVALID_ARGUMENT", f"{path} is not valid: at most 64 "
                                f"characters before the '@', got {len(local)}", field=path)
        if any(unicodedata.category(c) in Line.REFUSED for c in value):
            raise FunctionError("INVALID_ARGUMENT", f"{path} is not valid: an email address "
                                "holds no control or invisible characters", field=path)
        return value


TOKEN_PREFIX = "mc_"


def _new_hash(ctx: Context, password: str) -> str:
    """A new password's hash, by PASSWORD_HASH_METHOD."""
    return generate_password_hash(password, method=ctx.config["PASSWORD_HASH_METHOD"])


@lru_cache(maxsize=4)
def _dummy_hash(method: str) -> str:
    """A hash to check against when there is none, so that an unknown email takes as long to
    refuse as a wrong password."""
    return generate_password_hash("not a password", method=method)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _user_doc(user: User) -> dict:
    return {"email": user.email, "role": user.role, "isActive": user.is_active,
            "createdAt": user.created_at, "lastSignInAt": user.last_sign_in_at}


def expired(expires_at: int | None, now: int) -> bool:
    """Whether a token's lifetime is over at `now` (ms): it is refused from that moment."""
    return expires_at is not None and expires_at <= now


def _token_doc(token: ApiToken, now: int) -> dict:
    """A token as listed; `state`: revoked, expired (refused as a revoked one is) or active."""
    state = ("revoked" if token.revoked_at else
             "expired" if expired(token.expires_at, now) else "active")
    return {"name": token.name, "prefix": token.prefix, "scopes": token.scopes,
            "createdBy": token.created_by, "createdAt": token.created_at,
            "expiresAt": token.expires_at, "revokedAt": token.revoked_at,
            "lastUsedAt": token.last_used_at, "state": state}


PASSWORD = v.string(12, 200)


TOKEN_NAME = v.line(1, 100)  # a column of `tokens list`


def _user_or_refuse(ctx: Context, email: str) -> User:
    user = ctx.db.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise FunctionError("NOT_FOUND", f"No user {email}", field="email")
    return user


@mutation(
    {"email": NewEmail(), "role": v.literal(*ROLES), "password": v.nullable(PASSWORD)},
    scope="admin", internal=True,
)
def createUser(ctx: Context, email: str, role: str, password: str | None) -> dict:
    """Add a console account; without a password it can only sign in through SSO."""
    email = email.lower()
    if ctx.db.scalar(select(User).where(User.email == email)) is not None:
        raise FunctionError("DUPLICATE", f"A user {email} already exists", field="email")
    user = User(email=email, role=role, is_active=True, created_at=ctx.now,
                password_hash=_new_hash(ctx, password) if password else None)
    ctx.db.add(user)
    ctx.db.flush()
    return _user_doc(user)


@query(scope="admin", internal=True)
def listUsers(ctx: Context) -> list[dict]:
    """Every console account."""
    return [_user_doc(u) for u in ctx.db.scalars(select(User).order_by(User.email))]


@query(scope="admin", internal=True)
def countUsers(ctx: Context) -> int:
    """How many console accounts exist."""
    return ctx.db.scalar(select(func.count(User.id)))


@mutation(
    {"name": TOKEN_NAME, "scopes": v.array(v.literal(*SCOPES), 1, 3, unique=True),
     "expiresInDays": v.optional(v.int(1, 3650))},
    scope="admin", internal=True,
)
def createToken(ctx: Context, name: str, scopes: list[str], expiresInDays=None) -> dict:
    """A new service token; the secret is in the answer and nowhere else, ever."""
    taken = ctx.db.scalar(select(ApiToken).where(ApiToken.name == name))
    if taken is not None:
        raise FunctionError("DUPLICATE", f"A token named {name} already exists" + (
            "; it is revoked, and its name stays with the changes it made (the history names "
            f"callers by token name): choose another, e.g. {_free_name(ctx, name)}"
            if taken.revoked_at is not None else ""), field="name")
    prefix = secrets.token_hex(4)
    raw = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        name=name, prefix=prefix, token_hash=hash_token(raw), scopes=scopes,
        created_by=ctx.identity.name, created_at=ctx.now,
        expires_at=None if expiresInDays is None else ctx.now + expiresInDays * 86_400_000,
    )
    ctx.db.add(token)
    ctx.db.flush()
    audit.info("token created", extra={"caller": ctx.identity.name, "token": name,
                                       "scopes": scopes})
    return {**_token_doc(token, ctx.now), "token": raw}


def _free_name(ctx: Context, name: str) -> str:
    """The first of name-2, name-3, … that no token has (within TOKEN_NAME's 100 characters)."""
    names = set(ctx.db.scalars(select(ApiToken.name)))
    stem = name[:90]
    return next(f"{stem}-{n}" for n in itertools.count(2) if f"{stem}-{n}" not in names)


@query(scope="admin", internal=True)
def listTokens(ctx: Context) -> list[dict]:
    """Every service token (never the secret)."""
    return [_token_doc(t, ctx.now)
            for t in ctx.db.scalars(select(ApiToken).order_by(ApiToken.id))]


@mutation({"name": v.string(1, 100)}, scope="admin", internal=True)
def revokeToken(ctx: Context, name: str) -> dict:
    """Revoke a token; the next request that carries it is refused."""
    token = ctx.db.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise FunctionError("NOT_FOUND", f"No token named {name}", field="name")
    if token.revoked_at is None:  # revoking it again changes nothing, and says nothing
        token.revoked_at = ctx.now
        audit.info("token revoked", extra={"caller": ctx.identity.name, "token": name})
    return _token_doc(token, ctx.now)


@dataclass(frozen=True)
class KnownToken:
    id: int
    identity: Identity
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None


class KnownTokens:
    """Tokens this process has checked, kept while the host's `access` mark is unchanged
    (a revocation bumps it): a known token costs no database round trip."""

    LIMIT = 10_000
    LIVE_SECONDS = 60  # how old the hashes of the live tokens may be (a new token moves a mark)

    def __init__(self, marks: Marks) -> None:
        self._marks = marks
        self._held = Generation(marks, "access")
        self._noted: dict[int, int] = {}  # token id -> when this process last noted its use
        self._live: tuple[int, float, frozenset[str]] = (-1, 0.0, frozenset())

    def authenticate(self, engine: Engine, raw: str,
                     before_lookup: Callable[[], None] | None = None) -> Identity | None:
        """The identity a bearer token stands for, or None when unknown, expired or revoked.

        `before_lookup` runs before the database is asked about a token this process does not
        know, and may refuse to ask by raising: a known token costs nothing, a guess does. A
        refusal stands unless the token is one of the live tokens (`_live_hashes`), so a
        valid token is never refused for the guesses of others at its address.
        """
        if not raw.startswith(TOKEN_PREFIX) or not (raw.isascii() and raw.isprintable()):
            return None  # not a token (a NUL or a lone surrogate would not even be looked up)
        prefix, underscore, _ = raw[len(TOKEN_PREFIX):].partition("_")
        if not underscore:
            return None
        digest = hash_token(raw)
        held = self._held.values()
        known = held.get(digest)
        if not isinstance(known, KnownToken):  # not known here yet (or being looked up)

            def lookup() -> KnownToken | None:
                if before_lookup is not None:
                    try:
                        before_lookup()
                    except TransportError:
                        if digest not in self._live_hashes(engine):
                            raise
                return _known_token(engine, prefix, digest)

            # Unknown tokens are not kept: guessing must not fill memory.
            known = once(held, digest, lookup,
                         keep=lambda found: found is not None and len(held) <= self.LIMIT)
            if known is None:
                return None
        now = int(time.time() * 1000)
        if known.revoked_at is not None or expired(known.expires_at, now):
            return None
        noted = max(known.last_used_at or 0, self._noted.get(known.id, 0))
        if now - noted > 60_000:
            self._noted[known.id] = now
            _touch(engine, known.id, now)
        return known.identity

    def _live_hashes(self, engine: Engine) -> frozenset[str]:
        """The hashes of the tokens neither revoked nor expired, read again when the `access`
        mark moves or after LIVE_SECONDS. Asked only for a lookup that would be refused: at
        most once a minute or once a change, whatever a guesser sends, and a read that fails
        (the database down) leaves the last hashes, and the refusal, standing until then."""
        mark = self._marks.read("access")
        seen, read_at, hashes = self._live
        if seen != mark or time.monotonic() - read_at > self.LIVE_SECONDS:
            self._live = (mark, time.monotonic(), hashes)  # the other threads keep these
            try:
                hashes = read_again_if_dropped(partial(_read_live_hashes, engine))
            except SQLAlchemyError:
                return hashes
            self._live = (mark, time.monotonic(), hashes)
        return hashes


def _read_live_hashes(engine: Engine) -> frozenset[str]:
    now = int(time.time() * 1000)
    with read(engine) as session:
        return frozenset(session.scalars(
            select(ApiToken.token_hash).where(ApiToken.revoked_at.is_(None)).where(
                or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))))


def _known_token(engine: Engine, prefix: str, digest: str) -> KnownToken | None:
    def find() -> ApiToken | None:
        with read(engine) as session:
            return session.scalar(select(ApiToken).where(ApiToken.prefix == prefix))

    token = read_again_if_dropped(find)
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    return KnownToken(token.id, Identity("token", f"token:{token.name}", frozenset(token.scopes)),
                      token.expires_at, token.revoked_at, token.last_used_at)


def authenticate_token(app: Flask, raw: str,
                       before_lookup: Callable[[], None] | None = None) -> Identity | None:
    """The identity a bearer token stands for, or None when unknown, expired or revoked."""
    return app.extensions["known_tokens"].authenticate(app.extensions["catalog_db"].engine, raw,
                                                       before_lookup)


def _touch(engine: Engine, token_id: int, now: int) -> None:
    """Note when a token was last used: bookkeeping, at most once a minute, never in the way."""
    try:
        with single_statement(engine) as conn:
            conn.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    except OperationalError:
        pass  # busy: the next request will note it


@dataclass(frozen=True)
class Account:
    """A console account as a session sees it: who, and the session version it signs in under."""

    identity: Identity
    session_version: int


def _account(user: User | None) -> Account | None:
    if user is None or not user.is_active:
        return None
    return Account(Identity.user(user.email, user.role), user.session_version)


def _find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def _password_matches(user: User | None, password: str, hash_method: str) -> bool:
    """Checked against a dummy hash when there is no password, so that refusals take as long."""
    stored = user.password_hash if user is not None and user.password_hash else _dummy_hash(
        hash_method)
    matches = check_password_hash(stored, password)
    return matches and user is not None and user.password_hash is not None


def authenticate_password(session: Session, email: str, password: str,
                          hash_method: str) -> Account | None:
    """The account, if the password is right and the account active."""
    user = _find_user(session, email)
    return _account(user) if _password_matches(user, password, hash_method) else None


def account_for_email(session: Session, email: str) -> Account | None:
    """An active account by email (single sign-on has verified the email)."""
    return _account(_find_user(session, email))


def account_for_session(session: Session, email: str, version: object) -> Account | None:
    """The account a console session stands for, unless that session has been ended."""
    account = account_for_email(session, email)
    if account is None or account.session_version != version:
        return None
    return account


def _end_sessions(user: User) -> None:
    """Every console session of this user stops working at its next request, on every worker
    and host: each request compares its session's version with the database's."""
    user.session_version += 1


@mutation({"email": EMAIL}, scope="admin", internal=True)
def recordSignIn(ctx: Context, email: str) -> None:
    """Note when an account last signed in."""
    ctx.db.execute(update(User).where(User.email == email.lower())
                   .values(last_sign_in_at=ctx.now))


@mutation({"email": EMAIL, "role": v.optional(v.literal(*ROLES)),
           "isActive": v.optional(v.boolean())}, scope="admin", internal=True)
def updateUser(ctx: Context, email: str, role=None, isActive=None) -> dict:
    """Change an account's role, or switch it off (it is signed out on its next request)."""
    user = _user_or_refuse(ctx, email)
    if ctx.identity.name == user.email and (isActive is False or role not in (None, "admin")):
        raise FunctionError("FORBIDDEN", "You cannot demote or disable yourself", field="email")
    if role is not None:
        user.role = role
    if isActive is not None:
        if isActive is False and user.is_active:
            _end_sessions(user)  # enabling it again must not bring old sessions back
        user.is_active = isActive
    return _user_doc(user)


@mutation({}, scope=SIGNED_IN, internal=True)
def signOut(ctx: Context) -> None:
    """Sign the calling user out: every session of theirs ends, in every browser."""
    if ctx.identity.kind != "user":
        raise FunctionError("FORBIDDEN", "Only a console user can sign out")
    _end_sessions(_user_or_refuse(ctx, ctx.identity.name))
    audit.info("signed out", extra={"email": ctx.identity.name})


@mutation({"email": EMAIL}, scope="admin", internal=True)
def signOutUser(ctx: Context, email: str) -> dict:
    """End every console session of a user (an admin's "sign this user out")."""
    user = _user_or_refuse(ctx, email)
    _end_sessions(user)
    audit.info("sessions ended", extra={"caller": ctx.identity.name, "email": user.email})
    return _user_doc(user)


@mutation({"currentPassword": v.string(1, 200), "newPassword": PASSWORD},
          scope=SIGNED_IN, internal=True)
def changePassword(ctx: Context, currentPassword: str, newPassword: str) -> None:
    """Change the calling user's password; every session of theirs ends (sign in again)."""
    user = _find_user(ctx.db, ctx.identity.name) if ctx.identity.kind == "user" else None
    if not _password_matches(user, currentPassword, ctx.config["PASSWORD_HASH_METHOD"]):
        raise FunctionError("FORBIDDEN", "The current password is wrong",
                            field="currentPassword")
    user.password_hash = _new_hash(ctx, newPassword)
    _end_sessions(user)
    audit.info("password changed", extra={"email": user.email})


@mutation({"email": EMAIL, "password": PASSWORD}, scope="admin", internal=True)
def setPassword(ctx: Context, email: str, password: str) -> dict:
    """Set a user's password (an operator's reset); every session of theirs ends."""
    user = _user_or_refuse(ctx, email)
    user.password_hash = _new_hash(ctx, password)
    _end_sessions(user)
    audit.info("password set", extra={"caller": ctx.identity.name, "email": user.email})
    return _user_doc(user)
