"""Operators' commands: `flask tokens ...` and `flask users ...`."""

from __future__ import annotations

import json
import secrets
import sys
from collections import Counter
from datetime import UTC, datetime

import click
from flask import Flask
from flask.cli import with_appcontext

from cli.docs import write_docs
from cli.errors import ExplainedCommand, ExplainedGroup, message_of
from cli.migrations import db_cli
from engine.errors import FunctionError
from engine.runtime import ROLES, SCOPES, call, system
from engine.values import json_float, keys_once
from functions.plan import by_outcome, left_out_warning
from functions.prices import utc_text


def run(path: str, args: dict | None = None, source: str = "cli"):
    """Call a function as the operator (a refusal is a clean error: cli/errors.py)."""
    return call(path, args, identity=system("cli"), source=source)


@click.group("tokens", cls=ExplainedGroup)
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
    if expires_in_days is not None:  # 0 too: the function refuses it, as the console does
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

    lines = ["name\tprefix\tscopes\tcreated\tcreated by\tlast used\texpires\tstate"]
    lines += ["\t".join([t["name"], f"mc_{t['prefix']}_…", ",".join(t["scopes"]),
                         when(t["createdAt"]), t["createdBy"], when(t["lastUsedAt"]),
                         when(t["expiresAt"]), t["state"]]) for t in run("access:listTokens")]
    click.echo("\n".join(lines))  # one write, as export's: `| head -1` is not a broken pipe


@tokens_cli.command("revoke")
@click.argument("name")
@with_appcontext
def revoke_token(name: str) -> None:
    """Revoke a token by name."""
    asked = int(datetime.now(UTC).timestamp() * 1000)
    token = run("access:revokeToken", {"name": name})
    if token["revokedAt"] < asked:  # (revoking again changes nothing)
        click.echo(f"{name} was revoked already ({utc_text(token['revokedAt'])})")
        return
    click.echo(f"Revoked {name}")


@click.group("users", cls=ExplainedGroup)
def users_cli() -> None:
    """Console accounts."""


def _read_password() -> str:
    """A password from the terminal (asked twice) or the first line of standard input."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError("no password on standard input: pipe one in (its first line), "
                               "or run the command in a terminal to be asked for it")
    return line.rstrip("\n")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@with_appcontext
def create_user(email: str, role: str) -> None:
    """Create an account; the password is read from standard input."""
    user = run("access:createUser", {"email": email, "role": role,
                                     "password": _read_password()})
    click.echo(f"Created {user['role']} {user['email']}")


@users_cli.command("set-password")
@click.argument("email")
@with_appcontext
def set_password(email: str) -> None:
    """Set an account's password (read from standard input); its sessions all end."""
    user = run("access:setPassword", {"email": email, "password": _read_password()})
    click.echo(f"Set the password of {user['email']}; every session of theirs has ended")


@users_cli.command("sign-out")
@click.argument("email")
@with_appcontext
def sign_out_user(email: str) -> None:
    """End every console session of an account (it must sign in again)."""
    user = run("access:signOutUser", {"email": email})
    click.echo(f"Signed {user['email']} out everywhere")


@click.command("bootstrap", cls=ExplainedCommand)
@with_appcontext
def bootstrap() -> None:
    """First run: an admin and a development token, if there are none (secrets shown once)."""

    if run("access:countUsers") == 0:
        password = secrets.token_urlsafe(16)
        user = run("access:createUser",
                   {"email": "admin@catalog.local", "role": "admin", "password": password})
        click.echo(f"Created admin {user['email']} with password: {password}  "
                   "(shown once: sign in to the console with it)")
    if not run("access:listTokens"):
        token = run("access:createToken",
                    {"name": "development", "scopes": ["catalog:write", "stats:write"]})
        click.echo(f"Created token 'development' (catalog:write, stats:write): {token['token']}")


@click.group("catalog", cls=ExplainedGroup)
def catalog_cli() -> None:
    """The catalog as a file: export, plan, apply."""


def _read_json(path: str, keys_twice: bool = False) -> dict:
    """A JSON file; a key named twice in one object is refused (a catalog file says one thing)
    unless `keys_twice` (a public price map, read as its publisher's tools read it)."""
    try:
        with open(path, encoding="utf-8") as handle:
            if keys_twice:  # numbers as doubles, as its publisher's tools read them
                return json.load(handle)
            return json.load(handle, object_pairs_hook=keys_once, parse_float=json_float)
    except (OSError, ValueError) as error:
        raise click.ClickException(f"{path}: {error}") from None
    except RecursionError:
        raise click.ClickException(f"{path}: nested too deeply to read") from None


