"""The catalog as code: export, plan, apply; all or nothing; idempotent; a published schema."""

from __future__ import annotations

import json
import threading

import pytest
from jsonschema import Draft202012Validator

from engine.errors import FunctionError
from functions.catalog import file_schema
from functions.plan import by_outcome, left_out_warning
from tests.conftest import ROOT, catalog_fingerprint, fresh_database, run_as_system
from tests.test_catalog import NEW_MODEL, error


def export(runner, path):
    result = runner.invoke(args=["catalog", "export", str(path)])
    assert result.exit_code == 0, result.output
    catalog = json.loads(path.read_text())
    count = len(catalog["models"])  # said on standard error (it printed nothing)
    assert f"Exported {count} model{'s' if count != 1 else ''} to {path}" in result.output
    return catalog


def write(path, catalog):
    path.write_text(json.dumps(catalog, indent=2))
    return path


def test_export_is_sorted_stable_and_valid(seeded, runner, tmp_path, client):
    catalog = export(runner, tmp_path / "a.json")
    assert [m["modelId"] for m in catalog["models"]] == sorted(m["modelId"]
                                                               for m in catalog["models"])
    assert "totalGenerations" not in catalog["models"][0]
    assert export(runner, tmp_path / "b.json") == catalog
    assert (tmp_path / "a.json").read_text() == (tmp_path / "b.json").read_text()
    Draft202012Validator(file_schema()).validate(catalog)
    assert client.get("/api/catalog.schema.json").get_json() == file_schema()


def test_published_schema_matches_the_repo_copy():
    kept = json.loads((ROOT / "seeds" / "catalog.schema.json").read_text())
    assert kept == file_schema()


def test_plan_shows_everything_and_changes_nothing(seeded, runner, tmp_path):
    catalog = export(runner, tmp_path / "c.json")
    by_id = {m["modelId"]: m for m in catalog["models"]}
    by_id["luma/ray-2-720p"]["costPerSecond"] = 0.2
    del by_id["google/veo-3"]
    new = dict(by_id["luma/ray-2-720p"], modelId="acme/clip-1", name="Acme Clip")
    catalog["models"] = [*by_id.values(), new]
    before = catalog_fingerprint(seeded)
    result = runner.invoke(args=["catalog", "plan", str(write(tmp_path / "c.json", catalog))])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "+ create acme/clip-1" in lines
    assert "~ change luma/ray-2-720p" in lines and "    costPerSecond: 0.18 -> 0.2" in lines
    assert "- deactivate google/veo-3" in lines
    assert "~ change google/veo-3" not in lines  # a deactivated model is listed once
    assert lines[-3:] == ["1 to create, 1 to change, 1 to deactivate, 1 unchanged",
                          "warning: 1 model is not in this file: applying it deactivates it. A "
                          "catalog file is the whole catalog: to change a few models, export "
                          "the catalog, edit that file and plan it.",
                          "Nothing was changed (catalog apply FILE --reason TEXT applies this "
                          "plan)."]
    assert catalog_fingerprint(seeded) == before


def test_a_plan_warns_of_the_models_the_file_leaves_out(seeded, api):
    """A file of one model: the others are deactivated, a locked one unlocked; the plan names
    them in `leftOut` and warns before anything is applied. A file naming every model does
    not warn, whatever it changes."""
    api.value("mutation", "models:lockModel", {"modelId": "google/veo-3"})
    catalog = api.value("query", "catalog:exportCatalog", {})
    kept = [m for m in catalog["models"] if m["isDefault"]]
    plan = api.value("mutation", "catalog:planCatalog", {"catalog": {**catalog, "models": kept}})
    left_out = sorted(m["modelId"] for m in catalog["models"] if not m["isDefault"])
    assert plan["leftOut"] == left_out and sorted(plan["deactivated"]) == left_out
    assert left_out_warning(by_outcome(plan)) == (
        "2 models are not in this file: applying it deactivates them and unlocks 1 locked one. "
        "A catalog file is the whole catalog: to change a few models, export the catalog, edit "
        "that file and plan it.")
    for model in catalog["models"]:
        if not model["isLocked"]:
            model["description"] = "edited"
    whole = api.value("mutation", "catalog:planCatalog", {"catalog": catalog})
    assert whole["leftOut"] == [] and left_out_warning(by_outcome(whole)) is None


