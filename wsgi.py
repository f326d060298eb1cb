"""The application factory, and `app` for gunicorn (`gunicorn wsgi:app`)."""

from __future__ import annotations

import os
import secrets
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flask import Flask


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment; in development, one generated once and kept."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if os.environ.get("CATALOG_ENV") == "production":
        raise RuntimeError("SECRET_KEY must be set in production")
    path = instance / "secret_key"
    try:  # created once, exclusively: workers starting together must agree on one key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(100):  # another process may have created it and not written it yet
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it, or set SECRET_KEY")


def _credits_per_usd() -> Decimal:
    raw = os.environ.get("CREDITS_PER_USD", "100")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RuntimeError(f"CREDITS_PER_USD must be a number, got {raw!r}") from None
    if not value.is_finite() or value <= 0:
        raise RuntimeError(f"CREDITS_PER_USD must be positive, got {raw!r}")
    return value


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("INSTANCE_PATH") or None,
                instance_relative_config=True)
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    production = os.environ.get("CATALOG_ENV") == "production"
    app.config.from_mapping(
        DATABASE_URL=os.environ.get("DATABASE_URL", f"sqlite:///{instance / 'catalog.db'}"),
        CREDITS_PER_USD=_credits_per_usd(),
        MAX_CONTENT_LENGTH=1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=production,
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        RATE_LIMIT_PER_MINUTE=int(os.environ.get("RATE_LIMIT_PER_MINUTE", "6000")),
        RATE_LIMIT_STORAGE=os.environ.get("RATE_LIMIT_STORAGE",
                                          str(instance / "ratelimit.sqlite3")),
        SIGN_IN_FAILURES_PER_ACCOUNT=int(os.environ.get("SIGN_IN_FAILURES_PER_ACCOUNT", "5")),
        SIGN_IN_FAILURES_PER_ADDRESS=int(os.environ.get("SIGN_IN_FAILURES_PER_ADDRESS", "20")),
        OIDC_ISSUER=os.environ.get("OIDC_ISSUER"),
        OIDC_CLIENT_ID=os.environ.get("OIDC_CLIENT_ID"),
        OIDC_CLIENT_SECRET=os.environ.get("OIDC_CLIENT_SECRET"),
        OIDC_ALLOWED_DOMAIN=os.environ.get("OIDC_ALLOWED_DOMAIN"),
        OIDC_DEFAULT_ROLE=os.environ.get("OIDC_DEFAULT_ROLE"),
    )
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(instance)

    import admin
    import db
    import functions
    import seeds

    db.init_app(app)
    functions.init_app(app)
    seeds.init_app(app)
    admin.init_app(app)
    if os.environ.get("BEHIND_PROXY") == "1":  # nginx in front: trust one hop of X-Forwarded-*
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Outermost, so that every layer (held answers too) sees the caller's address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    return app


_app: Flask | None = None


def __getattr__(name: str) -> Flask:
    """`wsgi.app` is made on first use, so that importing create_app has no side effects."""
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = create_app()
    return _app
