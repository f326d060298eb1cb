"""The catalog as code: export, plan, apply; all or nothing; idempotent; a published schema."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from functions.catalog import file_schema
from tests.conftest import ROOT, catalog_fingerprint, fresh_database, run_as_system


def export(runner, path):
    result = runner.invoke(args=["catalog", "export", str(path)])
    assert result.exit_code == 0, result.output
    return json.loads(path.read_text())


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
    assert catalog_fingerprint(seeded) == before


def test_apply_is_idempotent(seeded, runner, tmp_path):
    catalog = export(runner, tmp_path / "d.json")
    catalog["models"][1]["costPerSecond"] = 0.25
    path = write(tmp_path / "d.json", catalog)
    first = runner.invoke(args=["catalog", "apply", str(path), "--reason", "price review"])
    assert first.exit_code == 0 and "1 to change" in first.output
    model = run_as_system(seeded, "models:getModelById", {"modelId": "luma/ray-2-720p"})
    assert model["costPerSecond"] == 0.25
    after_first = catalog_fingerprint(seeded)
    second = runner.invoke(args=["catalog", "apply", str(path), "--reason", "again"])
    assert second.exit_code == 0 and "0 to create, 0 to change" in second.output
    assert catalog_fingerprint(seeded) == after_first


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
