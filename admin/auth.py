"""Signing in to the console: local accounts, and OIDC single sign-on through Authlib."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from db import get_db
from engine import throttle
from engine.errors import FunctionError
from engine.ratelimit import retry_after
from engine.runtime import ANONYMOUS, Identity, call, system
from engine.values import text_problem
from functions.access import (
    Account,
    account_for_email,
    account_for_session,
    authenticate_password,
)

audit = logging.getLogger("catalog.audit")
T = TypeVar("T")
bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="templates")


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def current_identity() -> Identity:
    """The signed-in user, re-read from the database on every request: role changes apply at
    once, and a session that was ended (sign-out, new password, an admin's "sign out",
    account disabled) is refused on every worker, since its version is no longer the user's."""
    if "identity" not in g:
        g.identity = ANONYMOUS
        if "user" in session:
            account = _session_account()
            if account is None or not _fresh(session.get("since")):
                session.clear()  # ended, or signed in longer ago than a session lasts
            else:
                g.identity = account.identity
    return g.identity


def _session_account() -> Account | None:
    """The account the session cookie names, while the session's version is the account's."""
    email = session.get("user")
    if not isinstance(email, str):
        return None
    with Session(get_db().engine) as db:
        return account_for_session(db, email, session.get("version"))


def _fresh(since) -> bool:
    """Whether a session that began at `since` (Unix seconds) is still within its lifetime
    (PERMANENT_SESSION_LIFETIME). The cookie's own age restarts whenever the session changes
    (a flashed message), so the sign-in's time is kept in it and read here."""
    lasts = current_app.permanent_session_lifetime.total_seconds()
    return isinstance(since, int | float) and time.time() - since <= lasts  # (a clock behind
    # the one that signed the session in makes it younger, never older)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if not target:
        return url_for("admin.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("admin.index")
    return target


def sign_in_as(account: Account, method: str) -> None:
    identity = account.identity
    session.clear()  # a fresh session on every sign-in
    session.permanent = True
    session["user"] = identity.name
    session["version"] = account.session_version  # ended when the user's version moves on
    session["method"] = method
    session["nonce"] = secrets.token_urlsafe(8)
    session["since"] = int(time.time())
    g.identity = identity
    audit.info(f"sign-in ({method})", extra={"email": identity.name})
    call("access:recordSignIn", {"email": identity.name}, identity=system("auth"),
         source="console")


THROTTLE_WINDOW = 15 * 60


def _throttle_limits(email: str) -> list[tuple[str, int]]:
    """Failures are counted per (account, address), per address, and per account from
    everywhere (a high backstop): one address cannot lock an account out of the others."""
    config, account, address = current_app.config, email.strip().lower(), request.remote_addr
    return [
        (throttle.key("account+address", account, address or ""),
         config["SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS"]),
        (throttle.key("address", address or ""), config["SIGN_IN_FAILURES_PER_ADDRESS"]),
        (throttle.key("account", account), config["SIGN_IN_FAILURES_PER_ACCOUNT"]),
    ]


def check_password_throttled(email: str, check: Callable[[], T | None]) -> T | None:
    """Run a password check under the sign-in throttles: a slot is reserved first (atomically,
    in the database), kept when `check` fails (None) and given back when it succeeds or raises
    (a refusal before any password was compared, or the database failing).

    Raises ThrottledError without checking when a limit is reached.
    """
    limits = _throttle_limits(email)
    engine = get_db().engine
    reservation = throttle.reserve(engine, limits, THROTTLE_WINDOW)
    try:
        result = check()
    except Exception:
        throttle.release(engine, reservation)
        raise
    if result is not None:
        throttle.release(engine, reservation, forget=[limits[0][0]])
    return result


def _sign_in_page(form: SignInForm, next_url: str, status: int):
    return render_template("auth/sign_in.html", form=form, next_url=next_url,
                           sso=bool(current_app.config.get("OIDC_ISSUER"))), status


def _check_password(email: str, password: str) -> Account | None:
    with Session(get_db().engine) as db:
        return authenticate_password(db, email, password,
                                     current_app.config["PASSWORD_HASH_METHOD"])


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm()
    next_url = _safe_next(request.values.get("next"))
    if not form.validate_on_submit():  # the form's own messages say what is wrong
        return _sign_in_page(form, next_url, 400 if request.method == "POST" else 200)
    email = form.email.data
    try:
        account = check_password_throttled(
            email, lambda: _check_password(email, form.password.data))
    except throttle.ThrottledError as refusal:
        audit.warning("sign-in throttled", extra={"email": email})
        flash(f"Too many failed sign-ins; try again in {int(refusal.retry_after // 60) + 1} "
              "minutes.", "error")
        page, status = _sign_in_page(form, next_url, 429)
        return page, status, {"Retry-After": retry_after(refusal.retry_after)}
    except SQLAlchemyError:
        current_app.logger.warning("sign-in unavailable", exc_info=True)
        flash("Sign-in is unavailable right now; try again shortly.", "error")
        return _sign_in_page(form, next_url, 503)
    if account is None:
        audit.warning("sign-in failed", extra={"email": email})
        flash("Wrong email or password.", "error")
        return _sign_in_page(form, next_url, 401)
    sign_in_as(account, "password")
    return redirect(next_url)


@bp.post("/sign-out")
def sign_out():
    """Sign out everywhere: every session of this user ends, on every worker and host (from a
    session past its lifetime too: signing out must not leave the others on)."""
    account = _session_account()
    if account is not None:
        call("access:signOut", identity=account.identity, source="console")
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))


