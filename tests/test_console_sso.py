"""Single sign-on against a real OpenID Connect provider (oidc_provider_mock, on a thread): only
an email the provider verified names an account, and odd claims are refused with a message."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import requests
from oidc_provider_mock import User, run_server_in_thread

from tests.conftest import fresh_database, run_as_system
from tests.console import create_accounts
from wsgi import create_app

SUBJECT = "someone"


@pytest.fixture
def sso_app(request, tmp_path, monkeypatch):
    """The console with single sign-on at a provider whose one user has the given claims."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    providers = []

    def make(claims: dict, **config):
        provider = run_server_in_thread(user_claims=[User(sub=SUBJECT, claims=claims)])
        server = provider.__enter__()
        providers.append(provider)
        app = create_app({"TESTING": True, "SECRET_KEY": "x",
                          "DATABASE_URL": fresh_database("sqlite", request, tmp_path),
                          "OIDC_ISSUER": f"http://localhost:{server.server_port}",
                          "OIDC_CLIENT_ID": "catalog", "OIDC_CLIENT_SECRET": "secret",
                          # cheap, as in the `app` fixture
                          "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", **config})
        create_accounts(app)
        return app

    yield make
    for provider in providers:
        provider.__exit__(None, None, None)


def through_provider(client):
    """Single sign-on as the provider's user, as a browser does it: the console's answer."""
    to_provider = client.get("/auth/sso")
    assert to_provider.status_code == 302
    back = requests.post(to_provider.location, data={"sub": SUBJECT}, allow_redirects=False,
                         timeout=10)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def refused_with(client, answer) -> str:
    """The message of a refused sign-in (sent back to the sign-in page)."""
    assert answer.status_code == 302 and urlsplit(answer.location).path == "/auth/sign-in"
    return client.get(answer.location).get_data(as_text=True)


def signed_in_as(client) -> str | None:
    """The role the client is signed in with, as the console's header shows it; None."""
    page = client.get("/admin/")
    if page.status_code != 200:
        return None
    found = re.search(r'id="signed-in-as"[^>]*>[^<]*· (\w+)', page.get_data(as_text=True))
    return found.group(1) if found else None


def test_a_verified_email_signs_in_to_its_account(sso_app):
    client = sso_app({"email": "Admin@Example.com", "email_verified": True}).test_client()
    answer = through_provider(client)
    assert answer.status_code == 302 and urlsplit(answer.location).path == "/admin/"
    assert signed_in_as(client) == "admin"


@pytest.mark.parametrize("claims", [
    {"email": "admin@example.com"},  # not said to be verified: anyone may have typed it
    {"email": "admin@example.com", "email_verified": False},
    {"email": "admin@example.com", "email_verified": "true"},
    {"email": ["admin@example.com"], "email_verified": True},
    {"email": "", "email_verified": True},
    {"email_verified": True},
])
def test_an_email_the_provider_did_not_verify_signs_in_nobody(sso_app, claims):
    client = sso_app(claims).test_client()
    page = refused_with(client, through_provider(client))
    assert "Single sign-on did not give a verified email." in page
    assert signed_in_as(client) is None


def test_a_disabled_account_in_the_provisioned_domain_is_refused_not_made_again(sso_app):
    app = sso_app({"email": "Editor@example.com", "email_verified": True},
                  OIDC_ALLOWED_DOMAIN="example.com", OIDC_DEFAULT_ROLE="viewer")
    run_as_system(app, "access:updateUser", {"email": "editor@example.com", "role": "editor",
                                             "isActive": False})
    client = app.test_client()
    page = refused_with(client, through_provider(client))
    assert "editor@example.com has no active account here" in page
    assert signed_in_as(client) is None
    users = {u["email"]: u for u in run_as_system(app, "access:listUsers")}
    assert (users["editor@example.com"]["role"], users["editor@example.com"]["isActive"]) == (
        "editor", False)


def test_a_new_verified_email_in_the_provisioned_domain_gets_the_default_role(sso_app):
    app = sso_app({"email": "new@example.com", "email_verified": True},
                  OIDC_ALLOWED_DOMAIN="example.com", OIDC_DEFAULT_ROLE="viewer")
    client = app.test_client()
    assert urlsplit(through_provider(client).location).path == "/admin/"
    users = {u["email"]: u for u in run_as_system(app, "access:listUsers")}
    assert users["new@example.com"]["role"] == "viewer"


@pytest.mark.parametrize("claims,signed_in", [
    ({"email": "admin@example.com"}, "admin"),  # Entra ID's way: the claim is never sent
    ({"email": "admin@example.com", "email_verified": False}, None),  # said: not verified
])
def test_a_provider_that_never_says_is_trusted_only_when_configured_to_be(sso_app, claims,
                                                                           signed_in):
    client = sso_app(claims, OIDC_TRUST_UNVERIFIED_EMAIL="1").test_client()
    through_provider(client)
    assert signed_in_as(client) == signed_in
