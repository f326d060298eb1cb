"""Property-based fuzzing of the console: every form and query parameter, as every role.

Flask's test client, a real database, CSRF tokens taken from the pages as a browser would.
For every request: no 500 and no traceback; a GET changes nothing; and the catalog (models,
statistics, history, version) changes only when the role may change it and the request was
not refused.
"""

from __future__ import annotations

import copy
import io
import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from functions.webhooks import KINDS
from tests.conftest import catalog_fingerprint, run_as_system
from tests.console import ACCOUNTS, PASSWORD, create_accounts, csrf_token

# About half a minute: run by `make test`, left out of `make quick`.
pytestmark = pytest.mark.slow

ROLES = ("viewer", "editor", "admin")
WRITERS = ("editor", "admin")
FUZZ_USER = "fuzz@example.com"

FUZZ = settings(
    max_examples=30, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- hostile values ------------------------------------------------------------------------

UNICODE_DIGITS = ["²", "³⁴", "٣", "۵", "߁", "१२", "１２", "𝟗", "Ⅻ", "½", "൦"]
NUMBERISH = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from([
        "", " ", "0", "-0", "+1", "-1", "1_000", "1e9", "1e999999", "NaN", "sNaN", "inf",
        "-Infinity", "0x10", "1.5", ".5", "5.", "0.0000001", "9" * 5000, "00001", " 7 ", "7\n",
        "2147483648", "9223372036854775808", "1" * 30, "$0.10", "0.10$", *UNICODE_DIGITS,
    ]),
    st.text(alphabet="0123456789²٣.-+eE_ ", min_size=1, max_size=12),
)


def _nested(depth: int, kind: str) -> str:
    return {"list": "[" * depth + "]" * depth,
            "object": '{"a":' * depth + "1" + "}" * depth}[kind]


