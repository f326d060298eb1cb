"""Helpers for console tests: accounts, a running console, and a browser."""

from __future__ import annotations

import re

from tests.conftest import run_as_system

PASSWORD = "correct horse battery staple"
ACCOUNTS = {"admin": "admin@example.com", "editor": "editor@example.com",
            "viewer": "viewer@example.com"}


def create_accounts(app) -> None:
    for role, email in ACCOUNTS.items():
        run_as_system(app, "access:createUser", {"email": email, "role": role,
                                                 "password": PASSWORD})


def csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client, role: str) -> str:
    """Sign a Flask test client in; returns a CSRF token for its session."""
    page = client.get("/auth/sign-in").get_data(as_text=True)
    response = client.post("/auth/sign-in", data={
        "csrf_token": csrf_token(page), "email": ACCOUNTS[role], "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client.get("/admin/").get_data(as_text=True))
