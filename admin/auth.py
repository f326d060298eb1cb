"""Signing in to the console: local accounts, and OIDC single sign-on through Authlib."""

from __future__ import annotations

import logging
import secrets
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
from sqlalchemy.orm import Session
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from db import get_db
from engine.ratelimit import counters
from engine.runtime import ANONYMOUS, Identity, call, system
from engine.values import text_problem
from functions.access import authenticate_password, identity_for_email

audit = logging.getLogger("catalog.audit")
bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="templates")
oauth = OAuth()


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def current_identity() -> Identity:
    """The signed-in user, re-read from the database on every request (role changes apply)."""
    if "identity" not in g:
        g.identity = ANONYMOUS
        email = session.get("user")
        if email:
            with Session(get_db().engine) as db:
                identity = identity_for_email(db, email)
            if identity is None:
                session.clear()
            else:
                g.identity = identity
    return g.identity


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if not target:
        return url_for("admin.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("admin.index")
    return target


def sign_in_as(identity: Identity, method: str) -> None:
    session.clear()  # a fresh session on every sign-in
    session.permanent = True
    session["user"] = identity.name
    session["method"] = method
    session["nonce"] = secrets.token_urlsafe(8)
    g.identity = identity
    audit.info(f"sign-in ({method})", extra={"email": identity.name})
    call("access:recordSignIn", {"email": identity.name}, identity=system("auth"),
         source="console")


THROTTLE_WINDOW = 15 * 60


def _throttle_keys(email: str) -> list[tuple[str, int]]:
    config = current_app.config
    return [(f"sign-in:account:{email.strip().lower()}", config["SIGN_IN_FAILURES_PER_ACCOUNT"]),
            (f"sign-in:address:{request.remote_addr}", config["SIGN_IN_FAILURES_PER_ADDRESS"])]


def _throttled(email: str) -> float | None:
    """Seconds to wait when this account or address failed too often, else None."""
    waits = [left for key, most in _throttle_keys(email)
             for count, left in [counters().count(key, THROTTLE_WINDOW)] if count >= most]
    return max(waits) if waits else None


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    form = SignInForm()
    next_url = _safe_next(request.values.get("next"))
    status = 200
    if form.validate_on_submit():
        email = form.email.data
        wait = _throttled(email)
        if wait is not None:
            audit.warning("sign-in throttled", extra={"email": email})
            flash(f"Too many failed sign-ins; try again in {int(wait // 60) + 1} minutes.",
                  "error")
            return render_template("auth/sign_in.html", form=form, next_url=next_url,
                                   sso=bool(current_app.config.get("OIDC_ISSUER"))), 429
        with Session(get_db().engine) as db:
            identity = authenticate_password(db, email, form.password.data)
        if identity is not None:
            counters().clear(_throttle_keys(email)[0][0])
            sign_in_as(identity, "password")
            return redirect(next_url)
        for key, _most in _throttle_keys(email):
            counters().hit(key, THROTTLE_WINDOW)
        audit.warning("sign-in failed", extra={"email": email})
        flash("Wrong email or password.", "error")
        status = 401
    elif request.method == "POST":
        status = 400  # the form's own messages say what is wrong
    return render_template("auth/sign_in.html", form=form, next_url=next_url,
                           sso=bool(current_app.config.get("OIDC_ISSUER"))), status


@bp.post("/sign-out")
def sign_out():
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))


@bp.get("/sso")
def sso_start():
    client = oauth.create_client("sso")
    if client is None:
        abort(404)
    session["sso_next"] = _safe_next(request.args.get("next"))
    return client.authorize_redirect(url_for("auth.sso_callback", _external=True))


@bp.get("/sso/callback")
def sso_callback():
    client = oauth.create_client("sso")
    if client is None:
        abort(404)
    try:
        token = client.authorize_access_token()
    except Exception as error:  # noqa: BLE001 - any OAuth failure is a refused sign-in
        current_app.logger.warning("SSO sign-in failed: %s", error)
        flash("Single sign-on failed; try again.", "error")
        return redirect(url_for("auth.sign_in"))
    claims = token.get("userinfo") or {}
    email = (claims.get("email") or "").strip().lower()
    if not email or text_problem(email) or claims.get("email_verified") is False:
        flash("Single sign-on did not give a verified email.", "error")
        return redirect(url_for("auth.sign_in"))
    next_url = session.get("sso_next")
    identity = _sso_identity(email)
    if identity is None:
        flash(f"{email} has no account here; ask an admin for one.", "error")
        return redirect(url_for("auth.sign_in"))
    sign_in_as(identity, "sso")
    return redirect(_safe_next(next_url))


def _sso_identity(email: str) -> Identity | None:
    """A known account; or, for an allowed domain with a default role, a new one."""
    with Session(get_db().engine) as db:
        identity = identity_for_email(db, email)
    if identity is not None:
        return identity
    domain = current_app.config.get("OIDC_ALLOWED_DOMAIN")
    role = current_app.config.get("OIDC_DEFAULT_ROLE")
    if not domain or not role or email.rsplit("@", 1)[-1] != domain.lower():
        return None
    call("access:createUser", {"email": email, "role": role, "password": None},
         identity=system("sso"), source="console")
    return Identity.user(email, role)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    oauth.init_app(app)
    if app.config.get("OIDC_ISSUER"):
        issuer = app.config["OIDC_ISSUER"].rstrip("/")
        oauth.register(
            "sso",
            client_id=app.config["OIDC_CLIENT_ID"],
            client_secret=app.config["OIDC_CLIENT_SECRET"],
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid email profile"},
        )