DEEP_JSON = st.builds(_nested, st.sampled_from([17, 40, 200, 999, 1000, 5000, 50_000]),
                      st.sampled_from(["list", "object"]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)
JSONISH = st.one_of(
    DEEP_JSON,
    JSON_VALUES.map(json.dumps),
    st.sampled_from(["NaN", '{"a": NaN}', '{"a": Infinity}', '{"a": 1e999}',
                     '{"a": ' + "1" * 5000 + "}", "{", '{"$a": 1}', '{"a": "\\u0000"}',
                     '{"a": "\\ud800"}', "[]", "null", '"text"', "{}", '{"high": 1.5}',
                     '{"high": "x"}', '{"high": -1}', '{"high": ' + "9" * 400 + "}"]),
)
TEXT = st.text(max_size=30)
VALUE = st.one_of(NUMBERISH, TEXT, JSONISH, st.sampled_from(UNICODE_DIGITS))
ROW_ID = st.one_of(st.sampled_from(["1", "2", "3", "4"]), NUMBERISH, TEXT)
EXTRA = st.dictionaries(st.text(min_size=1, max_size=8), VALUE, max_size=2)


# -- the console under test ----------------------------------------------------------------


class Console:
    """The app, a signed-in client per role, and the oracle every request is checked by."""

    def __init__(self, app):
        self.app = app
        self.exported = run_as_system(app, "catalog:exportCatalog")
        self.clients: dict[str, object] = {}
        self.tokens: dict[str, str] = {}

    def signed_in(self, role: str):
        """A client signed in as `role` (again, if an earlier request signed it out)."""
        client = self.clients.get(role)
        if client is not None and client.get("/admin/account/").status_code == 200:
            return client
        client = self.clients[role] = self.app.test_client()
        page = client.get("/auth/sign-in").get_data(as_text=True)
        response = client.post("/auth/sign-in", data={
            "csrf_token": csrf_token(page), "email": ACCOUNTS[role], "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        self.tokens[role] = csrf_token(client.get("/admin/").get_data(as_text=True))
        return client

    def send(self, role: str, method: str, url: str, *, catalog: tuple[str, ...] = (),
             accounts: tuple[str, ...] = (), data: dict | None = None,
             query: dict | None = None):
        """One request, checked: no 500 and no traceback; the catalog changes only for the
        roles in `catalog`, accounts and tokens only for those in `accounts`, and neither
        when the request was refused (or is a GET)."""
        client = self.signed_in(role) if role in ROLES else self.clients.setdefault(
            role, self.app.test_client())
        if method == "POST" and data is not None and role in self.tokens:
            data = {"csrf_token": self.tokens[role], **data}
        before = catalog_fingerprint(self.app), accounts_fingerprint(self.app)
        response = client.open(url, method=method, data=data, query_string=query,
                               follow_redirects=True)
        body = response.get_data(as_text=True)
        assert response.status_code < 500, (method, url, query, data, body[:2000])
        assert "Traceback" not in body and "Internal error" not in body, (url, body[:2000])
        after = catalog_fingerprint(self.app), accounts_fingerprint(self.app)
        for what, allowed, old, new in zip(("catalog", "accounts"), (catalog, accounts),
                                           before, after, strict=True):
            event(f"{method} {response.status_code} {what} "
                  f"{'changed' if old != new else 'unchanged'}")
            if old != new:
                assert method == "POST" and role in allowed, f"{role} changed the {what}: " \
                    f"{url} {data}"
                assert not refused(response, body), f"refused, yet changed: {url} {data} {body}"
        return response


def accounts_fingerprint(app) -> tuple:
    """Users and tokens, apart from when they were last used, and webhooks: what admins
    alone change."""
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as conn:
        users = conn.execute(text("SELECT email, password_hash, role, is_active, "
                                  "session_version FROM users ORDER BY id")).all()
        tokens = conn.execute(text("SELECT name, scopes, expires_at, revoked_at "
                                   "FROM api_tokens ORDER BY id")).all()
        hooks = conn.execute(text("SELECT name, kind, url, is_active FROM webhooks "
                                  "ORDER BY id")).all()
    engine.dispose()
    return users, tokens, hooks


def refused(response, body: str) -> bool:
    return response.status_code >= 400 or (
        "alert-danger" in body and "alert-success" not in body)


@pytest.fixture
def console(seeded):
    seeded.config.update(SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS=0,
                         SIGN_IN_FAILURES_PER_ADDRESS=0, SIGN_IN_FAILURES_PER_ACCOUNT=0)
    create_accounts(seeded)
    run_as_system(seeded, "access:createUser", {"email": FUZZ_USER, "role": "viewer",
                                                "password": PASSWORD})
    return Console(seeded)


def fuzz_on_sqlite(test):
    """The fuzz runs on SQLite (fast); tests/test_console_input.py covers both databases."""
    return pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)(test)


# -- list, details and other pages: query parameters ---------------------------------------

LIST_ARGS = st.fixed_dictionaries({}, optional={
    "page": NUMBERISH, "page_size": NUMBERISH, "sort": NUMBERISH, "desc": NUMBERISH,
    "search": TEXT,
    **{f"flt{i}_{key}": VALUE for i, key in enumerate(["0", "3", "9", "17", "28", "99", "²"])},
})


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), args=LIST_ARGS, extra=EXTRA)
def test_list_view_arguments(console, role, args, extra):
    console.send(role, "GET", "/admin/models/", query={**extra, **args})


DETAILS_ARGS = st.fixed_dictionaries({"id": ROW_ID}, optional={
    "duration": NUMBERISH, "quality": st.one_of(TEXT, st.sampled_from(["standard", "high"])),
    "cursor": st.one_of(TEXT, NUMBERISH), "url": TEXT,
})


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), args=DETAILS_ARGS,
       page=st.sampled_from(["details", "edit", "new"]))
def test_details_and_form_pages(console, role, args, page):
    console.send(role, "GET", f"/admin/models/{page}/", query=args)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), extra=EXTRA,
       page=st.sampled_from(["/admin/", "/admin/stats/", "/admin/users/", "/admin/tokens/",
                             "/admin/webhooks/", "/admin/alerts/",
                             "/admin/catalog_file/", "/admin/catalog_file/export",
                             "/admin/account/", "/auth/sign-in", "/admin/models/ajax/lookup/",
                             "/admin/models/export/csv/"]))
def test_other_pages(console, role, extra, page):
    console.send(role, "GET", page, query=extra)


# -- the model form ------------------------------------------------------------------------