@bp.get("/sso")
def sso_start():
    client = _sso_client()
    if client is None:
        abort(404)
    session["sso_next"] = _safe_next(request.args.get("next"))
    return client.authorize_redirect(url_for("auth.sso_callback", _external=True))


@bp.get("/sso/callback")
def sso_callback():
    client = _sso_client()
    if client is None:
        abort(404)
    try:
        token = client.authorize_access_token()
    except Exception as error:  # noqa: BLE001 - any OAuth failure is a refused sign-in
        current_app.logger.warning("SSO sign-in failed: %s", error)
        flash("Single sign-on failed; try again.", "error")
        return redirect(url_for("auth.sign_in"))
    claims = token.get("userinfo") or {}
    email = claims.get("email")
    if (not isinstance(email, str) or not _verified(claims)
            or not email.strip() or text_problem(email)):
        flash("Single sign-on did not give a verified email.", "error")
        return redirect(url_for("auth.sign_in"))
    email = email.strip().lower()
    next_url = session.get("sso_next")
    account = _sso_account(email)
    if account is None:
        flash(f"{email} has no active account here; ask an admin for one.", "error")
        return redirect(url_for("auth.sign_in"))
    sign_in_as(account, "sso")
    return redirect(_safe_next(next_url))


def _verified(claims: dict) -> bool:
    """Only an email the provider says it verified names an account: one that is merely
    claimed (some providers let a user set any) would sign in as whoever owns it here. A
    provider that never says (Entra ID) is trusted only with OIDC_TRUST_UNVERIFIED_EMAIL."""
    said = claims.get("email_verified")
    return said is True or (
        said is None and current_app.config["OIDC_TRUST_UNVERIFIED_EMAIL"] == "1")


def _sso_client():
    """The single sign-on provider's client; None when none is configured."""
    return current_app.extensions["oauth"].create_client("sso")


def _account(email: str) -> Account | None:
    with Session(get_db().engine) as db:
        return account_for_email(db, email)


def _sso_account(email: str) -> Account | None:
    """A known account; or, for an allowed domain with a default role, a new one."""
    account = _account(email)
    if account is not None:
        return account
    domain = current_app.config.get("OIDC_ALLOWED_DOMAIN")
    role = current_app.config.get("OIDC_DEFAULT_ROLE")
    if not domain or not role or email.rsplit("@", 1)[-1] != domain.lower():
        return None
    try:
        call("access:createUser", {"email": email, "role": role, "password": None},
             identity=system("sso"), source="console")
    except FunctionError as refusal:  # DUPLICATE: made meanwhile by a sign-in racing this
        # one (then it is found below), or disabled (then it is not); or an email the account
        # rules refuse
        current_app.logger.warning("SSO account for %s not made: %s", email, refusal.message)
    return _account(email)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    oauth = app.extensions["oauth"] = OAuth(app)  # one per app: each has its own provider
    if app.config.get("OIDC_ISSUER"):
        issuer = app.config["OIDC_ISSUER"].rstrip("/")
        oauth.register(
            "sso",
            client_id=app.config["OIDC_CLIENT_ID"],
            client_secret=app.config["OIDC_CLIENT_SECRET"],
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile"},
        )
