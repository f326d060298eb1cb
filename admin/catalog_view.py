"""Import and export: download the catalog file; upload one, read the plan, confirm to apply;
import a public price map (LiteLLM or genai-prices) the same way."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Response, flash, redirect, request, url_for
from flask_admin import BaseView, expose

from admin import money
from admin.access import SignedIn
from admin.calls import RefusedError, run
from admin.console_json import ConsoleJsonError, decode_console_json, text_of_file
from admin.numbers import whole_number
from admin.price_import import (
    LIST_AT_MOST,
    SOURCES,
    FormError,
    describe_applied,
    read_form,
    typed_form,
)
from functions import sources
from functions.catalog import LARGEST_VERSION
from functions.plan import by_outcome, left_out_warning

# An apply of a plan made before another change (STALE_PLAN): the plan is shown again.
STALE_PLAN = ("Not applied: the catalog changed since that plan was made (another edit or "
              "import). This is the plan now: review it, then apply.")


def plan_version() -> dict:
    """The apply form's `planVersion` (the plan's catalogVersion), when it carries one."""
    version = whole_number(request.form.get("plan_version", ""), high=LARGEST_VERSION)
    return {} if version is None else {"planVersion": version}


def errors_once(refusal: RefusedError) -> list[dict]:
    """The refusal's errors, each once (in their order)."""
    seen, out = set(), []
    for error in refusal.data.get("errors", []) or []:
        key = (error.get("entry"), error.get("modelId"), error.get("field"), error.get("message"))
        if key not in seen:
            seen.add(key)
            out.append(error)
    return out


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "…"


def component_text(change: dict) -> str:
    """One price component's change: "1M input tokens: $2.50 → $2.00"."""
    unit = money.unit(change["unit"])
    old = "not priced" if change["old"] is None else money.usd(change["old"])
    new = "not priced" if change["new"] is None else money.usd(change["new"])
    when = f" ({money.condition(change)})" if change.get("when") else ""
    return f"per {unit}{when}: {old} → {new}"


class CatalogFileView(SignedIn, BaseView):
    def render(self, template, **kwargs):
        kwargs.setdefault("price_sources", SOURCES)
        kwargs.setdefault("list_at_most", LIST_AT_MOST)
        kwargs.setdefault("short", _short)
        kwargs.setdefault("component_text", component_text)
        kwargs.setdefault("usd", money.usd)
        return super().render(template, **kwargs)

    @expose("/")
    def index(self):
        return self.render("catalog/catalog_file.html")

    @expose("/export")
    def export(self):
        text = json.dumps(run("catalog:exportCatalog"), indent=2, sort_keys=True,
                          ensure_ascii=False) + "\n"
        name = f"catalog-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
        return Response(text, mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    # -- a catalog file ------------------------------------------------------------------------

    def _uploaded(self) -> tuple[str, dict | None]:
        upload = request.files.get("file")
        try:
            text = text_of_file(upload.read()) if upload else request.form.get("content", "")
        except ConsoleJsonError as error:
            flash(f"The file cannot be read: {error}", "error")
            return "", None
        if not text.strip():
            flash("Choose a catalog file to upload: a JSON file, as Export writes it.", "error")
            return text, None
        try:
            catalog = decode_console_json(text)
        except ConsoleJsonError as error:
            flash(f"The file cannot be read: {error}", "error")
            return text, None
        if not isinstance(catalog, dict):
            flash("The file must hold a JSON object with formatVersion and models.", "error")
            return text, None
        return text, catalog

    def _refused(self, refusal: RefusedError, applying: bool):
        return self.render("catalog/catalog_file.html", refusal=refusal,
                           errors=errors_once(refusal), applying=applying)

    @expose("/plan", methods=("POST",))
    def plan(self):
        text, catalog = self._uploaded()
        if catalog is None:
            return redirect(url_for(".index"))
        return self._planned(text, catalog)

    def _planned(self, text: str, catalog: dict, stale: bool = False):
        """The file's plan, to review; the apply form carries the catalog version it was made
        at, so that what is applied is what was reviewed."""
        try:
            plan = run("catalog:planCatalog", {"catalog": catalog})
        except RefusedError as refusal:
            return self._refused(refusal, applying=False)
        plan = by_outcome(plan)
        if stale:
            flash(STALE_PLAN, "error")
        return self.render("catalog/catalog_file.html", plan=plan, content=text,
                           left_out=left_out_warning(plan))

    @expose("/apply", methods=("POST",))
    def apply(self):
        text, catalog = self._uploaded()
        if catalog is None:
            return redirect(url_for(".index"))
        args = {"catalog": catalog, "reason": request.form.get("reason") or "import"}
        args.update(plan_version())
        try:
            plan = by_outcome(run("catalog:applyCatalog", args))
        except RefusedError as refusal:
            if refusal.data.get("code") == "STALE_PLAN":
                return self._planned(text, catalog, stale=True)
            return self._refused(refusal, applying=True)
        flash(f"Applied: {len(plan['created']):,} created, {len(plan['changed']):,} changed, "
              f"{len(plan['deactivated']):,} deactivated.", "success")
        return redirect(url_for(".index"))

    # -- a public price map --------------------------------------------------------------------

    def _price_plan(self, applying: bool):
        try:
            form = read_form()
        except FormError as error:
            return None, self.render("catalog/catalog_file.html", price_error=str(error),
                                     price_form=typed_form()), None
        try:
            converted = sources.convert(form.source, form.data, form.providers)
        except Exception as error:  # noqa: BLE001 - a map the converter cannot read at all
            message = getattr(error, "message", None) or f"The map cannot be converted: {error}"
            return None, self.render("catalog/catalog_file.html", price_error=message,
                                     price_form=form), None
        args = {**converted.args(), "options": form.options()}
        if applying:
            args["reason"] = request.form.get("reason", "").strip()
            args.update(plan_version())
        try:
            plan = run("catalog:importPrices" if applying else "catalog:planImport", args)
        except RefusedError as refusal:
            if refusal.data.get("code") == "STALE_PLAN":
                flash(STALE_PLAN, "error")
                return None, self.price_plan(), None
            return None, self.render("catalog/catalog_file.html", price_refusal=refusal,
                                     errors=errors_once(refusal), applying=applying,
                                     price_form=form), None
        read = {"entries": converted.entries, "priced": converted.priced,
                "models": len(converted.models),
                "merged": sum(len(m["keys"]) for m in converted.models)}
        return plan, None, (form, read)

    @expose("/prices/plan", methods=("POST",))
    def price_plan(self):
        plan, page, extra = self._price_plan(applying=False)
        if page is not None:
            return page
        form, read = extra
        return self.render("catalog/catalog_file.html", price_plan=plan, price_form=form,
                           price_read=read)

    @expose("/prices/apply", methods=("POST",))
    def price_apply(self):
        if not request.form.get("reason", "").strip():
            flash("Say why: the reason is recorded in every changed model's history.", "error")
            return redirect(url_for(".index"))
        plan, page, _ = self._price_plan(applying=True)
        if page is not None:
            return page
        flash(describe_applied(plan), "success")
        return redirect(url_for(".index"))