VALID_MODEL = {
    "modelId": "fuzz/model-1", "name": "Fuzz Model", "description": "", "version": "1.0",
    "provider": "Fuzz", "category": "", "contentType": "prompt_to_video",
    "costPerSecond": "0.10", "supportedDurations": "5, 10", "fixedDuration": "",
    "maxDuration": "", "supportedQualities": "standard, high", "qualityMultipliers": "",
    "tags": "", "isActive": "y", "replicateModelId": "", "inputSchema": "",
    "modelParameters": "", "requirements": "", "reason": "",
}
FORM_VALUE = {
    "costPerSecond": NUMBERISH, "supportedDurations": st.one_of(NUMBERISH, TEXT),
    "fixedDuration": NUMBERISH, "maxDuration": NUMBERISH, "expectedRevision": NUMBERISH,
    "qualityMultipliers": JSONISH, "inputSchema": JSONISH, "modelParameters": JSONISH,
    "requirements": JSONISH,
}


@st.composite
def model_forms(draw) -> dict:
    """A valid form with a few fields made hostile (so that some examples are valid)."""
    form = dict(VALID_MODEL)
    names = draw(st.lists(st.sampled_from([*VALID_MODEL, "expectedRevision", "isPremium"]),
                          max_size=3, unique=True))
    for name in names:
        form[name] = draw(FORM_VALUE.get(name, VALUE))
    if draw(st.booleans()):
        form["modelId"] = f"fuzz/{draw(st.integers(0, 10**6))}"
    return form


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), form=model_forms())
def test_create_form(console, role, form):
    console.send(role, "POST", "/admin/models/new/", data=form, catalog=WRITERS)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), form=model_forms(), row=ROW_ID)
def test_edit_form(console, role, form, row):
    console.send(role, "POST", "/admin/models/edit/", query={"id": row}, data=form,
                 catalog=WRITERS)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), pk=ROW_ID,
       field=st.sampled_from(["name", "category", "provider", "cost_micros", "x"]), value=VALUE)
def test_inline_edit(console, role, pk, field, value):
    console.send(role, "POST", "/admin/models/ajax/update/",
                 data={"list_form_pk": pk, field: value}, catalog=WRITERS)


# -- row and bulk actions, revert ----------------------------------------------------------

VERBS = ["delete", "restore", "set-default", "lock", "unlock", "duplicate", "enable",
         "disable", "²", "x"]


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), verb=st.sampled_from(VERBS), row=ROW_ID,
       new_id=st.one_of(TEXT, st.just("fuzz/copy")))
def test_row_actions(console, role, verb, row, new_id):
    allowed = ("admin",) if verb in ("lock", "unlock") else WRITERS
    console.send(role, "POST", f"/admin/models/row-action/{verb}/",
                 data={"id": row, "newModelId": new_id}, catalog=allowed)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES),
       action=st.one_of(st.sampled_from(["enable", "disable", "delete", "restore"]), TEXT),
       rows=st.lists(ROW_ID, max_size=4))
def test_bulk_actions(console, role, action, rows):
    console.send(role, "POST", "/admin/models/action/",
                 data={"action": action, "rowid": rows}, catalog=WRITERS)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), row=ROW_ID, revision=NUMBERISH, reason=TEXT)
def test_revert_and_delete(console, role, row, revision, reason):
    console.send(role, "POST", "/admin/models/revert/",
                 data={"id": row, "revision": revision, "reason": reason},
                 catalog=WRITERS)
    console.send(role, "POST", "/admin/models/delete/", data={"id": row},
                 catalog=WRITERS)


# -- import ---------------------------------------------------------------------------------


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), step=st.sampled_from(["plan", "apply"]),
       upload=st.booleans(), data=st.data())
