"""A model's states and transitions (functions/states.py): every path against every state."""

from __future__ import annotations

import pytest

from engine.errors import FunctionError
from engine.runtime import REGISTRY, Identity, call
from tests.conftest import catalog_fingerprint, run_as_system
from tests.test_catalog import FLASH, RAY, VEO, error

PAGE = {"numItems": 1000, "cursor": None}


def put_in(app, state: str) -> None:
    """Bring RAY (an active model, not the default) into `state`."""
    if state == "inactive":
        run_as_system(app, "models:updateModel", {"modelId": RAY, "patch": {"isActive": False}})
    elif state == "deleted":
        run_as_system(app, "models:deleteModel", {"modelId": RAY})
    elif state == "locked":
        run_as_system(app, "models:lockModel", {"modelId": RAY})
    elif state == "default":
        run_as_system(app, "models:setDefaultModel", {"modelId": RAY})


def observed(app) -> str:
    """RAY's state as clients see it: active, inactive, deleted, locked (active) or default."""
    model = run_as_system(app, "models:getModelById", {"modelId": RAY})
    if model["isLocked"]:
        return "locked"
    if model["isDefault"]:
        return "default"
    if model["isDeprecated"]:
        return "deleted"
    return "active" if model["isActive"] else "inactive"


def assert_invariants(app) -> None:
    """What every query must agree on, whatever happened before."""
    listed = run_as_system(app, "models:listModels", {"paginationOpts": PAGE})["page"]
    for model in listed:
        assert not (model["isActive"] and model["isDeprecated"]), model["modelId"]
    on = [m["modelId"] for m in listed if m["isActive"]]
    assert on == [m["modelId"] for m in run_as_system(app, "models:getActiveModels")]
    defaults = [m for m in listed if m["isDefault"]]
    default = run_as_system(app, "models:getDefaultModel")
    if on:
        assert len(defaults) == 1 and defaults[0]["isActive"]
        assert default["modelId"] == defaults[0]["modelId"]
    else:
        assert defaults == [] and default is None
    enabled = run_as_system(app, "models:setModelsActive", {"isActive": True, "modelIds": on}) \
        if on else {"skipped": []}
    assert [s for s in enabled["skipped"] if s["code"] == "INACTIVE"] == []


def edited_file(app, **changes) -> dict:
    catalog = run_as_system(app, "catalog:exportCatalog")
    entry = next(m for m in catalog["models"] if m["modelId"] == RAY)
    entry.update(changes)
    return {"catalog": catalog, "reason": "test"}


def patch(**fields):
    return lambda app: ("models:updateModel", {"modelId": RAY, "patch": fields})


def plain(path: str, **extra):
    return lambda app: (path, {"modelId": RAY, **extra})


def bulk(active: bool):
    return lambda app: ("models:setModelsActive", {"isActive": active, "modelIds": [RAY]})


def imported(**changes):
    return lambda app: ("catalog:applyCatalog", edited_file(app, **changes))


