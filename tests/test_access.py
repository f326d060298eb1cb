"""Who may call what: tokens, scopes, revocation and expiry."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import Api, catalog_fingerprint, run_as_system
from tests.test_catalog import RAY

SET_DEFAULT = ("models:setDefaultModel", {"modelId": RAY})


def test_queries_are_public(seeded, client):
    assert Api(client).value("query", "models:getActiveModels")


def test_mutations_need_a_token(seeded, client):
    before = catalog_fingerprint(seeded)
    response = Api(client).post("mutation", *SET_DEFAULT)
    assert response.status_code == 401 and response.get_json()["code"] == "Unauthenticated"
    response = Api(client, "mc_bogus_token").post("mutation", *SET_DEFAULT)
    assert response.status_code == 401 and response.get_json()["code"] == "InvalidToken"
    response = client.post("/api/mutation", json={"path": SET_DEFAULT[0], "args": SET_DEFAULT[1]},
                           headers={"Authorization": "Basic YTpi"})
    assert response.status_code == 401
    assert catalog_fingerprint(seeded) == before


def test_scopes_are_enforced(seeded, client, make_token):
    stats_only = Api(client, make_token("stats:write"))
    response = stats_only.post("mutation", *SET_DEFAULT)
    assert response.status_code == 403 and "catalog:write" in response.get_json()["message"]
    assert stats_only.value("mutation", "models:updateModelStats",
                            {"modelId": RAY, "generationTime": 1, "success": True})
    catalog = Api(client, make_token("catalog:write"))
    response = catalog.post("mutation", "models:updateModelStats",
                            {"modelId": RAY, "generationTime": 1, "success": True})
    assert response.status_code == 403
    assert catalog.value("mutation", *SET_DEFAULT)["isDefault"]


def test_revoked_token_is_refused_on_the_next_request(seeded, client, make_token):
    api = Api(client, make_token("catalog:write", name="ci"))
    assert api.post("mutation", *SET_DEFAULT).status_code == 200
    run_as_system(seeded, "access:revokeToken", {"name": "ci"})
    assert api.post("mutation", *SET_DEFAULT).status_code == 401


def test_expired_token_is_refused(seeded, client):
    token = run_as_system(seeded, "access:createToken",
                          {"name": "short", "scopes": ["catalog:write"], "expiresInDays": 1})
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET expires_at = 1 WHERE name = 'short'"))
    engine.dispose()
    assert Api(client, token["token"]).post("mutation", *SET_DEFAULT).status_code == 401
    states = {t["name"]: t["state"] for t in run_as_system(seeded, "access:listTokens")}
    assert states["short"] == "expired"  # listed as what the API does with it, not "active"
    listed = seeded.test_cli_runner().invoke(args=["tokens", "list"], catch_exceptions=False)
    assert listed.output.splitlines()[-1].endswith("\texpired"), listed.output


def test_a_token_is_listed_in_the_state_the_api_treats_it(seeded, caplog):
    run_as_system(seeded, "access:createToken", {"name": "live", "scopes": ["admin"]})
    run_as_system(seeded, "access:createToken", {"name": "gone", "scopes": ["admin"]})
    caplog.clear()
    with caplog.at_level("INFO", logger="catalog.audit"):
        for _ in range(2):
            assert run_as_system(seeded, "access:revokeToken", {"name": "gone"})["state"] == \
                "revoked"
    assert [r.getMessage() for r in caplog.records if r.name == "catalog.audit"] == [
        "token revoked"]  # revoking it again changes nothing, and says nothing
    states = {t["name"]: t["state"] for t in run_as_system(seeded, "access:listTokens")}
    assert states == {"live": "active", "gone": "revoked"}


def test_tokens_are_stored_only_as_hashes(seeded):
    token = run_as_system(seeded, "access:createToken", {"name": "h", "scopes": ["admin"]})
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).all()
    engine.dispose()
    assert token["token"] not in repr(rows)
    assert token["token"].split("_", 2)[2] not in repr(rows)


def test_a_new_accounts_email_is_an_address_mail_servers_take(seeded):
    """A direction override shows another address than the one stored, and a mail server
    takes at most 64 characters before the '@': refused for a new account (they had been
    taken); an account made before is still found by its email."""
    from engine.errors import FunctionError

    for email in ("uni\u202e@x.test", "zero\u200bwidth@x.test", "a" * 65 + "@x.test"):
        with pytest.raises(FunctionError) as refused:
            run_as_system(seeded, "access:createUser", {"email": email, "role": "viewer",
                                                        "password": None})
        assert refused.value.data["field"] == "email", email
    made = run_as_system(seeded, "access:createUser", {"email": "a" * 64 + "@x.test",
                                                       "role": "viewer", "password": None})
    assert made["email"] == "a" * 64 + "@x.test"
    engine = create_engine(seeded.config["DATABASE_URL"])
    with engine.begin() as conn:  # as an account made before the rule holds it
        conn.execute(text("UPDATE users SET email = :old WHERE email = :new"),
                     {"old": "b" * 70 + "@x.test", "new": "a" * 64 + "@x.test"})
    engine.dispose()
    changed = run_as_system(seeded, "access:updateUser", {"email": "b" * 70 + "@x.test",
                                                          "isActive": False})
    assert changed["isActive"] is False


def test_a_token_name_is_printable_text(seeded):
    """`tokens list` shows a name in a tab-separated column: a tab, a line break or only
    spaces would break it, and are refused (they had been taken)."""
    from engine.errors import FunctionError

    for name in ("a\tb", "a\nb", "   ", "bell\x07", "a\u2028b", "nel\x85", "a\u202eb",
                 "\u200b\u200b", "bom\ufeff"):
        with pytest.raises(FunctionError) as refused:
            run_as_system(seeded, "access:createToken", {"name": name, "scopes": ["admin"]})
        assert refused.value.data["field"] == "name", name
    made = run_as_system(seeded, "access:createToken", {"name": "ci · prod", "scopes": ["admin"]})
    assert made["name"] == "ci · prod"
