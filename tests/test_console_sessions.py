"""Console sessions end on the server: sign-out, a new password, an admin's "sign out", and
disabling an account end every session of that user, on every worker."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import run_as_system
from tests.console import ACCOUNTS, PASSWORD, create_accounts, csrf_token, sign_in

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def console(seeded):
    create_accounts(seeded)
    return seeded


def copy_of(app, client):
    """Another browser holding the same session cookie (a stolen or left-behind copy)."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


def signed_in(client) -> bool:
    return client.get("/admin/models/").status_code == 200


def test_a_copied_cookie_dies_at_sign_out(console, client):
    token = sign_in(client, "editor")
    stolen = copy_of(console, client)
    assert signed_in(stolen)
    assert client.post("/auth/sign-out", data={"csrf_token": token}).status_code == 302
    assert not signed_in(stolen)
    assert not signed_in(client)


def test_sign_out_ends_the_users_sessions_in_every_browser_only(console, client):
    token = sign_in(client, "editor")
    laptop = console.test_client()
    sign_in(laptop, "editor")
    colleague = console.test_client()
    sign_in(colleague, "viewer")
    client.post("/auth/sign-out", data={"csrf_token": token})
    assert not signed_in(laptop)
    assert signed_in(colleague)
    sign_in(laptop, "editor")  # a fresh sign-in works again
    assert signed_in(laptop)


def test_admin_signs_a_user_out_everywhere(console, client):
    editor = console.test_client()
    sign_in(editor, "editor")
    stolen = copy_of(console, editor)
    token = sign_in(client, "admin")
    page = client.get("/admin/users/").get_data(as_text=True)
    assert "Sign out everywhere" in page
    response = client.post("/admin/users/sign-out", data={
        "csrf_token": token, "email": ACCOUNTS["editor"]}, follow_redirects=True)
    assert f"Signed {ACCOUNTS['editor']} out everywhere" in response.get_data(as_text=True)
    assert not signed_in(editor) and not signed_in(stolen)
    assert signed_in(client)


def test_only_admins_sign_others_out(console, client):
    victim = console.test_client()
    sign_in(victim, "viewer")
    token = sign_in(client, "editor")
    response = client.post("/admin/users/sign-out", data={
        "csrf_token": token, "email": ACCOUNTS["viewer"]})
    assert response.status_code == 403
    assert signed_in(victim)


def test_signing_out_an_unknown_user_is_a_message(console, client):
    token = sign_in(client, "admin")
    response = client.post("/admin/users/sign-out", data={
        "csrf_token": token, "email": "nobody@example.com"}, follow_redirects=True)
    assert response.status_code == 200
    assert "No user nobody@example.com" in response.get_data(as_text=True)


def change_password(client, token, current, new, confirm=None):
    return client.post("/admin/account/password", data={
        "csrf_token": token, "currentPassword": current, "newPassword": new,
        "confirmPassword": new if confirm is None else confirm}, follow_redirects=True)


def test_changing_ones_password_ends_every_session(console, client):
    token = sign_in(client, "viewer")
    stolen = copy_of(console, client)
    assert client.get("/admin/account/").status_code == 200
    response = change_password(client, token, PASSWORD, NEW_PASSWORD)
    assert "Password changed" in response.get_data(as_text=True)
    assert not signed_in(client) and not signed_in(stolen)
    fresh = console.test_client()
    page = fresh.get("/auth/sign-in").get_data(as_text=True)
    old = fresh.post("/auth/sign-in", data={"csrf_token": csrf_token(page),
                                             "email": ACCOUNTS["viewer"], "password": PASSWORD})
    assert old.status_code == 401
    new = fresh.post("/auth/sign-in", data={"csrf_token": csrf_token(page),
                                             "email": ACCOUNTS["viewer"],
                                             "password": NEW_PASSWORD})
    assert new.status_code == 302


@pytest.mark.parametrize("current, new, confirm, message", [
    ("not my password at all", NEW_PASSWORD, None, "The current password is wrong"),
    (PASSWORD, "short", None, "at least 12"),
    (PASSWORD, NEW_PASSWORD, "something else entirely", "differ"),
])
def test_a_refused_password_change_changes_nothing(console, client, current, new, confirm,
                                                   message):
    token = sign_in(client, "editor")
    response = change_password(client, token, current, new, confirm)
    assert message in response.get_data(as_text=True)
    assert signed_in(client)
    other = console.test_client()
    sign_in(other, "editor")  # the old password still works


def test_wrong_current_passwords_are_throttled_like_sign_ins(console, client):
    console.config["SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS"] = 2
    token = sign_in(client, "editor")
    for _ in range(2):
        change_password(client, token, "not my password at all", NEW_PASSWORD)
    refused = client.post("/admin/account/password", data={
        "csrf_token": token, "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD,
        "confirmPassword": NEW_PASSWORD})
    assert refused.status_code == 429
    assert signed_in(client)  # and the password is unchanged:
    elsewhere = console.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    sign_in(elsewhere, "editor")


def test_a_refusal_before_any_password_is_compared_is_not_a_failure(console, client):
    console.config["SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS"] = 1
    token = sign_in(client, "editor")
    for _ in range(3):
        assert "at least 12" in change_password(client, token, PASSWORD, "short").get_data(
            as_text=True)
    response = change_password(client, token, PASSWORD, NEW_PASSWORD)
    assert "Password changed" in response.get_data(as_text=True)


