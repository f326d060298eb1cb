"""The default catalog as data, and its idempotent loader (`flask seed`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from engine.errors import FunctionError, TransportError, for_operator
from engine.runtime import call, system

DEFAULT_MODELS = Path(__file__).with_name("default_models.json")


def load(path: Path = DEFAULT_MODELS) -> list[str]:
    """Create the seed models that are missing; existing ones, edited or not, are left alone."""
    created = []
    identity = system("seed")
    for entry in json.loads(path.read_text()):
        found = call("models:getModelById", {"modelId": entry["modelId"]},
                     identity=identity, source="seed")
        if found is None:
            call("models:createModel", {**entry, "reason": "seed"}, identity=identity,
                 source="seed")
            created.append(entry["modelId"])
    return created


@click.command("seed")
@with_appcontext
def seed_command() -> None:
    """Load the default models; a second run changes nothing."""
    try:
        created = load()
    except (FunctionError, TransportError) as error:  # a refusal; the database down or old
        raise click.ClickException(for_operator(error)) from None
    click.echo(f"Seeded {len(created)} model(s): {', '.join(created)}" if created
               else "Catalog already seeded; nothing changed.")


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_command)
