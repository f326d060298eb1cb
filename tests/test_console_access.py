"""Console access: sign-in, roles, CSRF, and headers, with Flask's test client."""

from __future__ import annotations

import pytest

from tests.conftest import catalog_fingerprint
from tests.console import PASSWORD, create_accounts, csrf_token, sign_in

PAGES = ["/admin/", "/admin/models/", "/admin/models/details/?id=1",
         "/admin/models/edit/?id=1", "/admin/models/new/", "/admin/stats/", "/admin/users/",
         "/admin/tokens/", "/admin/webhooks/", "/admin/catalog_file/",
         "/admin/catalog_file/export"]
POSTS = ["/admin/models/new/", "/admin/models/edit/?id=1", "/admin/models/delete/",
         "/admin/models/action/", "/admin/models/row-action/set-default/",
         "/admin/models/row-action/lock/", "/admin/models/revert/", "/admin/users/create",
         "/admin/users/update", "/admin/users/sign-out", "/admin/tokens/create",
         "/admin/tokens/revoke", "/admin/webhooks/create", "/admin/webhooks/update",
         "/admin/webhooks/retry", "/admin/webhooks/delete", "/admin/catalog_file/plan",
         "/admin/catalog_file/apply",
         "/admin/models/ajax/update/", "/admin/models/inline/", "/admin/models/bulk/enable/"]