def test_import(console, role, step, upload, data):
    exported = copy.deepcopy(console.exported)  # what is drawn must not depend on the state
    how = data.draw(st.sampled_from(["hostile field", "plausible change", "any text"]))
    if how == "any text":
        text = data.draw(JSONISH)
    else:
        model = data.draw(st.sampled_from(exported["models"]))
        if how == "plausible change":
            field = data.draw(st.sampled_from(["name", "description", "inputSchema"]))
            model[field] = json.loads(_nested(data.draw(st.integers(1, 70)), "object")) \
                if field == "inputSchema" else data.draw(TEXT)
        else:
            field = data.draw(st.sampled_from(sorted(model)))
            raw = data.draw(st.one_of(JSONISH, NUMBERISH))
            try:
                model[field] = json.loads(raw)
            except (ValueError, RecursionError):
                model[field] = raw
        try:
            text = json.dumps(exported)
        except RecursionError:
            text = data.draw(DEEP_JSON)
    if data.draw(st.booleans()):
        text = text.replace("1", data.draw(st.sampled_from(UNICODE_DIGITS)), 1)
    form = {"reason": data.draw(TEXT)}
    if upload:
        form["file"] = (io.BytesIO(text.encode("utf-8", "surrogatepass")), "catalog.json")
    else:
        form["content"] = text
    console.send(role, "POST", f"/admin/catalog_file/{step}", data=form,
                 catalog=WRITERS if step == "apply" else ())


# -- users, tokens, account, sign-in -------------------------------------------------------

EMAIL = st.one_of(st.just(FUZZ_USER), st.emails().map(str), TEXT)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), step=st.sampled_from(["create", "update", "sign-out"]),
       email=EMAIL, user_role=st.one_of(st.sampled_from(ROLES), TEXT),
       active=st.one_of(st.sampled_from(["0", "1"]), VALUE),
       password=st.one_of(st.just("a long enough password"), TEXT))
def test_users(console, role, step, email, user_role, active, password):
    console.send(role, "POST", f"/admin/users/{step}", accounts=("admin",), data={
        "email": email, "role": user_role, "isActive": active, "password": password})


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), name=st.one_of(TEXT, st.just("fuzz-token")),
       scopes=st.lists(st.one_of(st.sampled_from(["catalog:write", "stats:write", "admin"]),
                                 TEXT), max_size=4),
       days=NUMBERISH, confirmed=st.one_of(st.just("1"), VALUE))
def test_tokens(console, role, name, scopes, days, confirmed):
    console.send(role, "POST", "/admin/tokens/create", accounts=("admin",),
                 data={"name": name, "scopes": scopes, "expiresInDays": days})
    console.send(role, "POST", "/admin/tokens/revoke", accounts=("admin",),
                 data={"name": name, "confirmed": confirmed})


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES),
       step=st.sampled_from(["create", "update", "retry", "delete"]),
       name=st.one_of(TEXT, st.just("fuzz-hook")), kind=st.one_of(st.sampled_from(KINDS), TEXT),
       url=st.one_of(TEXT, st.just("https://example.com/hook"),
                     st.builds("https://{}@example.com:{}/".format, TEXT, NUMBERISH)),
       active=st.one_of(st.sampled_from(["0", "1"]), VALUE), with_url=st.booleans(),
       confirmed=st.one_of(st.just("1"), VALUE))
def test_webhooks(console, role, step, name, kind, url, active, with_url, confirmed):
    data = {"name": name, "kind": kind, "isActive": active, "confirmed": confirmed}
    if with_url or step == "create":
        data["url"] = url
    console.send(role, "POST", f"/admin/webhooks/{step}", accounts=("admin",), data=data)


@fuzz_on_sqlite
@FUZZ
@given(role=st.sampled_from(ROLES), current=TEXT, new=st.one_of(TEXT, VALUE),
       same=st.booleans())
def test_password_change(console, role, current, new, same):
    console.send(role, "POST", "/admin/account/password", accounts=ROLES, data={
        "currentPassword": current, "newPassword": new,
        "confirmPassword": new if same else current})


@fuzz_on_sqlite
@FUZZ
@given(email=st.one_of(st.sampled_from(list(ACCOUNTS.values())), EMAIL), password=TEXT,
       next_url=st.one_of(TEXT, st.sampled_from(["/admin/", "//evil.example", "https://x.y/"])),
       extra=EXTRA)
def test_sign_in(console, email, password, next_url, extra):
    client = console.app.test_client()
    token = csrf_token(client.get("/auth/sign-in").get_data(as_text=True))
    console.clients["anonymous"] = client
    console.send("anonymous", "POST", "/auth/sign-in", query=extra, data={
        "csrf_token": token, "email": email, "password": password, "next": next_url})