def test_operators_set_passwords_and_sign_users_out(console, client, runner):
    sign_in(client, "editor")
    result = runner.invoke(args=["users", "sign-out", ACCOUNTS["editor"]])
    assert result.exit_code == 0, result.output
    assert not signed_in(client)
    sign_in(client, "editor")
    result = runner.invoke(args=["users", "set-password", ACCOUNTS["editor"]],
                           input=f"{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert not signed_in(client)
    unknown = runner.invoke(args=["users", "sign-out", "nobody@example.com"])
    assert unknown.exit_code != 0 and "No user" in unknown.output


def test_a_disabled_account_stays_signed_out_when_enabled_again(console, client):
    sign_in(client, "editor")
    stolen = copy_of(console, client)
    run_as_system(console, "access:updateUser", {"email": ACCOUNTS["editor"],
                                                 "isActive": False})
    run_as_system(console, "access:updateUser", {"email": ACCOUNTS["editor"],
                                                 "isActive": True})
    assert not signed_in(stolen)


def test_sessions_end_on_every_worker(seeded, gunicorn):
    """Two gunicorn workers: the state is in the database, not in a worker's memory."""
    create_accounts(seeded)
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2)
    browser = requests.Session()
    page = browser.get(f"{server.url}/auth/sign-in", timeout=10).text
    signed = browser.post(f"{server.url}/auth/sign-in", timeout=10, allow_redirects=False,
                          data={"csrf_token": csrf_token(page), "email": ACCOUNTS["admin"],
                                "password": PASSWORD})
    assert signed.status_code == 302
    cookie = browser.cookies["session"]

    def with_copy() -> list[int]:
        # a new connection each time, so that the requests are spread over the workers
        return [requests.get(f"{server.url}/admin/models/", cookies={"session": cookie},
                             allow_redirects=False, timeout=10).status_code
                for _ in range(12)]

    assert with_copy() == [200] * 12
    token = csrf_token(browser.get(f"{server.url}/admin/", timeout=10).text)
    assert browser.post(f"{server.url}/auth/sign-out", data={"csrf_token": token},
                        allow_redirects=False, timeout=10).status_code == 302
    assert with_copy() == [302] * 12


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0002_keeps_accounts_both_ways(kind, request, tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from db.revision import alembic_config
    from tests.conftest import fresh_database

    url = fresh_database(kind, request, tmp_path)
    config = alembic_config(url)
    command.downgrade(config, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email, role, is_active, created_at) "
                          "VALUES ('old@example.com', 'viewer', true, 0)"))
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email, session_version FROM users")).all() == [
            ("old@example.com", 0)]
    command.downgrade(config, "0001")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT email FROM users")).all() == [("old@example.com",)]
    engine.dispose()


@pytest.mark.parametrize("path", [
    "/admin/models/", "/admin/static/bootstrap/bootstrap4/css/bootstrap.min.css", "/favicon.ico"])
def test_a_request_from_before_a_message_does_not_take_it_away(console, client, path):
    """A request the browser sent before a message was flashed (a page's stylesheet, its
    favicon, another tab) answers without a session cookie: arriving after the message, it
    would put back the session without it, and the next page would never show it."""
    sign_in(client, "viewer")
    before = copy_of(console, client)  # the cookie as it was when that request left
    assert client.get("/admin/models/edit/?id=2").status_code == 302  # flashes why not
    answer = before.get(path)
    assert answer.status_code in (200, 204), answer.status_code
    assert "session=" not in " ".join(answer.headers.getlist("Set-Cookie"))
    page = client.get("/admin/models/").get_data(as_text=True)
    assert "Editing a model needs the editor or admin role" in page


def test_a_session_ends_8_hours_after_sign_in_however_busy(console, client):
    """The cookie is signed again whenever the session changes (every flashed message), so
    its own age cannot end a busy session: the sign-in's time, kept in it, does."""
    import time

    sign_in(client, "editor")
    assert signed_in(client)
    with client.session_transaction() as session:
        session["since"] -= 8 * 3600 - 60  # a minute left
    assert signed_in(client)
    with client.session_transaction() as session:
        session["since"] -= 120  # signed in 8 hours and a minute ago
    assert not signed_in(client)
    with client.session_transaction() as session:
        assert "user" not in session  # ended, not only refused
    sign_in(client, "editor")
    with client.session_transaction() as session:
        assert abs(session["since"] - time.time()) < 3600  # a fresh sign-in, a fresh start


def test_signing_out_from_a_session_past_its_lifetime_still_signs_out_everywhere(console,
                                                                                client):
    laptop = console.test_client()
    sign_in(laptop, "editor")
    token = sign_in(client, "editor")
    with client.session_transaction() as session:
        session["since"] -= 9 * 3600
    client.post("/auth/sign-out", data={"csrf_token": token})
    assert not signed_in(laptop)


def test_a_page_left_open_for_hours_still_signs_out(console, client, monkeypatch):
    """A form's CSRF token lasts as long as its session: sign-out from a page opened hours ago
    ends the session (with Flask-WTF's hour, it was refused and the session stayed on)."""
    import time

    token = sign_in(client, "editor")
    later = time.time() + 7 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert signed_in(client)
    assert client.post("/auth/sign-out", data={"csrf_token": token}).status_code == 302
    assert not signed_in(client)