STATES = ["active", "inactive", "deleted", "locked", "default"]
# path -> what it makes of RAY in each state (a state), or the refusal's code.
MATRIX = {
    "patch isActive true": (patch(isActive=True),
                            ["active", "active", "INACTIVE", "LOCKED", "default"]),
    "patch isActive false": (patch(isActive=False),
                             ["inactive", "inactive", "deleted", "LOCKED", "DEFAULT_REQUIRED"]),
    "patch a field": (patch(name="Renamed"),
                      ["active", "inactive", "deleted", "LOCKED", "default"]),
    "revert to revision 1": (plain("history:revertModel", revision=1),
                             ["active", "active", "INACTIVE", "LOCKED", "default"]),
    "bulk enable": (bulk(True), ["active", "active", "INACTIVE", "LOCKED", "default"]),
    "bulk disable": (bulk(False),
                     ["inactive", "inactive", "INACTIVE", "LOCKED", "DEFAULT_REQUIRED"]),
    "delete": (plain("models:deleteModel"),
               ["deleted", "deleted", "deleted", "LOCKED", "DEFAULT_REQUIRED"]),
    "restore": (plain("models:restoreModel"),
                ["active", "active", "active", "LOCKED", "default"]),
    "set default": (plain("models:setDefaultModel"),
                    ["default", "INACTIVE", "INACTIVE", "LOCKED", "default"]),
    "duplicate": (plain("models:duplicateModel", newModelId="acme/copy"),
                  ["active", "inactive", "deleted", "locked", "default"]),
    "import active": (imported(isActive=True, isDeprecated=False),
                      ["active", "active", "active", "locked", "default"]),
    "import inactive": (imported(isActive=False, isDeprecated=False),
                        ["inactive", "inactive", "inactive", "LOCKED", "DEFAULT_REQUIRED"]),
    "import deleted": (imported(isActive=False, isDeprecated=True),
                       ["deleted", "deleted", "deleted", "LOCKED", "DEFAULT_REQUIRED"]),
    "import active and deleted": (imported(isActive=True, isDeprecated=True),
                                  ["INVALID_ARGUMENT"] * 5),
}


@pytest.mark.sweep
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("path", MATRIX)
def test_every_path_against_every_state(seeded, api, path, state):
    put_in(seeded, state)
    make, outcomes = MATRIX[path]
    expected = outcomes[STATES.index(state)]
    function, args = make(seeded)
    before = catalog_fingerprint(seeded)
    body = api.mutation(function, args)
    if body["status"] == "error":
        got = body["errorData"]["code"]
    elif function == "models:setModelsActive" and body["value"]["skipped"]:
        got = body["value"]["skipped"][0]["code"]
    else:
        got = observed(seeded)
    assert got == expected, body
    if expected.isupper():  # refused: nothing changed
        assert catalog_fingerprint(seeded) == before
    if path == "duplicate":
        copy = api.value("query", "models:getModelById", {"modelId": "acme/copy"})
        assert not copy["isActive"] and not copy["isLocked"] and not copy["isDefault"]
    assert_invariants(seeded)


def test_a_deleted_model_made_active_is_refused_with_a_way_out(seeded, api):
    api.value("mutation", "models:deleteModel", {"modelId": RAY})
    body = api.mutation("models:updateModel", {"modelId": RAY, "patch": {"isActive": True}})
    assert body["errorData"] == {"code": "INACTIVE", "field": "modelId"}
    assert "restore it first (models:restoreModel)" in body["errorMessage"]
    reverted = api.mutation("history:revertModel", {"modelId": RAY, "revision": 1})
    assert reverted["errorData"]["code"] == "INACTIVE"
    restored = api.value("mutation", "models:restoreModel", {"modelId": RAY})
    assert restored["isActive"] and not restored["isDeprecated"]


def test_a_model_that_goes_off_is_no_longer_the_default(seeded, api):
    api.value("mutation", "models:setModelsActive", {"isActive": False,
                                                     "modelIds": [VEO, RAY]})
    off = api.value("mutation", "models:updateModel",
                    {"modelId": FLASH, "patch": {"isActive": False}})
    assert not off["isDefault"]  # nothing else was on: the default may go, and its flag too
    assert api.value("query", "models:getDefaultModel") is None
    back = api.value("mutation", "models:restoreModel", {"modelId": VEO})
    assert back["isDefault"]  # the first model back on is the default
    assert_invariants(seeded)


def test_bulk_disable_of_every_model_takes_the_default_last(seeded, api):
    result = api.value("mutation", "models:setModelsActive", {"isActive": False})
    assert result == {"changed": [VEO, RAY, FLASH], "unchanged": [], "skipped": []}
    assert api.value("query", "models:getActiveModels") == []
    assert_invariants(seeded)
    again = api.value("mutation", "models:setModelsActive", {"isActive": True,
                                                             "modelIds": [RAY, VEO]})
    assert again["changed"] == [RAY, VEO]
    assert api.value("query", "models:getDefaultModel")["modelId"] == VEO  # the oldest
    assert_invariants(seeded)