def test_apply_is_idempotent(seeded, runner, tmp_path):
    catalog = export(runner, tmp_path / "d.json")
    catalog["models"][1]["costPerSecond"] = 0.25
    path = write(tmp_path / "d.json", catalog)
    first = runner.invoke(args=["catalog", "apply", str(path), "--reason", "price review"])
    assert first.exit_code == 0 and "1 to change" in first.output
    assert first.output.splitlines()[-1] == "Applied."
    model = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert model["costPerSecond"] == 0.25
    after_first = catalog_fingerprint(seeded)
    second = runner.invoke(args=["catalog", "apply", str(path), "--reason", "again"])
    assert second.exit_code == 0 and "0 to create, 0 to change" in second.output
    assert second.output.splitlines()[-1] == "Nothing to change: the catalog already matches."
    assert catalog_fingerprint(seeded) == after_first


def test_an_apply_that_deactivates_models_left_out_asks_first(seeded, runner, tmp_path):
    """As the console does, and as db downgrade does before it drops data: the plan and the
    warning, then a question; no applies nothing, yes applies what was asked about, --yes
    does not ask. A whole file is not asked about."""
    catalog = export(runner, tmp_path / "whole.json")
    whole = write(tmp_path / "whole.json", catalog)
    catalog["models"] = [m for m in catalog["models"] if m["modelId"] != RAY]
    partial = write(tmp_path / "partial.json", catalog)
    before = catalog_fingerprint(seeded)
    declined = runner.invoke(args=["catalog", "apply", str(partial), "--reason", "r"],
                             input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert f"- deactivate {RAY}" in declined.output
    assert "1 model is not in this file: applying it deactivates it" in declined.output
    assert catalog_fingerprint(seeded) == before
    agreed = runner.invoke(args=["catalog", "apply", str(partial), "--reason", "r"], input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert agreed.output.count(f"- deactivate {RAY}") == 1
    assert agreed.output.splitlines()[-1] == "Applied."
    assert not run_as_system(seeded, "models:getModelById", {"modelId": RAY})["isActive"]
    restored = runner.invoke(args=["catalog", "apply", str(whole), "--reason", "back"])
    assert restored.exit_code == 0 and "Apply it?" not in restored.output
    again = runner.invoke(args=["catalog", "apply", str(partial), "--reason", "r", "--yes"])
    assert again.exit_code == 0 and "Apply it?" not in again.output


def test_an_apply_without_a_reason_applies_nothing(seeded, runner, tmp_path):
    """--reason is required, and an empty one is none: it is every model's history entry."""
    catalog = export(runner, tmp_path / "r.json")
    catalog["models"][1]["costPerSecond"] = 0.25
    path = write(tmp_path / "r.json", catalog)
    before = catalog_fingerprint(seeded)
    for blank in ("", "   "):
        refused = runner.invoke(args=["catalog", "apply", str(path), "--reason", blank])
        assert refused.exit_code == 2, refused.output
        assert "--reason must say why: it is recorded in every model's history" in (
            refused.output)
    assert catalog_fingerprint(seeded) == before


def test_invalid_file_applies_nothing_and_lists_every_error(seeded, runner, tmp_path):
    catalog = export(runner, tmp_path / "e.json")
    catalog["models"][0]["costPerSecond"] = -1
    catalog["models"][1]["supportedQualities"] = []
    catalog["models"][2]["name"] = "Changed"  # valid, but must not land either
    before = catalog_fingerprint(seeded)
    result = runner.invoke(args=["catalog", "apply", str(write(tmp_path / "e.json", catalog)),
                                 "--reason", "x"])
    assert result.exit_code != 0
    assert "entry 0 (google/veo-3) models[0].costPerSecond" in result.output
    assert "entry 1 (luma/ray-2-720p) models[1].supportedQualities" in result.output
    assert catalog_fingerprint(seeded) == before


def test_a_files_numbers_are_checked_as_written(seeded, runner, tmp_path):
    """A catalog file's number a double does not hold is checked as written, as over HTTP
    (the file was read as doubles, and such a price was taken rounded)."""
    catalog = export(runner, tmp_path / "n.json")
    price = catalog["models"][0]["costPerSecond"]
    text = json.dumps(catalog, indent=2).replace(f'"costPerSecond": {price}',
                                                 f'"costPerSecond": {price}0000000000000000001', 1)
    assert f"{price}0000000000000000001" in text
    (tmp_path / "n.json").write_text(text)
    before = catalog_fingerprint(seeded)
    result = runner.invoke(args=["catalog", "plan", str(tmp_path / "n.json")])
    assert result.exit_code != 0
    assert ("models[0].costPerSecond must have at most 6 decimal places, got "
            f"{price}0000000000000000001") in result.output
    assert catalog_fingerprint(seeded) == before


def test_changes_to_a_locked_model_are_refused_whole(seeded, runner, tmp_path):
    run_as_system(seeded, "models:lockModel", {"modelId": "google/veo-3"})
    catalog = export(runner, tmp_path / "f.json")
    catalog["models"][0]["costPerSecond"] = 1.0
    catalog["models"][1]["costPerSecond"] = 0.3
    before = catalog_fingerprint(seeded)
    result = runner.invoke(args=["catalog", "apply", str(write(tmp_path / "f.json", catalog)),
                                 "--reason", "x"])
    assert result.exit_code != 0 and "google/veo-3 is locked" in result.output
    assert catalog_fingerprint(seeded) == before


def test_export_then_apply_on_an_empty_database_reproduces_the_catalog(
        seeded, runner, tmp_path, request, monkeypatch):
    from wsgi import create_app

    run_as_system(seeded, "models:setDefaultModel", {"modelId": "google/veo-3"})
    run_as_system(seeded, "models:lockModel", {"modelId": "luma/ray-2-720p"})
    run_as_system(seeded, "models:createModel", {
        "modelId": "old/model", "name": "Old", "costPerSecond": 0.01,
        "supportedDurations": [3], "supportedQualities": ["standard"], "provider": "Old",
        "qualityMultipliers": {"standard": 1.25}, "inputSchema": {"type": "object"}})
    run_as_system(seeded, "models:deleteModel", {"modelId": "old/model"})
    original = export(runner, tmp_path / "g.json")

    kind = "postgresql" if "postgresql" in seeded.config["DATABASE_URL"] else "sqlite"
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    empty = create_app({"TESTING": True, "SECRET_KEY": "x",
                        "DATABASE_URL": fresh_database(kind, request, empty_dir)})
    other = empty.test_cli_runner()
    result = other.invoke(args=["catalog", "apply", str(tmp_path / "g.json"), "--reason", "copy"])
    assert result.exit_code == 0, result.output
    assert export(other, tmp_path / "h.json") == original
    empty.extensions["catalog_db"].dispose()


# -- the invariants hold at the end of an apply, not after each step ---------------------------

VEO, RAY, FLASH = "google/veo-3", "luma/ray-2-720p", "luma/ray-flash-2-540p"


def exported(app) -> dict:
    return run_as_system(app, "catalog:exportCatalog")


def entry(catalog, model_id) -> dict:
    return next(m for m in catalog["models"] if m["modelId"] == model_id)


@pytest.mark.parametrize("deleted", [False, True])
def test_a_file_that_turns_every_model_off_applies(seeded, deleted):
    run_as_system(seeded, "models:setDefaultModel", {"modelId": VEO})  # the oldest: off first
    catalog = exported(seeded)
    for model in catalog["models"]:
        model.update(isActive=False, isDeprecated=deleted)
    plan = run_as_system(seeded, "catalog:applyCatalog", {"catalog": catalog, "reason": "off"})
    assert plan["deactivated"] == [VEO, RAY, FLASH]
    assert run_as_system(seeded, "models:getActiveModels") == []
    assert run_as_system(seeded, "models:getDefaultModel") is None
    after = exported(seeded)
    assert not any(m["isDefault"] or m["isActive"] for m in after["models"])
    assert {m["isDeprecated"] for m in after["models"]} == {deleted}


@pytest.mark.parametrize("still_marked", [True, False])
def test_a_file_that_leaves_models_on_without_a_default_is_refused(seeded, still_marked):
    catalog = exported(seeded)
    entry(catalog, FLASH).update(isActive=False, isDefault=still_marked)
    before = catalog_fingerprint(seeded)
    with pytest.raises(FunctionError) as refused:
        run_as_system(seeded, "catalog:applyCatalog", {"catalog": catalog, "reason": "x"})
    assert refused.value.code == "DEFAULT_REQUIRED"
    [error] = refused.value.data["errors"]
    assert error["modelId"] == FLASH and error["field"] == f"models[{error['entry']}].isDefault"
    assert catalog_fingerprint(seeded) == before


def test_a_deleted_model_that_is_active_is_refused_by_every_path(seeded):
    """One rule (states.contradiction) for a file's entry and for createModel: a deleted
    model cannot be active. Both refuse it and change nothing."""
    new, field = {**NEW_MODEL, "isDeprecated": True, "isActive": True}, "isActive"
    catalog = exported(seeded)
    catalog["models"].append(new)
    before = catalog_fingerprint(seeded)
    with pytest.raises(FunctionError) as in_a_file:
        run_as_system(seeded, "catalog:applyCatalog", {"catalog": catalog, "reason": "x"})
    [error] = [e for e in in_a_file.value.data["errors"] if e["modelId"] == new["modelId"]]
    with pytest.raises(FunctionError) as created:
        run_as_system(seeded, "models:createModel", new)
    assert (error["field"], created.value.data["field"]) == (f"models[3].{field}", field)
    assert error["message"] in created.value.message
    assert catalog_fingerprint(seeded) == before


def test_a_kind_left_out_for_a_price_video_does_not_have_is_refused_by_every_path(seeded):
    """A file's entry without contentType is video, as createModel's is: priced by tokens
    alone, both refuse it with the same words, and nothing changes."""
    new = {k: val for k, val in NEW_MODEL.items() if k not in (
        "contentType", "costPerSecond", "supportedDurations", "supportedQualities",
        "qualityMultipliers")}
    new["prices"] = [{"effectiveFrom": None, "components": [
        {"unit": "input_tokens", "price": "1"}]}]
    catalog = exported(seeded)
    catalog["models"].append(new)
    before = catalog_fingerprint(seeded)
    with pytest.raises(FunctionError) as in_a_file:
        run_as_system(seeded, "catalog:planCatalog", {"catalog": catalog})
    [error] = in_a_file.value.data["errors"]
    with pytest.raises(FunctionError) as created:
        run_as_system(seeded, "models:createModel", new)
    assert (error["field"], created.value.data["field"]) == ("models[3].contentType",
                                                            "contentType")
    assert error["message"] == created.value.message
    assert catalog_fingerprint(seeded) == before


@pytest.mark.parametrize("model_id,field,value", [
    (RAY, "costPerSecond", 1e-7),  # below a micro-dollar: refused by the plan
    (VEO, "name", ""),  # refused by the file's own checks
])
def test_every_error_of_a_file_names_its_field_from_the_files_top(seeded, model_id, field,
                                                                  value):
    """Whether the file's checks or the plan refuse an entry, its field is models[i].x."""
    catalog = exported(seeded)
    entry(catalog, model_id)[field] = value
    with pytest.raises(FunctionError) as refused:
        run_as_system(seeded, "catalog:planCatalog", {"catalog": catalog})
    [error] = refused.value.data["errors"]
    index = next(i for i, m in enumerate(catalog["models"]) if m["modelId"] == model_id)
    assert (error["modelId"], error["field"]) == (model_id, f"models[{index}].{field}")


def test_the_default_moves_to_an_older_model_as_the_old_one_goes_off(seeded):
    catalog = exported(seeded)
    entry(catalog, FLASH).update(isActive=False, isDefault=False)
    entry(catalog, VEO)["isDefault"] = True
    run_as_system(seeded, "catalog:applyCatalog", {"catalog": catalog, "reason": "x"})
    assert run_as_system(seeded, "models:getDefaultModel")["modelId"] == VEO
    assert exported(seeded) == catalog


def test_export_then_plan_lists_prices_stored_under_older_rules(seeded, runner, tmp_path):
    """What an operator runs after an upgrade whose price rules are stricter: a model whose
    stored price the rules now refuse is named, with the rule, and nothing changes."""
    from sqlalchemy import text

    stored = json.dumps([{"effectiveFrom": None, "components": [
        {"unit": "second", "price": "2000000"}]}])  # above today's bound
    with seeded.extensions["catalog_db"].engine.begin() as conn:
        conn.execute(text("UPDATE models SET prices = :p, cost_micros = NULL, pricing_unit = "
                          "NULL, quality_multipliers = '{}' WHERE model_id = 'google/veo-3'"),
                     {"p": stored})
        conn.execute(text("UPDATE catalog_state SET version = version + 1"))
    catalog = export(runner, tmp_path / "c.json")
    entry = [m["modelId"] for m in catalog["models"]].index("google/veo-3")
    before = catalog_fingerprint(seeded)
    result = runner.invoke(args=["catalog", "plan", str(tmp_path / "c.json")])
    assert result.exit_code != 0
    assert (f"error: entry {entry} (google/veo-3) models[{entry}].prices[0].components[0].price "
            "must be below 1,000,000 (USD per its unit), got 2000000") in result.output
    assert catalog_fingerprint(seeded) == before


def test_plan_is_what_apply_does_with_one_history_entry_per_model(seeded, api):
    run_as_system(seeded, "models:lockModel", {"modelId": VEO})
    run_as_system(seeded, "models:deleteModel", {"modelId": RAY})
    catalog = exported(seeded)
    entry(catalog, VEO).update(isLocked=False, costPerSecond=0.8, isDefault=True)
    entry(catalog, RAY).update(isDeprecated=False, isActive=False, tags=["x"])
    entry(catalog, FLASH).update(isDefault=False, isDeprecated=True, isActive=False)
    catalog["models"].append({**entry(catalog, FLASH), "modelId": "Acme/New", "name": "New",
                              "isDeprecated": False, "isActive": True, "isLocked": True})
    args = {"catalog": catalog, "reason": "review"}
    revisions = {m: run_as_system(seeded, "models:getModelById", {"modelId": m})["revision"]
                 for m in (VEO, RAY, FLASH)}
    plan = run_as_system(seeded, "catalog:planCatalog", args)
    assert plan["created"] == ["acme/new"] and plan["deactivated"] == [FLASH]
    version = plan.pop("catalogVersion")
    assert run_as_system(seeded, "catalog:applyCatalog", {**args, "planVersion": version}) == plan
    assert exported(seeded)["models"] == sorted(
        [*catalog["models"][:-1], {**catalog["models"][-1], "modelId": "acme/new"}],
        key=lambda m: m["modelId"])
    for model_id, revision in [*((m, r + 1) for m, r in revisions.items()), ("acme/new", 1)]:
        history = api.value("query", "history:getModelHistory", {
            "modelId": model_id, "paginationOpts": {"numItems": 1, "cursor": None}})["page"]
        assert (history[0]["action"], history[0]["revision"]) == ("import", revision), model_id
    again = run_as_system(seeded, "catalog:applyCatalog", args)
    assert again["created"] == [] and again["changed"] == []


def test_a_plan_applied_after_the_catalog_changed_is_refused(seeded, api):
    """The plan a person reviewed is the plan applied: an edit made since (another tab,
    another admin, an import) refuses the apply, STALE_PLAN, instead of silently undoing it."""
    catalog = exported(seeded)
    entry(catalog, FLASH)["description"] = "reviewed"
    args = {"catalog": catalog, "reason": "review"}
    plan = run_as_system(seeded, "catalog:planCatalog", args)
    assert [c["modelId"] for c in plan["changed"]] == [FLASH]
    api.value("mutation", "models:updateModel", {"modelId": RAY, "patch": {"costPerSecond": 0.3}})
    before = catalog_fingerprint(seeded)
    stale = api.mutation("catalog:applyCatalog", {**args, "planVersion": plan["catalogVersion"]})
    assert error(stale) == {"code": "STALE_PLAN", "field": "planVersion",
                            "catalogVersion": plan["catalogVersion"] + 1}
    assert catalog_fingerprint(seeded) == before  # Ray keeps its new price
    again = api.value("mutation", "catalog:planCatalog", args)
    assert {c["modelId"] for c in again["changed"]} == {FLASH, RAY}  # the plan shows the undo
    assert api.value("mutation", "catalog:applyCatalog",
                     {**args, "planVersion": again["catalogVersion"]})["changed"] == \
        again["changed"]


# -- a plan holds no lock; an apply checks the file before it takes the lock -------------------


class HeldAtRead:
    """Runs a call in a thread that is held when it first reads the models, until released:
    meanwhile the test does what it wants to happen during the call."""

    def __init__(self, app, path: str, args: dict) -> None:
        from db.engine import engines

        self.app, self.path, self.args = app, path, args
        self.reading, self.released = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._call)
        self.targets = engines(app.extensions["catalog_db"].engine)
        self.answer: dict = {}

    def _hold(self, conn, cursor, statement, *rest) -> None:
        if threading.current_thread() is self.thread and "FROM models" in statement \
                and not self.reading.is_set():
            self.reading.set()
            self.released.wait(timeout=300)

    def _call(self) -> None:
        try:
            self.answer["value"] = run_as_system(self.app, self.path, self.args)
        except FunctionError as error:
            self.answer["error"] = error

    def __enter__(self):
        from sqlalchemy import event

        for target in self.targets:
            event.listen(target, "before_cursor_execute", self._hold)
        self.thread.start()
        assert self.reading.wait(timeout=300)
        return self

    def __exit__(self, *exc) -> None:
        from sqlalchemy import event

        self.released.set()
        self.thread.join()
        for target in self.targets:
            event.remove(target, "before_cursor_execute", self._hold)


def test_a_stats_write_completes_while_a_plan_of_a_large_file_runs(seeded):
    """The plan is held inside its read of the models until the stats write is done: with the
    writers' lock held there, the write could not complete."""
    catalog = exported(seeded)
    template = {k: val for k, val in entry(catalog, RAY).items() if k != "isDefault"}
    catalog["models"] += [dict(template, modelId=f"bulk/m-{i}") for i in range(2000)]
    with HeldAtRead(seeded, "catalog:planCatalog", {"catalog": catalog}) as plan:
        stats = run_as_system(seeded, "models:updateModelStats",
                              {"modelId": RAY, "generationTime": 3, "success": True})
    assert stats["totalGenerations"] == 1
    assert len(plan.answer["value"]["created"]) == 2000


def test_an_apply_planned_before_a_change_is_planned_again(seeded):
    """applyCatalog plans before it takes the writers' lock; a change that lands in between
    is seen under the lock, and the file still wins."""
    catalog = exported(seeded)
    entry(catalog, RAY)["costPerSecond"] = 0.3
    with HeldAtRead(seeded, "catalog:applyCatalog", {"catalog": catalog}) as apply:
        run_as_system(seeded, "models:updateModel", {"modelId": VEO,
                                                     "patch": {"name": "Meanwhile"}})
    assert [c["modelId"] for c in apply.answer["value"]["changed"]] == [VEO, RAY]
    assert exported(seeded) == catalog


def test_a_bad_file_is_refused_before_any_transaction_begins(seeded):
    from tests.test_concurrency import count_statements

    catalog = exported(seeded)
    catalog["models"][0]["costPerSecond"] = -1
    sent = count_statements(seeded)
    for path in ("catalog:planCatalog", "catalog:applyCatalog"):
        with pytest.raises(FunctionError) as refused:
            run_as_system(seeded, path, {"catalog": catalog, "reason": "x"})
        assert refused.value.data["errors"][0]["field"] == "models[0].costPerSecond"
    assert sent == []


def test_a_plan_takes_no_writers_lock(seeded):
    from tests.test_concurrency import count_statements

    catalog = exported(seeded)
    entry(catalog, RAY)["costPerSecond"] = 0.3
    sent = count_statements(seeded)
    run_as_system(seeded, "catalog:planCatalog", {"catalog": catalog})
    assert sent and not any("IMMEDIATE" in s or "advisory" in s for s in sent), sent