def _run_file(path: str, args: dict, source: str = "cli") -> dict:
    try:
        return call(path, args, identity=system("cli"), source=source)
    except FunctionError as error:
        for problem in error.data.get("errors", []):
            where = f"entry {problem['entry']}" if problem.get("entry") is not None else "file"
            field = f" {problem['field']}:" if problem.get("field") and not problem[
                "message"].startswith(problem["field"]) else ""  # said once
            click.echo(f"error: {where} ({problem.get('modelId') or '-'}){field} "
                       f"{problem['message']}", err=True)
        raise click.ClickException(error.message) from None


def describe_plan(plan: dict) -> list[str]:
    """A catalog file's plan, a model once: under create, change or deactivate."""
    plan = by_outcome(plan)
    lines = [f"+ create {model_id}" for model_id in plan["created"]]
    for sign, verb, group in (("~", "change", "changed"), ("-", "deactivate", "deactivated")):
        for change in plan[group]:
            lines.append(f"{sign} {verb} {change['modelId']}")
            lines += [f"    {c['field']}: {json.dumps(c['old'])} -> {json.dumps(c['new'])}"
                      for c in change["changes"]]
    lines.append(f"{len(plan['created'])} to create, {len(plan['changed'])} to change, "
                 f"{len(plan['deactivated'])} to deactivate, {plan['unchanged']} unchanged")
    return lines