@pytest.fixture
def console(seeded):
    create_accounts(seeded)
    return seeded


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_is_sent_to_sign_in(console, client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/sign-in?next=")


def test_anonymous_json_callers_get_401(console, client):
    response = client.get("/admin/models/", headers={"Accept": "application/json"})
    assert response.status_code == 401 and response.get_json()["code"] == "Unauthenticated"


@pytest.mark.parametrize("url", POSTS)
def test_anonymous_posts_change_nothing(console, client, url):
    before = catalog_fingerprint(console)
    response = client.post(url, data={"id": "1", "name": "x"})
    assert response.status_code in (302, 400, 401)
    assert catalog_fingerprint(console) == before


@pytest.mark.parametrize("url", POSTS)
def test_posts_without_csrf_token_are_refused(console, client, url):
    sign_in(client, "admin")
    before = catalog_fingerprint(console)
    response = client.post(url, data={"id": "1", "name": "x", "email": "a@b.co"})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert catalog_fingerprint(console) == before


def test_viewer_reads_but_cannot_change(console, client):
    token = sign_in(client, "viewer")
    for url in ["/admin/", "/admin/models/", "/admin/models/details/?id=1", "/admin/stats/",
                "/admin/catalog_file/", "/admin/catalog_file/export"]:
        assert client.get(url).status_code == 200, url
    for url in ["/admin/users/", "/admin/tokens/", "/admin/webhooks/"]:
        assert client.get(url).status_code == 403, url
    listing = client.get("/admin/models/").get_data(as_text=True)
    assert 'data-action="edit"' not in listing and "set-default" not in listing
    before = catalog_fingerprint(console)
    for url in POSTS:
        response = client.post(url, data={"csrf_token": token, "id": "1"})
        assert response.status_code == 403, url
    assert catalog_fingerprint(console) == before


def test_editor_changes_models_but_cannot_lock(console, client):
    token = sign_in(client, "editor")
    response = client.post("/admin/models/row-action/set-default/",
                           data={"csrf_token": token, "id": "1"})
    assert response.status_code == 302
    listing = client.get("/admin/models/").get_data(as_text=True)
    assert 'data-action="lock"' not in listing
    before = catalog_fingerprint(console)
    client.post("/admin/models/row-action/lock/", data={"csrf_token": token, "id": "2"},
                follow_redirects=True)
    assert catalog_fingerprint(console) == before
    assert client.get("/admin/users/").status_code == 403
    assert client.get("/admin/webhooks/").status_code == 403


def test_wrong_password_gets_a_generic_message(console, client):
    page = client.get("/auth/sign-in").get_data(as_text=True)
    for email in ["admin@example.com", "nobody@example.com"]:
        response = client.post("/auth/sign-in", data={
            "csrf_token": csrf_token(page), "email": email, "password": "not the password"})
        assert response.status_code == 401
        assert "Wrong email or password." in response.get_data(as_text=True)


def test_sign_in_rotates_the_session_and_refuses_open_redirects(console, client):
    page = client.get("/auth/sign-in").get_data(as_text=True)
    before = client.get_cookie("session").value
    response = client.post("/auth/sign-in", data={
        "csrf_token": csrf_token(page), "email": "admin@example.com", "password": PASSWORD,
        "next": "https://evil.example/steal"})
    assert response.headers["Location"] == "/admin/"
    assert client.get_cookie("session").value != before
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_out_ends_the_session(console, client):
    token = sign_in(client, "admin")
    client.post("/auth/sign-out", data={"csrf_token": token})
    assert client.get("/admin/models/").status_code == 302


def test_disabled_account_is_signed_out_on_its_next_request(console, client):
    from tests.conftest import run_as_system

    sign_in(client, "editor")
    run_as_system(console, "access:updateUser", {"email": "editor@example.com",
                                                 "isActive": False})
    assert client.get("/admin/models/").status_code == 302


def test_console_pages_carry_security_headers(console, client):
    sign_in(client, "admin")
    response = client.get("/admin/models/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp.split(
        "script-src")[1].split(";")[0]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_tampered_edit_form_gets_a_message_not_a_crash(console, client):
    import json

    from tests.conftest import run_as_system

    token = sign_in(client, "admin")
    before = catalog_fingerprint(console)
    model = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    response = client.post("/admin/models/edit/?id=2", data={
        "csrf_token": token, "modelId": "luma/ray-2-720p", "name": "X", "provider": "Luma",
        "costPerSecond": "0.18", "supportedDurations": "5, 9",
        "qualityMultipliers": json.dumps(model["qualityMultipliers"]),  # the price unchanged
        "supportedQualities": "standard", "expectedRevision": "not-a-number"})
    assert response.status_code == 200
    # the field by its label, not its identifier (expectedRevision)
    assert "Revision must be a number" in response.get_data(as_text=True)
    assert catalog_fingerprint(console) == before


@pytest.mark.parametrize("bad_id", ["abc", "99999999999", "-1", "1%00"])
def test_odd_ids_find_nothing(console, client, bad_id):
    token = sign_in(client, "admin")
    # found nothing (a redirect to the list), or turned away at the door (NUL)
    for url in (f"/admin/models/details/?id={bad_id}", f"/admin/models/edit/?id={bad_id}"):
        assert client.get(url).status_code in (302, 400), url
    response = client.post("/admin/models/row-action/lock/",
                           data={"csrf_token": token, "id": bad_id})
    assert response.status_code in (302, 400)


def test_sign_in_with_unstorable_text_is_refused_cleanly(console, client):
    page = client.get("/auth/sign-in").get_data(as_text=True)
    response = client.post("/auth/sign-in", data={
        "csrf_token": csrf_token(page), "email": "admin@example.com\x00", "password": "x\x00"})
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)


