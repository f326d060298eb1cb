"""Console pages beside the models screen: users, tokens, webhooks and your account (home,
usage and alerts: admin/operations.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask import flash, redirect, request, session, url_for
from flask_admin import BaseView, expose

from admin.access import SignedIn
from admin.auth import check_password_throttled, current_identity
from admin.calls import RefusedError, run, run_or_flash
from admin.labels import counted
from admin.model_view import Verb
from admin.numbers import too_large, whole_number
from engine.runtime import ROLES, SCOPES, SIGNED_IN
from engine.throttle import ThrottledError
from functions.webhooks import KINDS

Question = Callable[[dict], tuple[str, list[str]] | None]  # a document: what to ask, or None


class AsksFirst:
    """A page whose changes that cannot be undone are asked about on a page of their own first
    (catalog/confirm.html, as the models' risky actions are): its button posts the same form
    again, confirmed."""

    def ask_first(self, verb: Verb, listing: str, name: str, question: Question):
        """The page asking `question` of the document named `name` in what the query
        `listing` answers; None to go on: once confirmed, or with nothing to ask about (none
        by that name, or the listing refused): the function then says why not."""
        if request.form.get("confirmed") == "1":
            return None
        try:
            found = next((each for each in run(listing) if each["name"] == name), None)
        except RefusedError:
            return None
        asked = question(found) if found is not None else None
        if asked is None:
            return None
        title, effects = asked
        return self.render("catalog/confirm.html", question=title, effects=effects, verb=verb,
                           models=[], shown=[], acting=1, back=url_for(".index"),
                           fields={"name": [name], "confirmed": ["1"]}, action=request.path,
                           reason=False)


class UsersView(SignedIn, BaseView):
    required_scope = write_scope = "admin"

    @expose("/")
    def index(self):
        return self.render("catalog/users.html", users=run("access:listUsers"), roles=ROLES)

    @expose("/create", methods=("POST",))
    def create(self):
        form = request.form
        run_or_flash("access:createUser", {
            "email": form.get("email", "").strip(), "role": form.get("role", ""),
            "password": form.get("password") or None,
        }, f"Added {form.get('email', '')}.")
        return redirect(url_for(".index"))

    @expose("/update", methods=("POST",))
    def update(self):
        form = request.form
        active = {"1": True, "0": False}.get(form.get("isActive", ""))
        if active is None:  # a form that does not say is no reason to disable an account
            flash("Not saved: say whether the account is active.", "error")
            return redirect(url_for(".index"))
        run_or_flash("access:updateUser", {
            "email": form.get("email", ""), "role": form.get("role", ""), "isActive": active,
        }, f"Saved {form.get('email', '')}.")
        return redirect(url_for(".index"))

    @expose("/sign-out", methods=("POST",))
    def sign_out(self):
        """End every session of a user: they must sign in again, in every browser."""
        email = request.form.get("email", "")
        run_or_flash("access:signOutUser", {"email": email}, f"Signed {email} out everywhere.")
        return redirect(url_for(".index"))


DELETE_WEBHOOK = Verb("Delete", "models:deleteWebhook", scope="admin", danger=True)
REVOKE_TOKEN = Verb("Revoke", "access:revokeToken", scope="admin", danger=True)


class WebhooksView(AsksFirst, SignedIn, BaseView):
    """Where alerts are sent: each webhook with its deliveries and why the last one failed;
    add, change the URL, switch off or on, send given-up deliveries again, delete."""

    required_scope = write_scope = "admin"

    @expose("/")
    def index(self, created: dict | None = None, typed: dict | None = None):
        return self.render("catalog/webhooks.html", webhooks=run("models:listWebhooks"),
                           kinds=KINDS, created=created, typed=typed or {})

    @expose("/create", methods=("POST",))
    def create(self):
        args = {key: request.form.get(key, "").strip() for key in ("name", "kind", "url")}
        hook = run_or_flash("models:createWebhook", args)
        if hook is None:
            return self.index(typed=args)
        flash(f"Added {hook['name']}.", "success")
        return self.index(created=hook)

    @expose("/update", methods=("POST",))
    def update(self):
        form, args = request.form, {"name": request.form.get("name", "")}
        if "url" in form:
            args["url"] = form["url"].strip()
        if "isActive" in form:
            active = {"1": True, "0": False}.get(form["isActive"])
            if active is None:  # a form that does not say is no reason to switch it off
                flash("Not saved: say whether the webhook is on.", "error")
                return redirect(url_for(".index"))
            args["isActive"] = active
        run_or_flash("models:updateWebhook", args, f"Saved {args['name']}.")
        return redirect(url_for(".index"))

    @expose("/retry", methods=("POST",))
    def retry(self):
        name = request.form.get("name", "")
        hook = run_or_flash("models:retryWebhook", {"name": name})
        if hook is not None and not hook["retried"]:  # a second click, an old page
            flash(f"{name} has no given-up deliveries to send again.", "info")
        elif hook is not None:
            sent = counted(hook["retried"], "given-up delivery", "given-up deliveries")
            flash(f"{sent} to {name} will be sent again "
                  + ("now." if hook["isActive"] else "once the webhook is on."), "success")
        return redirect(url_for(".index"))

    @expose("/delete", methods=("POST",))
    def delete(self):
        name = request.form.get("name", "")
        asking = self.ask_first(DELETE_WEBHOOK, "models:listWebhooks", name, _deleting)
        if asking is not None:
            return asking
        run_or_flash(DELETE_WEBHOOK.function, {"name": name},
                     f"Deleted {name} and its queued deliveries.")
        return redirect(url_for(".index"))


def _deleting(hook: dict) -> tuple[str, list[str]]:
    pending, failed = hook["deliveries"]["pending"], hook["deliveries"]["failed"]
    return f"Delete the webhook {hook['name']}?", [
        f"Alerts are no longer sent to {hook['url']}.",
        *([f"Its {counted(pending, 'pending delivery', 'pending deliveries')} will never be "
           "sent."] if pending else []),
        *([f"Its {counted(failed, 'given-up delivery', 'given-up deliveries')} can no longer "
           "be sent again."] if failed else []),
        "This cannot be undone: added again, it starts with no deliveries"
        + (" and a new secret." if hook["kind"] == "signed" else ".")]


class AccountView(SignedIn, BaseView):
    """The signed-in user's own account: change the password (which signs out everywhere)."""

    write_scope = SIGNED_IN

    @expose("/")
    def index(self):
        return self.render("catalog/account.html", method=session.get("method"))

    @expose("/password", methods=("POST",))
    def change_password(self):
        form, email = request.form, current_identity().name
        args = {"currentPassword": form.get("currentPassword", ""),
                "newPassword": form.get("newPassword", "")}
        if args["newPassword"] != form.get("confirmPassword", ""):
            flash("The new password and its confirmation differ.", "error")
            return redirect(url_for(".index"))
        try:
            changed = check_password_throttled(email, lambda: _changed(args))
        except ThrottledError:
            flash("Too many wrong passwords; try again later.", "error")
            return self.render("catalog/account.html", method=session.get("method")), 429
        except RefusedError as refusal:
            flash(refusal.message, "error")
            return redirect(url_for(".index"))
        if not changed:
            return redirect(url_for(".index"))
        session.clear()
        flash("Password changed; every session of yours has ended. Sign in with the new one.",
              "info")
        return redirect(url_for("auth.sign_in"))


def _changed(args: dict) -> bool | None:
    """Change the password; None (a failure the throttle counts) for a wrong current one."""
    try:
        run("access:changePassword", args)
    except RefusedError as refusal:
        if refusal.field == "currentPassword":
            flash(refusal.message, "error")
            return None
        raise
    return True


class TokensView(AsksFirst, SignedIn, BaseView):
    required_scope = write_scope = "admin"

    @expose("/")
    def index(self, new_token: dict | None = None, typed: dict | None = None):
        return self.render("catalog/tokens.html", tokens=run("access:listTokens"),
                           scopes=SCOPES, new_token=new_token, typed=typed or {})

    @expose("/create", methods=("POST",))
    def create(self):
        args = {"name": request.form.get("name", "").strip(),
                "scopes": request.form.getlist("scopes")}
        days = request.form.get("expiresInDays", "").strip()
        typed = {**args, "expiresInDays": days}  # shown again with a refusal
        count = whole_number(days, high=10**18)  # past its bound: the function says which
        if days and count is None:  # the function would say "got a string"
            flash("Expires in (days): more days than a token can last." if too_large(days) else
                  "Expires in (days): a whole number of days (digits 0-9), or empty for a "
                  "token that does not expire.", "error")
            return self.index(typed=typed)
        if days:
            args["expiresInDays"] = count
        token = run_or_flash("access:createToken", args)
        if token is None:
            return self.index(typed=typed)
        return self.index(new_token=token)

    @expose("/revoke", methods=("POST",))
    def revoke(self):
        name = request.form.get("name", "")
        asking = self.ask_first(REVOKE_TOKEN, "access:listTokens", name, _revoking)
        if asking is not None:
            return asking
        run_or_flash(REVOKE_TOKEN.function, {"name": name}, f"Revoked {name}.")
        return redirect(url_for(".index"))


def _revoking(token: dict) -> tuple[str, list[str]] | None:
    if token["revokedAt"]:
        return None  # nothing to ask: revoking it again changes nothing
    if token["state"] == "active":
        effect = (f"Every caller using it (mc_{token['prefix']}_…) is refused from its next "
                  "call, on every host and in every live session.")
    else:  # expired: refused already
        effect = "It has expired, so its callers are refused already: revoked, it is listed so."
    return f"Revoke the token {token['name']}?", [
        effect, "This cannot be undone: make a new token to let them in again."]
