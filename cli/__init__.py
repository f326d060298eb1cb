"""Operators' commands: `flask tokens ...` and `flask users ...`."""

from __future__ import annotations

import json
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from engine.errors import FunctionError
from engine.runtime import ROLES, SCOPES, call, system


def run(path: str, args: dict | None = None, source: str = "cli"):
    """Call a function as the operator; a refusal becomes a clean CLI error."""
    try:
        return call(path, args, identity=system("cli"), source=source)
    except FunctionError as error:
        raise click.ClickException(error.message) from None


@click.group("tokens")
def tokens_cli() -> None:
    """Service tokens for the HTTP API."""


@tokens_cli.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES))
@click.option("--expires-in-days", type=int, default=None)
@with_appcontext
def create_token(name: str, scopes: tuple[str, ...], expires_in_days: int | None) -> None:
    """Create a token; its secret is printed once, alone on the last line."""
    args = {"name": name, "scopes": list(scopes)}
    if expires_in_days:
        args["expiresInDays"] = expires_in_days
    token = run("access:createToken", args)
    click.echo(f"Created token {name} ({', '.join(scopes)}); it is shown only once:")
    click.echo(token["token"])


@tokens_cli.command("list")
@with_appcontext
def list_tokens() -> None:
    """Every token: name, prefix, scopes, who made it and when, last use, expiry, state."""
    def when(ms: int | None) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "-"

    click.echo("name\tprefix\tscopes\tcreated\tcreated by\tlast used\texpires\tstate")
    for t in run("access:listTokens"):
        state = "revoked" if t["revokedAt"] else "active"
        click.echo("\t".join([t["name"], f"mc_{t['prefix']}_…", ",".join(t["scopes"]),
                              when(t["createdAt"]), t["createdBy"], when(t["lastUsedAt"]),
                              when(t["expiresAt"]), state]))


@tokens_cli.command("revoke")
@click.argument("name")
@with_appcontext
def revoke_token(name: str) -> None:
    """Revoke a token by name."""
    run("access:revokeToken", {"name": name})
    click.echo(f"Revoked {name}")


@click.group("users")
def users_cli() -> None:
    """Console accounts."""


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@with_appcontext
def create_user(email: str, role: str) -> None:
    """Create an account; the password is read from standard input."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    user = run("access:createUser", {"email": email, "role": role, "password": password})
    click.echo(f"Created {user['role']} {user['email']}")


@click.command("bootstrap")
@with_appcontext
def bootstrap() -> None:
    """First run: an admin and a development token, if there are none (secrets shown once)."""

    if run("access:countUsers") == 0:
        password = secrets.token_urlsafe(16)
        user = run("access:createUser",
                   {"email": "admin@catalog.local", "role": "admin", "password": password})
        click.echo(f"Created admin {user['email']} with password: {password}")
    if not run("access:listTokens"):
        token = run("access:createToken",
                    {"name": "development", "scopes": ["catalog:write", "stats:write"]})
        click.echo(f"Created token 'development' (catalog:write, stats:write): {token['token']}")


@click.group("catalog")
def catalog_cli() -> None:
    """The catalog as a file: export, plan, apply."""


def _read_catalog(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise click.ClickException(f"{path}: {error}") from None


def _run_file(path: str, args: dict) -> dict:
    try:
        return call(path, args, identity=system("cli"), source="cli")
    except FunctionError as error:
        for problem in error.data.get("errors", []):
            where = f"entry {problem['entry']}" if problem["entry"] is not None else "file"
            field = f" {problem['field']}" if problem.get("field") else ""
            click.echo(f"error: {where} ({problem['modelId'] or '-'}){field}: "
                       f"{problem['message']}", err=True)
        raise click.ClickException(error.message) from None


def describe_plan(plan: dict) -> list[str]:
    lines = [f"+ create {model_id}" for model_id in plan["created"]]
    for change in plan["changed"]:
        lines.append(f"~ change {change['modelId']}")
        lines += [f"    {c['field']}: {json.dumps(c['old'])} -> {json.dumps(c['new'])}"
                  for c in change["changes"]]
    lines += [f"- deactivate {model_id}" for model_id in plan["deactivated"]]
    lines.append(f"{len(plan['created'])} to create, {len(plan['changed'])} to change, "
                 f"{plan['unchanged']} unchanged")
    return lines


@catalog_cli.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def export_catalog(file: str | None) -> None:
    """Write the catalog configuration as sorted JSON (standard output without FILE)."""
    text = json.dumps(run("catalog:exportCatalog"), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"
    if file is None:
        click.echo(text, nl=False)
    else:
        with open(file, "w", encoding="utf-8") as handle:
            handle.write(text)


@catalog_cli.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def plan_catalog(file: str) -> None:
    """Show what applying FILE would change; changes nothing."""
    plan = _run_file("catalog:planCatalog", {"catalog": _read_catalog(file)})
    click.echo("\n".join(describe_plan(plan)))


@catalog_cli.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", required=True, help="Why: recorded in every model's history.")
@with_appcontext
def apply_catalog(file: str, reason: str) -> None:
    """Make the catalog match FILE, all or nothing."""
    plan = _run_file("catalog:applyCatalog", {"catalog": _read_catalog(file), "reason": reason})
    click.echo("\n".join(describe_plan(plan)))


SCHEMA_FILE = Path(__file__).resolve().parent.parent / "seeds" / "catalog.schema.json"


@catalog_cli.command("schema")
@click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True),
                default=str(SCHEMA_FILE))
def write_schema(file: str) -> None:
    """Write the catalog file's JSON Schema, derived from the model spec (to
    seeds/catalog.schema.json without FILE; a test keeps that copy in sync)."""
    from functions.catalog import file_schema

    Path(file).write_text(json.dumps(file_schema(), indent=2, sort_keys=True) + "\n")
    click.echo(f"Wrote {file}")


@click.group("monitor")
def monitor_cli() -> None:
    """The monitor: health, alerts, webhook deliveries and usage roll-up."""


@monitor_cli.command("run")
@click.option("--once", is_flag=True, help="One round, then exit (for a timer).")
@with_appcontext
def run_monitor(once: bool) -> None:
    """Run the monitor's rounds every MONITOR_INTERVAL_SECONDS (10 if 0), in the foreground;
    leases in the database let one process do each job per round."""
    import time

    from flask import current_app

    from functions.monitor import run_round

    app = current_app._get_current_object()
    seconds = app.config["MONITOR_INTERVAL_SECONDS"] or 10
    while True:
        done = run_round(app)
        alerts = done.get("health", {}).get("alerts", [])
        for alert in alerts:
            click.echo(f"{alert['modelId']}: {alert['from']} -> {alert['to']}"
                       + (f" ({alert['action']})" if alert["action"] else ""))
        if once:
            return
        time.sleep(seconds)


def init_app(app: Flask) -> None:
    app.cli.add_command(tokens_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(bootstrap)
    app.cli.add_command(catalog_cli)
    app.cli.add_command(monitor_cli)
