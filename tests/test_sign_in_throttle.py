"""Sign-in throttles: atomic (a slot is reserved before the password is checked), kept in the
database (every worker and host), and no lockout tool: failures count per (account, address),
per address, and per account only against a high backstop."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.console import ACCOUNTS, PASSWORD, create_accounts, csrf_token

WRONG = "not the password at all"


@pytest.fixture
def console(seeded):
    create_accounts(seeded)
    return seeded


def browser(app, address: str = "198.51.100.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def attempt(client, role_or_email: str, password: str) -> int:
    email = ACCOUNTS.get(role_or_email, role_or_email)
    page = client.get("/auth/sign-in").get_data(as_text=True)
    response = client.post("/auth/sign-in", data={"csrf_token": csrf_token(page),
                                                  "email": email, "password": password})
    if response.status_code == 429:
        assert "Too many failed sign-ins" in response.get_data(as_text=True)
        assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60
    return response.status_code


def test_one_address_cannot_lock_an_account_out_of_the_others(console):
    attacker, owner = browser(console, "203.0.113.9"), browser(console, "198.51.100.1")
    assert [attempt(attacker, "admin", WRONG) for _ in range(6)] == [401] * 5 + [429]
    assert attempt(attacker, "admin", PASSWORD) == 429  # that pair is throttled
    assert attempt(attacker, "viewer", PASSWORD) == 302  # other accounts from there are not
    assert attempt(owner, "admin", PASSWORD) == 302  # nor the owner, from elsewhere


def test_refused_attempts_count_against_nothing(console):
    """Hammering a throttled pair does not fill the address's or the account's limits."""
    console.config.update(SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS=2,
                          SIGN_IN_FAILURES_PER_ADDRESS=5, SIGN_IN_FAILURES_PER_ACCOUNT=5)
    attacker = browser(console, "203.0.113.9")
    statuses = [attempt(attacker, "admin", WRONG) for _ in range(12)]
    assert statuses == [401] * 2 + [429] * 10
    assert attempt(attacker, "editor", PASSWORD) == 302  # address: 2 of 5 failures
    assert attempt(browser(console), "admin", PASSWORD) == 302  # account: 2 of 5


def test_each_address_is_throttled_whatever_the_accounts(console):
    console.config["SIGN_IN_FAILURES_PER_ADDRESS"] = 3
    sprayer = browser(console, "203.0.113.9")
    for name in ("a", "b", "c"):
        assert attempt(sprayer, f"{name}@example.com", WRONG) == 401
    assert attempt(sprayer, "admin", PASSWORD) == 429
    assert attempt(browser(console), "admin", PASSWORD) == 302


def test_many_addresses_reach_the_accounts_backstop(console):
    console.config["SIGN_IN_FAILURES_PER_ACCOUNT"] = 4
    for host in range(2):
        for _ in range(2):
            assert attempt(browser(console, f"203.0.113.{host}"), "admin", WRONG) == 401
    assert attempt(browser(console), "admin", PASSWORD) == 429
    assert attempt(browser(console), "editor", PASSWORD) == 302


def test_a_success_is_not_a_failure_and_resets_its_pair(console):
    console.config["SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS"] = 2
    owner = browser(console)
    assert [attempt(owner, "admin", p) for p in (WRONG, PASSWORD, WRONG, PASSWORD)] == [
        401, 302, 401, 302]


def test_a_limit_of_zero_turns_it_off(console):
    console.config.update(SIGN_IN_FAILURES_PER_ACCOUNT_ADDRESS=0,
                          SIGN_IN_FAILURES_PER_ADDRESS=0, SIGN_IN_FAILURES_PER_ACCOUNT=0)
    owner = browser(console)
    assert [attempt(owner, "admin", WRONG) for _ in range(8)] == [401] * 8
    assert attempt(owner, "admin", PASSWORD) == 302


def test_concurrent_guesses_get_exactly_the_limit(seeded, gunicorn):
    """30 wrong passwords at once, over two workers: exactly 5 are checked. And the owner,
    from another address, still signs in."""
    create_accounts(seeded)
    server = gunicorn(seeded.config["DATABASE_URL"], workers=2, BEHIND_PROXY="1")
    url = f"{server.url}/auth/sign-in"

    def ready(address: str) -> tuple[requests.Session, dict]:
        session = requests.Session()
        session.headers["X-Forwarded-For"] = address
        token = csrf_token(session.get(url, timeout=30).text)
        return session, {"csrf_token": token, "email": ACCOUNTS["admin"]}

    guessers = [ready("203.0.113.9") for _ in range(30)]
    start = threading.Barrier(len(guessers))
    statuses: list[int] = []

    def guess(session: requests.Session, form: dict) -> None:
        start.wait()
        response = session.post(url, data={**form, "password": WRONG},
                                allow_redirects=False, timeout=60)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=guesser) for guesser in guessers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * 5 + [429] * 25

    session, form = ready("203.0.113.9")
    assert session.post(url, data={**form, "password": PASSWORD}, allow_redirects=False,
                        timeout=30).status_code == 429
    session, form = ready("198.51.100.1")
    assert session.post(url, data={**form, "password": PASSWORD}, allow_redirects=False,
                        timeout=30).status_code == 302


def test_a_window_opens_at_the_first_failure_and_ends_a_period_later(console):
    """No wall-clock boundaries: the count is refused until 15 minutes after the first
    failure (time is moved by moving the window's start back, not by waiting)."""
    from sqlalchemy import create_engine, text

    attacker = browser(console, "203.0.113.9")
    assert [attempt(attacker, "admin", WRONG) for _ in range(6)] == [401] * 5 + [429]
    engine = create_engine(console.config["DATABASE_URL"])

    def move_back(ms: int) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE sign_in_throttle SET started = started - :ms"),
                         {"ms": ms})

    move_back(15 * 60 * 1000 - 60_000)  # 14 minutes on: still refused
    assert attempt(attacker, "admin", PASSWORD) == 429
    move_back(60_000)  # 15 minutes on: a new window
    assert [attempt(attacker, "admin", WRONG) for _ in range(6)] == [401] * 5 + [429]
    engine.dispose()
