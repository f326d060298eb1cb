"""The console's browser-facing defences: CSRF on every form, and security headers."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template_string,
    request,
    session,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import MethodNotAllowed

from admin.access import wants_json
from admin.model_view import CatalogModelView
from engine.values import text_problem

csrf = CSRFProtect()


def nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _hash(source: str) -> str:
    digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
    return f"'sha256-{digest}'"


# Flask-Admin's templates carry a few inline handlers (filter links, the bulk-action menu);
# exactly those are allowed by hash, and no other inline script runs.
FLASK_ADMIN_HANDLERS = " ".join([
    "'unsafe-hashes'",
    *map(_hash, ["return false;", "javascript:void(0)"]),
    *(_hash(f"return modelActions.execute('{name}');") for name in CatalogModelView.BULK),
])


def _security_headers(response):
    if request.path.startswith("/api/"):
        return response
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; script-src 'self' 'nonce-{nonce()}' {FLASK_ADMIN_HANDLERS}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    )
    if session.get("user"):
        response.headers["Cache-Control"] = "no-store"
    return response


CSRF_PAGE = "<h1>Form expired</h1><p>{{ reason }}. Go back, reload the page and try again.</p>"


# Query arguments are ids, numbers, search and filter text, cursors, return addresses.
MAX_QUERY_ARGUMENT = 1000


def _refuse_unstorable_text() -> None:
    """Every console field and query argument must be text a database can hold and search.

    Flask-Admin hands search and filter text straight to SQL; PostgreSQL refuses NUL
    characters, and SQLite LIKE patterns over 50,000 bytes, with an error; so they are
    turned away here, for every page at once.
    """
    if request.path.startswith("/api/"):
        return
    for key, value in request.args.items(multi=True):
        if len(key) > MAX_QUERY_ARGUMENT or len(value) > MAX_QUERY_ARGUMENT:
            abort(400, f"A query argument is longer than {MAX_QUERY_ARGUMENT} characters")
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if text_problem(key) or text_problem(value):
                abort(400, "The request holds text that is not valid (NUL or broken Unicode)")


RETURN_ADDRESSES = ("url", "next")  # Flask-Admin's and sign-in's "go back to" parameters
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _refuse_unusable_return_addresses() -> None:
    """A return address goes into a Location header, which cannot hold control characters
    (a line break would raise deep in Werkzeug: a 500). Flask-Admin's same-site check ignores
    them, so they are turned away here, for every page at once."""
    if request.path.startswith("/api/"):
        return
    for name in RETURN_ADDRESSES:
        if any(CONTROL.search(value) for value in request.values.getlist(name)):
            abort(400, "The return address is not valid")


def _open_a_forms_answer() -> Response | None:
    """A GET of a console address that only answers a form (a plan, an apply, a bulk action:
    a bookmark, a reload after the browser dropped the POST): the page it belongs to, with a
    word, instead of a bare 405 page."""
    if (isinstance(request.routing_exception, MethodNotAllowed) and request.method == "GET"
            and request.path.startswith("/admin/")):
        flash("That address answers a form: it opens from this page.", "info")
        return redirect("/".join(request.path.split("/")[:3]) + "/")
    return None


def _refuse_oversized_uploads() -> Response | None:
    """A console form larger than a request may carry (a large catalog export): said on the
    page it belongs to, before anything reads it, instead of a bare 413 page."""
    largest = current_app.config["MAX_CONTENT_LENGTH"]
    size = request.content_length or 0
    if request.path.startswith("/admin/") and size > largest:
        flash(f"The upload is {size / 2**20:.1f} MiB, over the {largest / 2**20:g} MiB a request "
              "may carry: plan and apply a catalog file this large with the CLI (flask --app "
              "wsgi catalog plan FILE); a price map may be uploaded gzipped.", "error")
        return redirect("/".join(request.path.split("/")[:3]) + "/")
    return None


def init_app(app: Flask) -> None:
    app.before_request(_refuse_oversized_uploads)  # first: the others read the form
    app.before_request(_open_a_forms_answer)
    app.before_request(_refuse_unstorable_text)
    app.before_request(_refuse_unusable_return_addresses)
    csrf.init_app(app)
    csrf.exempt(app.blueprints["api"])  # the API takes bearer tokens, never cookies
    app.after_request(_security_headers)

    @app.errorhandler(CSRFError)
    def _csrf_error(error: CSRFError):
        if wants_json():
            return {"code": "CsrfFailed", "message": error.description}, 400
        return render_template_string(CSRF_PAGE, reason=error.description.rstrip(".")), 400