@catalog_cli.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def export_catalog(file: str | None) -> None:
    """Write the catalog configuration as sorted JSON (standard output without FILE)."""
    catalog = run("catalog:exportCatalog")
    text = json.dumps(catalog, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if file is None:
        click.echo(text, nl=False)
    else:
        try:
            with open(file, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as error:  # a full disk says so when written, naming no file
            raise click.ClickException(f"{file}: {error.strerror or error}") from None
        count = len(catalog["models"])
        click.echo(f"Exported {count:,} model{'s' if count != 1 else ''} to {file}", err=True)


@catalog_cli.command("plan")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def plan_catalog(file: str) -> None:
    """Show what applying FILE would change; changes nothing."""
    plan = _run_file("catalog:planCatalog", {"catalog": _read_json(file)})
    click.echo("\n".join(describe_plan(plan)))
    warning = left_out_warning(by_outcome(plan))
    if warning:
        click.secho(f"warning: {warning}", fg="yellow")
    click.echo("Nothing was changed (catalog apply FILE --reason TEXT applies this plan).")


@catalog_cli.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", required=True, help="Why: recorded in every model's history.")
@click.option("--yes", is_flag=True,
              help="Do not ask before deactivating the models FILE leaves out.")
@with_appcontext
def apply_catalog(file: str, reason: str, yes: bool) -> None:
    """Make the catalog match FILE, all or nothing. A file that leaves models out deactivates
    them: it asks first (as the console does), and applies what was confirmed."""
    if not reason.strip():
        raise click.UsageError("--reason must say why: it is recorded in every model's history")
    args, asked = {"catalog": _read_json(file), "reason": reason}, False
    if not yes:
        planned = _run_file("catalog:planCatalog", {"catalog": args["catalog"]})
        warning = left_out_warning(by_outcome(planned))
        if warning:
            click.echo("\n".join(describe_plan(planned)))
            click.secho(f"warning: {warning}", fg="yellow")
            asked = click.confirm("Apply it?", abort=True)
            args["planVersion"] = planned["catalogVersion"]  # unless it changed since
    plan = _run_file("catalog:applyCatalog", args)
    if not asked:  # (the plan asked about is what was applied)
        click.echo("\n".join(describe_plan(plan)))
    grouped = by_outcome(plan)
    changed = any(grouped[group] for group in ("created", "changed", "deactivated"))
    click.echo("Applied." if changed else "Nothing to change: the catalog already matches.")


def parse_time(text: str) -> int:
    """--at: ISO 8601 (UTC when it names no offset: 2026-07-01, 2026-07-01T09:30,
    2026-07-01T09:30:00+02:00) or milliseconds since the epoch."""
    if text.isascii() and text.isdigit():  # ("²" is a digit, not a number)
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time (2026-07-01T09:30Z) or "
                                 "milliseconds since the epoch", param_hint="--at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(value, limit: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _component(change: dict) -> str:
    when = ", ".join(f"{k}={v}" for k, v in change.get("when", {}).items())
    text = f"    {change['unit']}{f' [{when}]' if when else ''}: {change['old'] or '-'} -> " \
           f"{change['new'] or '-'}"
    if "newTiers" in change:
        text += f" (tiers {_short(change['oldTiers'], 60)} -> {_short(change['newTiers'], 60)})"
    return text


def describe_import(plan: dict, verbose: bool, counts: dict | None = None) -> list[str]:
    """The import plan as text: what it creates and changes (old -> new), what it leaves."""
    lines = []
    for model in plan["created"]:
        lines.append(f"+ create {model['modelId']} ({model['contentType']}, "
                     f"{model['provider']})")
    when = f" from {_when(plan['at'])}" if plan["at"] is not None else ""
    for change in plan["priceChanges"]:
        percent = change["changePercent"]
        typical = (f"{change['oldUsd']} -> {change['newUsd']} USD"
                   f"{f' ({float(percent):+.1f}%)' if percent is not None else ''} for "
                   f"{change['usage']}" if change["usage"] else "no typical request to compare")
        lines.append(f"$ price {change['modelId']}{when}: {typical}")
        lines += [_component(c) for c in change["components"]]
        lines += [f"    cancels the price scheduled from {_when(start)}"
                  for start in change["cancelled"]]
        others = [c for c in change["changes"] if c["field"] != "prices"]
        lines += [f"    {c['field']}: {_short(c['old'])} -> {_short(c['new'])}" for c in others]
    for change in plan["fieldChanges"]:
        lines.append(f"~ change {change['modelId']}")
        lines += [f"    {c['field']}: {_short(c['old'])} -> {_short(c['new'])}"
                  for c in change["changes"]]
    for kept in plan["localEditsKept"]:
        lines.append(f"= local edits kept {kept['modelId']}: {', '.join(kept['fields'])} "
                     "(--overwrite-local-edits to replace them)")
    for done in plan["localEditsOverwritten"]:
        lines.append(f"! local edits overwritten {done['modelId']}: {', '.join(done['fields'])}")
    for locked in plan["locked"]:
        lines.append(f"# locked, skipped {locked['modelId']}: {', '.join(locked['fields'])}")
    missing = plan["notRepresentable"]
    if missing:
        lines.append(f"Not representable: {len(missing)} entr"
                     f"{'y' if len(missing) == 1 else 'ies'}, by reason:")
        lines += [f"  {n:5d}  {reason}" for reason, n in plan["notRepresentableByReason"].items()]
        if verbose:
            lines += [f"  - {', '.join(item['keys'])}: {'; '.join(item['reasons'])}"
                      for item in missing]
        else:
            lines.append("  (--verbose lists them by key)")
    if plan["notesByReason"]:
        lines.append(f"Left out of imported models (not prices of a request, or fields the spec "
                     f"refuses), {len(plan['notes'])} models, by note:")
        lines += [f"  {n:5d}  {note}" for note, n in plan["notesByReason"].items()]
        if verbose:
            lines += [f"  - {item['modelId']}: {'; '.join(item['notes'])}"
                      for item in plan["notes"]]
    if plan["newDefault"]:
        lines.append(f"No model was active: {plan['newDefault']} becomes the default")
    c = plan["counts"]
    lines.append(f"{c['created']} to create ({'active' if plan['activate'] else 'inactive'}), "
                 f"{c['priceChanges']} price changes{when}, {c['fieldChanges']} field changes, "
                 f"{c['unchanged']} unchanged, {c['localEditsKept']} with local edits kept, "
                 f"{c['locked']} locked, {c['notRepresentable']} not representable")
    if counts:
        share = c["notRepresentablePriced"] / counts["priced"] if counts["priced"] else 0
        lines.append(f"Source: {counts['entries']} entries, {counts['priced']} priced; not "
                     f"representable: {c['notRepresentablePriced']} priced entries "
                     f"({share:.1%})")
    if plan["priceChanges"]:
        lines.append("Prices: USD per 1M tokens, per image, per second, per 1K characters, per "
                     "hour of audio; the change in % is that of the typical request named.")
    return [line for line in lines if line]


class _Bar:
    """A progress bar on standard error for each stage of a long import."""

    MIN = 200  # below this many items, no bar

    def __init__(self) -> None:
        self.bar, self.stage = None, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if total < self.MIN:
            return
        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = click.progressbar(length=total, label=f"{stage:9s}", file=sys.stderr,
                                         show_pos=True)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@catalog_cli.command("import-prices")
@click.argument("source", type=click.Choice(("litellm", "genai-prices")))
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--provider", "providers", multiple=True,
              help="Only this provider (LiteLLM litellm_provider, genai-prices provider id); "
                   "repeat for more.")
@click.option("--at", "at", help="Schedule the price changes for this time (ISO 8601, UTC "
                                 "unless it says; or ms since the epoch).")
@click.option("--verbose", is_flag=True, help="List entries that are not representable by key.")
@click.option("--apply", "apply_", is_flag=True, help="Apply the plan (all or nothing).")
@click.option("--reason", help="Why: recorded in every changed model's history (with --apply).")
@click.option("--activate", is_flag=True, help="Create new models active (default: inactive).")
@click.option("--overwrite-local-edits", is_flag=True,
              help="Replace fields changed in the catalog since the last import from SOURCE.")
@with_appcontext
def import_prices(source: str, file: str | None, providers: tuple[str, ...], at: str | None,
                  verbose: bool, apply_: bool, reason: str | None, activate: bool,
                  overwrite_local_edits: bool) -> None:
    """Import a public price map: print the plan (changes nothing), or with --apply --reason
    apply it. SOURCE is litellm (FILE: a LiteLLM model_prices_and_context_window.json) or
    genai-prices (the installed package's data)."""
    from functions import imports, sources

    if source == "litellm" and file is None:
        raise click.UsageError("litellm needs FILE: a model_prices_and_context_window.json")
    if source == "genai-prices" and file is not None:
        raise click.UsageError("genai-prices reads the installed package; give no FILE")
    if apply_ and not (reason or "").strip():
        raise click.UsageError("--apply needs --reason TEXT, saying why")
    data = _read_json(file, keys_twice=True) if file else None
    options = {"activate": activate, "overwriteLocalEdits": overwrite_local_edits}
    if at is not None:
        options["at"] = parse_time(at)
    bar = _Bar()
    try:
        with imports.progress(bar):
            size = sources.litellm_entries(data) if isinstance(data, dict) else 0
            if source == "genai-prices":
                from genai_prices.data import providers as genai

                size = sum(len(p.models) for p in genai)
            converted = sources.convert(
                source, data, providers, progress=_counting(bar, "reading", size))
            args = {**converted.args(), "options": options}
            if apply_:
                args["reason"] = reason
            plan = _run_file("catalog:importPrices" if apply_ else "catalog:planImport", args,
                             source=imports.history_source(source))
    finally:
        bar.close()
    lines = describe_import(plan, verbose, {"entries": converted.entries,
                                            "priced": converted.priced})
    click.echo("\n".join(lines))
    c = plan["counts"]
    held = c["locked"] + c["localEditsKept"]
    nothing = ("Nothing to apply: the catalog already says what the map says." if not held else
               f"Nothing was applied: the {held} models that differ are locked or keep their "
               "local edits (above).")
    click.echo((nothing if not (c["created"] or c["changed"]) else "Applied.") if apply_ else
               "Nothing was changed (--apply --reason TEXT applies this plan).")


def _counting(bar: _Bar, stage: str, total: int):
    done = [0]

    def advance(n: int) -> None:
        done[0] += n
        if done[0] % 50 == 0 or done[0] >= total:
            bar(stage, min(done[0], total), total)

    return advance


@click.group("monitor", cls=ExplainedGroup)
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
        try:
            done = run_round(app)
        except Exception as error:  # as a service it outlives a database restart
            said = message_of(error)
            if once or said is None:  # once: one line, exit 1 (a timer runs it again)
                raise
            click.echo(f"warning: this round failed, the next is in {seconds:g} s: {said}",
                       err=True)
        else:
            alerts = done.get("health", {}).get("alerts", [])
            for alert in alerts:
                click.echo(f"{alert['modelId']}: {alert['from']} -> {alert['to']}"
                           + (f" ({alert['action']})" if alert["action"] else ""))
            click.echo(round_summary(done))
        if once:
            return
        time.sleep(seconds)


def round_summary(done: dict) -> str:
    """One line of what a monitor round did: each job it ran, or that none was due."""
    parts = []
    if "health" in done:
        parts.append(f"health: {done['health']['evaluated']} models judged, "
                     f"{len(done['health']['alerts'])} alerts")
    if "rollUp" in done:
        moved = done["rollUp"]
        parts.append(f"usage: {moved['minutes']} minute rows, {moved['hours']} hour rows, "
                     f"{moved['days']} day rows rolled up, {moved['eventIds']} event ids "
                     "forgotten")
    if "deliveries" in done:
        states = Counter(d["state"] for d in done["deliveries"])
        parts.append("webhooks: " + (", ".join(f"{n} {state}" for state, n in
                                               sorted(states.items())) or "none due"))
    return "; ".join(parts) or ("no job was due (another process ran them this round, or "
                                "they ran less than an interval ago)")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(bootstrap)
    app.cli.add_command(write_docs)
    app.cli.add_command(catalog_cli)
    app.cli.add_command(monitor_cli)
