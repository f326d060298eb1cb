"""The application factory, and `app` for gunicorn (`gunicorn wsgi:app`)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from flask import Flask

from config import (
    Config,
    SettingError,
    check_secret,
    instance_path,
    make_folders,
    server_settings,
)


def _secret_key(app: Flask, instance: Path) -> str:
    """In development, a SECRET_KEY generated once and kept (production's is required:
    config.py)."""
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


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, instance_path=instance_path(),
                instance_relative_config=True)
    instance = Path(app.instance_path)
    app.config.from_mapping(Config.from_environ(instance))
    if test_config:
        app.config.update(test_config)
    check_secret(app.config)
    make_folders(app.config, instance)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(app, instance)

    import admin
    import cli
    import db
    import engine
    import functions
    import seeds
    import wire

    db.init_app(app)
    engine.init_app(app)
    functions.init_app(app)
    wire.init_app(app)
    cli.init_app(app)
    seeds.init_app(app)
    admin.init_app(app)
    if app.config["BEHIND_PROXY"] == "1":  # nginx in front: trust one hop of X-Forwarded-*
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
        try:
            # gunicorn's settings too: gunicorn reads WEB_CONCURRENCY itself, as it is
            # imported, before its conf file can check it ('abc' is its traceback), so the
            # `flask --app wsgi db upgrade` that `make run` and the unit run first says it.
            server_settings()
            _app = create_app()
        except SettingError as error:  # `flask --app wsgi ...` (gunicorn's master: its conf)
            raise SystemExit(f"Error: {error}") from None
    return _app
