"""Operators' commands: `flask tokens ...` and `flask users ...`."""

from __future__ import annotations

import secrets
import sys

import click
from flask import Flask
from flask.cli import with_appcontext

from functions.errors import FunctionError
from functions.runtime import ROLES, SCOPES, call, system


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
    """Name, prefix, scopes and state of every token."""
    for t in run("access:listTokens"):
        state = "revoked" if t["revokedAt"] else "active"
        click.echo(f"{t['name']}\tmc_{t['prefix']}_…\t{','.join(t['scopes'])}\t{state}")


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


def init_app(app: Flask) -> None:
    app.cli.add_command(tokens_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(bootstrap)