def test_inline_edit_runs_the_mutation_and_refusals_are_400(console, client):
    from tests.conftest import run_as_system

    token = sign_in(client, "admin")
    response = client.post("/admin/models/ajax/update/", data={
        "csrf_token": token, "list_form_pk": "2", "category": "Cheap"})
    assert response.status_code == 200, response.get_data(as_text=True)
    model = run_as_system(console, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert model["category"] == "Cheap" and model["revision"] == 2
    run_as_system(console, "models:lockModel", {"modelId": "luma/ray-2-720p"})
    before = catalog_fingerprint(console)
    refused = client.post("/admin/models/ajax/update/", data={
        "csrf_token": token, "list_form_pk": "2", "category": "Nope"})
    assert refused.status_code == 400 and "locked" in refused.get_data(as_text=True)
    assert catalog_fingerprint(console) == before


ODD_QUERIES = ["models/?search=a%00b", "models/?flt0_9=%00", "models/?page=-1",
               "models/?page=99999999999999999999", "models/?page_size=100000",
               "models/?sort=999", "models/details/?id=1&cursor=zz",
               "models/details/?id=1&duration=99999999999999999&quality=high",
               "stats/?x=%ED%A0%80"]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_query_strings_never_break_a_page(console, client, query):
    sign_in(client, "admin")
    response = client.get(f"/admin/{query}")
    assert response.status_code in (200, 400), response.status_code


# -- the console goes through the same states, ids and authorization as the functions ----------


def _file_locking(app, model_id: str) -> str:
    import json

    from tests.conftest import run_as_system

    catalog = run_as_system(app, "catalog:exportCatalog")
    next(m for m in catalog["models"] if m["modelId"] == model_id)["isLocked"] = True
    return json.dumps(catalog)


def test_an_editor_cannot_lock_through_the_import_page(console, client):
    from tests.conftest import run_as_system

    token = sign_in(client, "editor")
    content = _file_locking(console, "luma/ray-2-720p")
    before = catalog_fingerprint(console)
    for step in ("plan", "apply"):
        response = client.post(f"/admin/catalog_file/{step}", data={
            "csrf_token": token, "content": content, "reason": "x"})
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "lock on luma/ray-2-720p needs the admin role" in page, step
    assert catalog_fingerprint(console) == before
    client.post("/auth/sign-out", data={"csrf_token": token})
    token = sign_in(client, "admin")
    client.post("/admin/catalog_file/apply", data={
        "csrf_token": token, "content": content, "reason": "x"})
    assert run_as_system(console, "models:getModelById",
                         {"modelId": "luma/ray-2-720p"})["isLocked"]


def test_the_edit_form_cannot_make_a_deleted_model_active(console, client):
    from tests.conftest import run_as_system

    run_as_system(console, "models:deleteModel", {"modelId": "luma/ray-2-720p"})
    token = sign_in(client, "admin")
    before = catalog_fingerprint(console)
    response = client.post("/admin/models/edit/?id=2", data={
        "csrf_token": token, "modelId": "luma/ray-2-720p", "name": "Luma Ray-2-720p",
        "provider": "Luma", "costPerSecond": "0.18", "supportedDurations": "5, 9",
        "supportedQualities": "standard, high, ultra", "isActive": "y",
        "expectedRevision": "2"})
    assert response.status_code == 200
    assert "is deleted; restore it first" in response.get_data(as_text=True)
    assert catalog_fingerprint(console) == before


def test_console_ids_follow_the_id_rule(console, client):
    from tests.conftest import run_as_system

    token = sign_in(client, "admin")
    copied = client.post("/admin/models/row-action/duplicate/", data={
        "csrf_token": token, "id": "2", "newModelId": "Acme/Ray-Copy"}, follow_redirects=True)
    assert "duplicated as acme/ray-copy" in copied.get_data(as_text=True)
    assert run_as_system(console, "models:getModelById", {"modelId": "acme/ray-copy"})
    taken = client.post("/admin/models/row-action/duplicate/", data={
        "csrf_token": token, "id": "2", "newModelId": "Google/Veo-3"}, follow_redirects=True)
    assert "already exists" in taken.get_data(as_text=True)
    assert 'id="duplicate-form"' in taken.get_data(as_text=True)  # back on the model, to retry
    created = client.post("/admin/models/new/", data={
        "csrf_token": token, "modelId": "luma/ray-2-720p.", "name": "X", "provider": "X",
        "costPerSecond": "0.1", "supportedDurations": "5", "supportedQualities": "standard"})
    assert created.status_code == 200 and "no &#39;..&#39; and no &#39;.&#39; at either end" \
        in created.get_data(as_text=True)
