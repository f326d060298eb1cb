"""The README's function reference names every public function, and nothing that is not one."""

from __future__ import annotations

import re

import functions  # noqa: F401 - declares the functions
from engine.runtime import REGISTRY
from tests.conftest import ROOT


def test_readme_lists_every_public_function():
    readme = (ROOT / "README.md").read_text()
    reference = readme.split("## Function reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z]+:[A-Za-z]+)`", reference, re.M))
    documented |= set(re.findall(r"/ `([a-z]+:[A-Za-z]+)`", reference))
    public = {name for name, fn in REGISTRY.items() if not fn.internal}
    assert documented == public


def test_readme_configuration_table_is_the_declared_settings():
    from config import readme_table

    assert readme_table() in (ROOT / "README.md").read_text()


def test_the_generated_docs_are_up_to_date():
    """`flask --app wsgi docs` would change nothing: the README's tables and the catalog
    schema are what the code declares."""
    from cli.docs import README, SCHEMA_FILE, catalog_schema, readme

    assert readme(README.read_text()) == README.read_text()
    assert catalog_schema() == SCHEMA_FILE.read_text()


def test_only_config_reads_the_environment():
    readers = {
        str(path.relative_to(ROOT))
        for package in ("functions", "engine", "wire", "cli", "db", "admin", "seeds")
        for path in (ROOT / package).rglob("*.py")
        if re.search(r"os\.environ|os\.getenv", path.read_text())
    }
    assert readers == set()


LAYERS = {"admin": 3, "wire": 3, "cli": 3, "seeds": 3, "functions": 2, "engine": 1, "db": 0}


def test_dependencies_point_one_way():
    """console, wire and CLI -> functions -> engine -> db: no import points up or sideways."""
    wrong = []
    for package, level in LAYERS.items():
        for path in (ROOT / package).rglob("*.py"):
            for imported in re.findall(r"^\s*(?:from|import) (\w+)", path.read_text(), re.M):
                if imported in LAYERS and imported != package and LAYERS[imported] >= level:
                    wrong.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert wrong == []


def test_readme_model_fields_are_the_spec():
    from functions.spec import readme_table

    assert readme_table() in (ROOT / "README.md").read_text()


def test_every_spec_field_has_its_column():
    from db.schema import Model
    from functions.spec import FIELDS

    columns = set(Model.__table__.columns.keys())
    assert [f.name for f in FIELDS if f.attr not in columns] == []


def test_readme_lists_every_transport_error_code():
    """Every `{"code", "message"}` refusal the wire can send is in the README's wire contract:
    raised as a TransportError, refused by the sync endpoint, or answered by the Flask and body
    layers."""
    sources = "\n".join(path.read_text() for package in ("engine", "wire")
                        for path in (ROOT / package).rglob("*.py"))
    codes = set(re.findall(r'(?:TransportError|_refused)\(\s*\d{3},\s*"([A-Za-z]+)"', sources))
    codes |= set(re.findall(r'"code": "([A-Z][A-Za-z]+)"', sources))
    codes |= set(re.findall(r'\d{3}: "([A-Z][A-Za-z]+)"', sources))  # the Flask handler's
    assert {"Unavailable", "NotYetSeen", "RequestTimeout", "NotFound", "TooManySockets",
            "UnsupportedContentEncoding"} <= codes  # the patterns still find each kind
    readme = (ROOT / "README.md").read_text()
    contract = readme.split("- Transport error:", 1)[1].split("\n- ", 1)[0]
    assert sorted(code for code in codes if f"`{code}`" not in contract) == []


def test_the_readmes_price_examples_are_schedules_the_engine_takes():
    """Each example in Prices is valid as written, and an ISO start is read as milliseconds."""
    import json

    from functions import prices

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Prices", 1)[1].split("\n## ", 1)[0]
    examples = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]
    assert len(examples) == 4
    starts = [entry["effectiveFrom"] for example in examples
              for entry in prices.validate(example)]
    assert set(starts) == {None, 1799971200000}  # 2027-01-15T00:00:00Z