def test_a_bulk_change_names_the_id_it_cannot_find_by_its_place(seeded, api):
    """As recordGenerations names `events[1].modelId`; the same id twice is one model."""
    before = catalog_fingerprint(seeded)
    refused = api.mutation("models:setModelsActive", {"isActive": False,
                                                      "modelIds": [RAY, "acme/x y"]})
    assert error(refused) == {"code": "NOT_FOUND", "field": "modelIds[1]"}
    assert refused["errorMessage"] == "No model with modelId 'acme/x y'"
    assert catalog_fingerprint(seeded) == before
    twice = api.value("mutation", "models:setModelsActive", {"isActive": False,
                                                             "modelIds": [RAY, RAY.upper()]})
    assert twice == {"changed": [RAY], "unchanged": [], "skipped": []}


def test_every_transition_carries_the_grant_of_its_function():
    from functions import states

    for transition in states.TRANSITIONS:
        function = REGISTRY[transition.function]
        assert (transition.scope, transition.admin_only) == (function.scope, function.admin_only)


def test_routes_follow_the_table():
    from functions import states

    assert states.route(states.DELETED, states.INACTIVE) == [states.RESTORE, states.DISABLE]
    assert states.route(states.ACTIVE, states.DELETED) == [states.DELETE]
    assert states.route(states.INACTIVE, states.INACTIVE) == []


EDITOR = Identity.user("editor@example.com", "editor")
ADMIN = Identity.user("admin@example.com", "admin")


def as_user(app, identity, path, args):
    with app.app_context():
        return call(path, args, identity=identity, source="console")


@pytest.mark.parametrize("locked_before, lock_in_file", [(False, True), (True, False)])
def test_an_import_locks_and_unlocks_only_as_lock_and_unlock_do(seeded, locked_before,
                                                                  lock_in_file):
    if locked_before:
        run_as_system(seeded, "models:lockModel", {"modelId": RAY})
    args = edited_file(seeded, isLocked=lock_in_file)
    before = catalog_fingerprint(seeded)
    for path in ("catalog:planCatalog", "catalog:applyCatalog"):
        with pytest.raises(FunctionError) as refused:
            as_user(seeded, EDITOR, path, args)
        assert refused.value.code == "FORBIDDEN"
        [error] = refused.value.data["errors"]
        assert error["modelId"] == RAY and error["code"] == "FORBIDDEN"
        assert "needs the admin role" in error["message"]
    assert catalog_fingerprint(seeded) == before
    as_user(seeded, ADMIN, "catalog:applyCatalog", args)
    assert run_as_system(seeded, "models:getModelById",
                         {"modelId": RAY})["isLocked"] is lock_in_file


CONSOLE = {  # a row action on the models screen -> the function path it must match
    "enable": "bulk enable", "disable": "bulk disable", "delete": "delete",
    "restore": "restore", "set-default": "set default",
}


@pytest.mark.sweep
@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("verb", CONSOLE)
def test_the_consoles_row_actions_against_every_state(seeded, client, verb, state):
    from tests.console import create_accounts, sign_in

    create_accounts(seeded)
    token = sign_in(client, "admin")
    put_in(seeded, state)
    expected = MATRIX[CONSOLE[verb]][1][STATES.index(state)]
    before = catalog_fingerprint(seeded)
    response = client.post(f"/admin/models/row-action/{verb}/",
                           data={"csrf_token": token, "id": "2"})
    assert response.status_code == 302
    if expected.isupper():
        assert catalog_fingerprint(seeded) == before
    else:
        assert observed(seeded) == expected
    assert_invariants(seeded)
