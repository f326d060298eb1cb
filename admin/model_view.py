"""The models screen: a declarative Flask-Admin view whose every change runs a mutation."""

from __future__ import annotations

import json
import time

from flask import flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.form import rules
from flask_admin.helpers import get_form_data, get_redirect_target
from markupsafe import Markup

from admin import money
from admin.access import SignedIn
from admin.calls import RefusedError, run, run_or_flash
from admin.forms import FORM_GROUPS, CsrfForm, ModelForm
from admin.numbers import number_or_text, whole_number
from db.schema import Model
from engine.values import Array
from functions import spec
from functions.documents import config_of
from functions.pricing import schedule_of

ROW_ACTIONS = {
    # name: (function, success message)
    "delete": ("models:deleteModel", "{} deleted (it can be restored)."),
    "restore": ("models:restoreModel", "{} restored."),
    "set-default": ("models:setDefaultModel", "{} is now the default model."),
    "lock": ("models:lockModel", "{} locked."),
    "unlock": ("models:unlockModel", "{} unlocked."),
}


MAX_PAGE = 100_000


def _row_id(value) -> int | None:
    return whole_number(value, low=1)


def _status(view, context, model, name) -> Markup:
    badges = [
        ("Active", "success") if model.is_active else ("Inactive", "secondary"),
        ("Default", "primary") if model.is_default else None,
        ("Premium", "warning") if model.is_premium else None,
        ("Deleted", "dark") if model.is_deprecated else None,
        ("Locked", "danger") if model.is_locked else None,
    ]
    return Markup(" ").join(
        Markup('<span class="badge badge-{} status-{}">{}</span>').format(
            kind, label.lower(), label)
        for label, kind in filter(None, badges)
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def _money(view, context, model, name) -> str:
    return money.summary(schedule_of(model), now_ms())


def _json(view, context, model, name) -> Markup | str:
    value = getattr(model, name)
    if value in (None, {}):
        return ""
    return Markup("<pre class='mb-0'>{}</pre>").format(
        json.dumps(value, indent=2, sort_keys=True))


def _listing(view, context, model, name) -> str:
    value = getattr(model, name) or []
    suffix = " s" if name == "supported_durations" and value else ""
    return ", ".join(str(x) for x in value) + suffix


class CatalogModelView(SignedIn, ModelView):
    list_template = "catalog/model_list.html"
    details_template = "catalog/model_details.html"

    create_template = "catalog/model_create.html"
    edit_template = "catalog/model_edit.html"
    form = ModelForm
    form_base_class = CsrfForm
    # Grouped as the model spec groups its fields; the reason and revision close the form.
    form_create_rules = form_edit_rules = [
        *(rules.FieldSet(names, title) for title, names in FORM_GROUPS),
        "reason", "expectedRevision", "csrf_token",
    ]
    can_view_details = True
    can_export = False
    page_size = 20
    can_set_page_size = True

    # Columns, labels, filters and details come from the model spec (functions/spec.py).
    column_list = [*(spec.BY_NAME[n].attr for n in spec.LISTED if not n.startswith("is")),
                   "price", "status"]
    column_labels = {**{f.attr: f.label for f in spec.FIELDS}, "price": "Price"}
    column_formatters = {"status": _status, "price": _money,
                         "supported_durations": _listing, "supported_qualities": _listing,
                         "capabilities": _listing, "input_modalities": _listing,
                         "output_modalities": _listing, "tags": _listing}
    column_formatters_detail = {
        **column_formatters,
        **dict.fromkeys(
            ["input_schema", "model_parameters", "requirements", "quality_multipliers"], _json),
    }
    column_sortable_list = ["name", "model_id", "provider", "content_type",
                            ("status", Model.is_active)]
    column_default_sort = ("id", False)
    column_searchable_list = ["model_id", "name", "provider"]
    column_editable_list = ["name", "category"]  # inline, through models:updateModel too
    column_filters = [spec.BY_NAME[n].attr for n in spec.FILTERABLE
                      if not isinstance(spec.BY_NAME[n].validator, Array)]
    # Prices have their own table on the details page.
    column_details_list = [f.attr for f in spec.FIELDS
                           if f.group not in ("prices", "state")] + ["revision"]

    # -- who may do what (checked per request) ---------------------------------------------

    @property
    def can_create(self) -> bool:
        return self.can_write

    @property
    def can_edit(self) -> bool:
        return self.can_write

    @property
    def can_delete(self) -> bool:
        return self.can_write

    def is_action_allowed(self, name: str) -> bool:
        return self.can_write

    def _get_list_extra_args(self):
        """Page, size and sort from the URL, read as ASCII numbers within what the database
        can take; anything else is the default."""
        view_args = super()._get_list_extra_args()
        number = {name: whole_number(request.args.get(name))
                  for name in ("page", "page_size", "sort", "desc")}
        view_args.page = min(number["page"] or 0, MAX_PAGE)
        view_args.page_size = number["page_size"] if number["page_size"] in \
            self.page_size_options else self.page_size
        view_args.sort, view_args.sort_desc = number["sort"], number["desc"]
        return view_args

    def get_one(self, id):
        """A model by its row id; anything that is not one (text, huge numbers) finds nothing."""
        pk = _row_id(id)
        return None if pk is None else super().get_one(str(pk))

    # -- forms -------------------------------------------------------------------------------

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        model = self.get_one(request.args.get("id", ""))
        if model is not None and model.is_locked:
            flash(f"{model.model_id} is locked; an admin must unlock it before it can be edited.",
                  "error")
            return redirect(self.get_url(".details_view", id=model.id))
        return super().edit_view()

    def edit_form(self, obj=None):
        data = {**config_of(obj), "expectedRevision": obj.revision}
        form = self._edit_form_class(get_form_data(), data=data)
        form.modelId.render_kw = {"readonly": True}
        return form

    def _refused(self, form, refusal: RefusedError) -> None:
        field = (refusal.field or "").removeprefix("patch.").split(".")[0].split("[")[0]
        if field in form:
            form[field].errors = [*form[field].errors, refusal.message]
        flash(refusal.message, "error")

    def create_model(self, form):
        config = {k: v for k, v in form.config().items() if v is not None}
        for optional in ("version", "contentType"):
            if config.get(optional) == "":
                config.pop(optional)
        args = {"modelId": form.modelId.data.strip(), **config}
        if form.reason.data:
            args["reason"] = form.reason.data
        try:
            created = run("models:createModel", args)
        except RefusedError as refusal:
            self._refused(form, refusal)
            return False
        return self.get_one(created["_id"])

    @expose("/ajax/update/", methods=("POST",))
    def ajax_update(self):
        """Inline edit; a refusal is the caller's 400 with the reason, not Flask-Admin's 500."""
        answer = super().ajax_update()
        if isinstance(answer, tuple) and answer[1] == 500:
            return answer[0], 400
        return answer

    def update_model(self, form, model) -> bool:
        if hasattr(form, "list_form_pk"):  # an inline edit of one column
            return self._update_inline(form, model)
        current = config_of(model)
        wanted = form.config()
        if wanted.get("maxDuration", 0) is None:
            wanted.pop("maxDuration")
        patch = {k: v for k, v in wanted.items() if current.get(k) != v}
        args = {"modelId": model.model_id, "patch": patch}
        revision = str(form.expectedRevision.data or "").strip()  # int when not posted
        if revision:  # a tampered value is the mutation's to refuse, not a crash here
            args["expectedRevision"] = number_or_text(revision)
        if form.reason.data:
            args["reason"] = form.reason.data
        try:
            run("models:updateModel", args)
        except RefusedError as refusal:
            self._refused(form, refusal)
            return False
        return True

    INLINE = {"name": "name", "category": "category"}  # column -> mutation field

    def _update_inline(self, form, model) -> bool:
        patch = {field: form[column].data for column, field in self.INLINE.items()
                 if column in form}
        try:
            run("models:updateModel", {"modelId": model.model_id, "patch": patch})
        except RefusedError as refusal:
            flash(refusal.message, "error")
            return False
        return True

    def delete_model(self, model) -> bool:
        return run_or_flash("models:deleteModel", {"modelId": model.model_id},
                            f"{model.model_id} deleted (it can be restored).") is not None

    # -- row actions (POST, CSRF-checked) -------------------------------------------------

    @expose("/row-action/<verb>/", methods=("POST",))
    def row_action(self, verb: str):
        back = get_redirect_target() or self.get_url(".index_view")
        model = self.get_one(request.form.get("id", ""))
        if model is None:
            flash("No such model.", "error")
            return redirect(back)
        model_id = model.model_id
        if verb == "duplicate":
            new_id = request.form.get("newModelId", "").strip()
            copy = run_or_flash("models:duplicateModel", {"modelId": model_id,
                                                          "newModelId": new_id})
            if copy:  # the id as the catalog spells it (functions/ids.py)
                flash(f"{model_id} duplicated as {copy['modelId']} (inactive).", "success")
                return redirect(self.get_url(".details_view", id=copy["_id"]))
        elif verb in ("enable", "disable"):
            self._set_active([model_id], verb == "enable")
        elif verb in ROW_ACTIONS:
            path, message = ROW_ACTIONS[verb]
            run_or_flash(path, {"modelId": model_id}, message.format(model_id))
        else:
            flash(f"Unknown action {verb}.", "error")
        return redirect(back)

    def _set_active(self, model_ids: list[str], active: bool) -> None:
        result = run_or_flash("models:setModelsActive", {"isActive": active,
                                                         "modelIds": model_ids})
        if result is None:
            return
        verb = "enabled" if active else "disabled"
        if result["changed"]:
            flash(f"{', '.join(result['changed'])} {verb}.", "success")
        for skipped in result["skipped"]:
            flash(f"{skipped['modelId']} skipped: {skipped['reason']}.", "warning")

    # -- bulk actions ------------------------------------------------------------------------

    BULK = ("enable", "disable", "delete", "restore")

    def _model_ids(self, ids: list[str]) -> list[str]:
        pks = [pk for pk in map(_row_id, ids) if pk is not None]
        return [m.model_id for m in self.get_query().filter(Model.id.in_(pks)).order_by(Model.id)]

    @action("enable", "Enable", "Enable the selected models?")
    def action_enable(self, ids):
        self._set_active(self._model_ids(ids), True)

    @action("disable", "Disable", "Disable the selected models? Locked ones are skipped.")
    def action_disable(self, ids):
        self._set_active(self._model_ids(ids), False)

    @action("delete", "Delete", "Delete the selected models? They can be restored.")
    def action_delete(self, ids):
        for model_id in self._model_ids(ids):
            run_or_flash("models:deleteModel", {"modelId": model_id}, f"{model_id} deleted.")

    @action("restore", "Restore", "Restore the selected models?")
    def action_restore(self, ids):
        for model_id in self._model_ids(ids):
            run_or_flash("models:restoreModel", {"modelId": model_id}, f"{model_id} restored.")

    # -- what the details page shows ----------------------------------------------------------

    def prices(self, model) -> list[dict]:
        """The price schedule as money, entry by entry, the current and scheduled ones marked."""
        return money.schedule_rows(schedule_of(model), now_ms())

    def calculator(self, model) -> dict:
        """What the price calculator asks for: a video model's durations and qualities, or the
        usage counts and options its price in force takes."""
        usage, options = money.calculator_inputs(schedule_of(model), now_ms())
        return {"video": model.content_type == "video" and model.prices is None,
                "usage": usage, "options": options}

    def price_quote(self, model) -> dict:
        """The calculator's answer for what was picked on the details page."""
        if model.content_type == "video" and model.prices is None:
            return self._video_quote(model)
        usage = {key: whole_number(request.args.get(key, "")) for key in
                 self.calculator(model)["usage"] if request.args.get(key, "").strip()}
        if not request.args.get("calculate"):
            return {}
        options = {k: v for k, v in request.args.items()
                   if k in ("quality", "resolution", "size", "serviceTier") and v}
        bad = [k for k, v in usage.items() if v is None]
        if bad:
            return {"error": f"{', '.join(bad)}: whole numbers (digits 0-9), please."}
        try:
            answer = run("pricing:quote", {"modelId": model.model_id, "usage": usage,
                                           "options": options})
        except RefusedError as refusal:
            return {"error": refusal.message}
        lines = [f"{line['quantity']:,} × {money.price(line['unitPrice'], line['unit'])}"
                 f" = {money.usd(line['usdExact'])}" for line in answer["lines"]]
        return {"quote": answer, "lines": lines, "usd": money.usd(answer["usdExact"])}

    def _video_quote(self, model) -> dict:
        quality = request.args.get("quality")
        if not quality:
            return {}
        args = {"modelId": model.model_id, "quality": quality}
        duration = request.args.get("duration", "").strip()
        if duration:
            args["duration"] = number_or_text(duration)
        try:
            quote = run("pricing:getCreditCost", args)
        except RefusedError as refusal:
            return {"error": refusal.message}
        factor = f"{quote['qualityMultiplier']:g}"
        formula = (f"{quote['duration']} s × {money.price(quote['costPerSecond'], 'second')}"
                   f" × {factor}")
        return {"quote": quote, "lines": [formula], "usd": money.usd(quote["usdExact"])}

    def history(self, model) -> dict:
        try:
            return run("history:getModelHistory", {
                "modelId": model.model_id,
                "paginationOpts": {"numItems": 50, "cursor": request.args.get("cursor") or None},
            })
        except RefusedError as refusal:  # a hand-edited cursor in the URL
            return {"page": [], "isDone": True, "error": refusal.message}

    @expose("/revert/", methods=("POST",))
    def revert_view(self):
        back = get_redirect_target() or self.get_url(".index_view")
        model = self.get_one(request.form.get("id", ""))
        revision = whole_number(request.form.get("revision", ""), low=1)
        if model is None or revision is None:
            flash("Pick a model and a revision.", "error")
            return redirect(back)
        args = {"modelId": model.model_id, "revision": revision}
        if request.form.get("reason"):
            args["reason"] = request.form["reason"]
        run_or_flash("history:revertModel", args,
                     f"{model.model_id} reverted to revision {revision}.")
        return redirect(back)
