"""Import and export: download the catalog file; upload one, read the plan, confirm to apply."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Response, flash, redirect, request, url_for
from flask_admin import BaseView, expose

from admin.access import SignedIn
from admin.calls import RefusedError, run
from admin.console_json import ConsoleJsonError, decode_console_json


class CatalogFileView(SignedIn, BaseView):
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

    def _uploaded(self) -> tuple[str, dict | None]:
        upload = request.files.get("file")
        text = upload.read().decode("utf-8", "replace") if upload else request.form.get(
            "content", "")
        try:
            catalog = decode_console_json(text)
        except ConsoleJsonError as error:
            flash(f"The file cannot be read: {error}", "error")
            return text, None
        if not isinstance(catalog, dict):
            flash("The file must hold a JSON object with formatVersion and models.", "error")
            return text, None
        return text, catalog

    @expose("/plan", methods=("POST",))
    def plan(self):
        text, catalog = self._uploaded()
        if catalog is None:
            return redirect(url_for(".index"))
        try:
            plan = run("catalog:planCatalog", {"catalog": catalog})
        except RefusedError as refusal:
            return self.render("catalog/catalog_file.html", refusal=refusal)
        return self.render("catalog/catalog_file.html", plan=plan, content=text)

    @expose("/apply", methods=("POST",))
    def apply(self):
        text, catalog = self._uploaded()
        if catalog is None:
            return redirect(url_for(".index"))
        args = {"catalog": catalog, "reason": request.form.get("reason") or "import"}
        try:
            plan = run("catalog:applyCatalog", args)
        except RefusedError as refusal:
            return self.render("catalog/catalog_file.html", refusal=refusal)
        flash(f"Applied: {len(plan['created'])} created, {len(plan['changed'])} changed, "
              f"{len(plan['deactivated'])} deactivated.", "success")
        return redirect(url_for(".index"))
