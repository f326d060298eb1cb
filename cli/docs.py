"""`flask --app wsgi docs`: the documentation's generated parts, written anew from the code.

The README's configuration table (config.py) and model field table (functions/spec.py), and
the catalog file's JSON Schema (seeds/catalog.schema.json, from the spec). tests/test_docs.py
checks that running it would change nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

import config
from functions import spec

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SCHEMA_FILE = ROOT / "seeds" / "catalog.schema.json"
# Each generated README table: its header line, and what writes the whole table.
TABLES = (("| variable | default | meaning |", config.readme_table),
          ("| field | group | kinds | meaning |", spec.readme_table))


def readme(text: str) -> str:
    """The README with each generated table (from its header to the next blank line) anew."""
    for header, table in TABLES:
        start = text.index(header)
        end = text.find("\n\n", start)
        text = text[:start] + table() + (text[end:] if end != -1 else "\n")
    return text


def catalog_schema() -> str:
    from functions.catalog import file_schema

    return json.dumps(file_schema(), indent=2, sort_keys=True) + "\n"


@click.command("docs")
def write_docs() -> None:
    """Rewrite the README's generated tables and seeds/catalog.schema.json from the code."""
    for path, text in ((README, readme(README.read_text())), (SCHEMA_FILE, catalog_schema())):
        if path.read_text() != text:
            path.write_text(text)
            click.echo(f"Wrote {path.relative_to(ROOT)}")
        else:
            click.echo(f"{path.relative_to(ROOT)} is up to date")
