"""The models screen: a declarative Flask-Admin view whose every change runs a mutation."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from flask import flash, g, has_app_context, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.form import rules
from flask_admin.helpers import get_form_data, get_redirect_target
from markupsafe import Markup
from sqlalchemy import String as Text
from sqlalchemy import cast, func, select

from admin import money, price_preview, stale
from admin.access import SignedIn
from admin.auth import current_identity
from admin.calls import RefusedError, run, run_or_flash
from admin.forms import FORM_GROUPS, CsrfForm, ModelForm, unchanged
from admin.labels import article, labelled, words
from admin.numbers import amount, number_or_text, whole_number
from admin.operations import parse_local
from admin.reading import reader
from db.schema import Model, ModelHistory
from engine.errors import FunctionError
from engine.values import Boolean, Literal, String
from functions import fields, prices, spec, states
from functions.documents import config_of
from functions.history import revert_changes
from functions.models import check_default_switch
from functions.pricing import schedule_of


@dataclass(frozen=True)
class Verb:
    """A risky action on models: its button, the mutation it runs (with what it says when
    done), who may, and whether it takes one model."""

    label: str
    function: str
    done: str = ""
    scope: str = "catalog:write"
    single: bool = False
    style: str = "btn-outline-secondary"
    danger: bool = False


VERBS = {
    "set-default": Verb("Set default", "models:setDefaultModel", "{} is now the default model.",
                        single=True, style="btn-outline-primary"),
    "enable": Verb("Enable", "models:setModelsActive"),
    "disable": Verb("Disable", "models:setModelsActive", danger=True),
    "delete": Verb("Delete", "models:deleteModel", "{} deleted (restorable).",
                   style="btn-outline-danger", danger=True),
    "restore": Verb("Restore", "models:restoreModel", "{} restored.",
                    style="btn-outline-success"),
    "lock": Verb("Lock", "models:lockModel", "{} locked.", scope="admin",
                 style="btn-outline-warning"),
    "unlock": Verb("Unlock", "models:unlockModel", "{} unlocked.", scope="admin",
                   style="btn-outline-warning"),
}
REVERT = Verb("Revert", "history:revertModel", danger=True)
BATCH = 1000  # models per models:setModelsActive call
ONE_BY_ONE = 500  # models an action that runs one mutation per model takes at once
SHOWN = 10  # a confirmation names this many models, then counts the rest


def _names(model_ids: list[str]) -> str:
    if len(model_ids) <= SHOWN:
        return ", ".join(model_ids)
    return f"{len(model_ids):,} models"


def _fingerprint(models: list[Model]) -> str:
    """Which models a selection holds, in a few characters."""
    ids = "\n".join(sorted(m.model_id for m in models))
    return hashlib.sha256(ids.encode()).hexdigest()[:24]


def _flash_few(messages: list[str], category: str, what: str) -> None:
    """The first SHOWN messages, then a count: messages travel in the session cookie, which a
    message per model of a 5,000-model selection would overflow."""
    for message in messages[:SHOWN]:
        flash(message, category)
    if len(messages) > SHOWN:
        flash(f"…and {len(messages) - SHOWN:,} more {what}.", category)


def _called(model: Model) -> str:
    return f"{model.name} ({model.model_id})"


def _state_word(model: Model, name: str) -> str | None:
    """Why an action passes a model by, when it does."""
    if model.is_locked:
        return "locked"
    if model.is_deprecated:
        return "deleted, so already off" if name == "disable" else "deleted (restore it first)"
    return None


def _not_default_because(model: Model, default: Model | None) -> str | None:
    """Why a model cannot be made the default, in setDefaultModel's own words (its checks,
    functions/models.py), or None when it can."""
    if model.is_default:
        return f"{_called(model)} is the default already"
    try:
        check_default_switch(current_identity(), model, default)
    except FunctionError as refused:
        return f"{_called(model)} cannot be made the default: {refused.message}"
    return None


def consequences(name: str, models: list[Model], default: Model | None,
                 others_stay_on: bool = False) -> tuple[str, list[str], int]:
    """The question a confirmation asks, and what will happen, in words. The question counts
    the models the action changes (those skipped or already so are said below it).
    `others_stay_on`: a model besides the default stays active after the action (so the
    default, which only goes off last, is skipped by disable)."""
    one = models[0]
    if name == "set-default":
        why = _not_default_because(one, default)
        if why is not None:
            return f"{VERBS[name].label}: nothing to do", [f"{why}."], 0
        return (f"Make {one.name} the default?", [
            f"{default.name} stops being the default." if default
            else "There is no default now."], 1)
    effects: list[str] = []
    default_stays = name == "disable" and others_stay_on
    passed = [(m, _state_word(m, name)) for m in models]
    if default_stays:
        passed = [(m, "the default; set another default first" if m.is_default and why is None
                   and m.is_active else why) for m, why in passed]
    if name in ("enable", "disable"):
        going = [m for m, why in passed if why is None and m.is_active != (name == "enable")]
        if name == "enable":
            effects += [f"{_called(m)} goes live: the frontend offers it"
                        + (", a copy never enabled before." if m.name.endswith("(copy)")
                           else ".") for m in going[:SHOWN]]
        else:
            effects += [f"{_called(m)} stops being offered to the frontend"
                        + (" (the default: only if every other model goes off too)."
                           if m.is_default else ".") for m in going[:SHOWN]]
        if len(going) > SHOWN:
            effects.append(f"… and {len(going) - SHOWN:,} more.")
        same = len([m for m, why in passed if why is None]) - len(going)
        if same == len(models):
            effects.append("Nothing changes: they are all "
                           + ("active" if name == "enable" else "inactive") + " already.")
        elif same:
            effects.append(f"{same:,} already {'active' if name == 'enable' else 'inactive'}: "
                           "unchanged.")
    elif name == "delete":
        effects.append("Deleted models go off and are kept with their history; "
                       "they can be restored.")
        if any(m.is_default for m in models):
            effects.append(f"{default.name} is the default: it cannot be deleted "
                           "(set another default first).")
    elif name == "restore":
        effects.append("Restored models come back active: the frontend offers them again.")
    elif name == "lock":
        effects.append("Locked models refuse edits, toggles and deletes until an admin "
                       "unlocks them.")
    elif name == "unlock":
        effects.append("Unlocked models can be edited, toggled and deleted again.")
    skipped = [(m, why) for m, why in passed
               if why and name not in ("lock", "unlock")
               and not (name == "restore" and m.is_deprecated and not m.is_locked)]
    effects += [f"{_called(m)} is skipped: {why}." for m, why in skipped[:SHOWN]]
    acting = [m for m in models if changes(name, m) and not (default_stays and m.is_default)]
    if not acting:
        if not any("Nothing changes" in e for e in effects):
            effects.append("Nothing changes: no model picked is in a state this acts on.")
        return f"{VERBS[name].label}: nothing to do", effects, 0
    many = f"{len(acting):,} models" if len(acting) > 1 else acting[0].name
    return f"{VERBS[name].label} {many}?", effects, len(acting)


TURNS = {"enable": states.ENABLE, "disable": states.DISABLE, "delete": states.DELETE,
         "restore": states.RESTORE, "lock": states.LOCK, "unlock": states.UNLOCK}


def changes(name: str, model: Model) -> bool:
    """Whether a bulk action changes this model, by the states table (functions/states.py):
    from one of its start states to another state, a locked model only by lock and unlock,
    and never the default deleted."""
    if name in ("lock", "unlock"):
        return model.is_locked != (name == "lock")
    turn, state = TURNS[name], states.state_of(model)
    return (not model.is_locked and state in turn.sources and state != turn.target
            and not (name == "delete" and model.is_default))


ALREADY = {"delete": "deleted", "restore": "active", "lock": "locked", "unlock": "unlocked"}


def already(name: str, model: Model) -> bool:
    """Whether a model is already what a one-by-one action makes it (its function would
    answer without a change)."""
    if name in ("lock", "unlock"):
        return model.is_locked == (name == "lock")
    return name in ALREADY and states.state_of(model) == TURNS[name].target


MAX_PAGE = 100_000


# Ids looked up per statement: PostgreSQL takes at most 65,535 parameters in one (a form can
# carry more ids than that).
ROWS_PER_QUERY = 10_000


def _checks(patch: dict) -> bool:
    """Whether updateModel's checks of the fields take `patch`: a price they refuse is not
    previewed (as a figure no quote would give), the mutation says why."""
    try:
        fields.PATCH.check(patch, "patch")
        return True
    except FunctionError:
        return False


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


def _name_link(view, context, model, name) -> Markup:
    """A model's name opens its details page."""
    return Markup('<a href="{}" class="model-name">{}</a>').format(
        view.get_url(".details_view", id=model.id, url=request.full_path.rstrip("?")),
        model.name)


def _values(column, caseless: bool = False) -> Callable[[], list[tuple[str, str]]]:
    """A filter's pick-list: the values the column holds now (one per spelling when the field
    ignores case, as its filter does)."""
    def options() -> list[tuple[str, str]]:
        if not has_app_context():  # Flask-Admin's start-up pass; read again per request
            return []
        found = [value for value in reader().scalars(
            select(column).distinct().order_by(column)) if value]
        if caseless:  # the first spelling of each, in the order of case-folded names
            spellings: dict[str, str] = {}
            for value in found:
                spellings.setdefault(value.casefold(), value)
            found = sorted(spellings.values(), key=str.casefold)
        return [(value, value) for value in found]
    return options


class EqualIgnoringCase(FilterEqual):
    """A caseless field of the spec (provider): 'openai' finds 'OpenAI', as listModels does."""

    def apply(self, query, value, alias=None):
        # both sides folded by the database, alike (SQLite's lower() folds ASCII only)
        return query.filter(func.lower(self.get_column(alias)) == func.lower(value))


def _capabilities() -> list[tuple[str, str]]:
    if not has_app_context():
        return []
    held = {c for row in reader().scalars(select(Model.capabilities)) for c in row or ()}
    return [(c, f"{c.replace('_', ' ')}: {spec.CAPABILITIES[c]}") for c in spec.CAPABILITIES
            if c in held]


class HoldsCapability(FilterEqual):
    """Models whose capabilities list holds the value (a JSON list, read as text)."""

    def apply(self, query, value, alias=None):
        if value not in spec.CAPABILITIES:  # only the vocabulary's words (no LIKE patterns)
            return query.filter(Model.id.is_(None))
        return query.filter(cast(Model.capabilities, Text).like(f'%"{value}"%'))

    def operation(self):
        return "includes"


def _listing(view, context, model, name) -> str:
    value = getattr(model, name) or []
    suffix = " s" if name == "supported_durations" and value else ""
    return ", ".join(str(x) for x in value) + suffix


def _yes_no(view, context, model, name) -> str:
    value = getattr(model, name)
    return "" if value is None else ("Yes" if value else "No")


BY_ATTR = {f.attr: f for f in spec.FIELDS}


class Hidden(rules.BaseRule):
    """A hidden field in a form's rules: its input alone (lib.render_field would give it a
    label, shown above the form's buttons)."""

    def __init__(self, field_name: str) -> None:
        super().__init__()
        self.field_name = field_name

    @property
    def visible_fields(self) -> list[str]:
        return [self.field_name]  # in the ruleset: Flask-Admin does not warn it is missing

    def __call__(self, form, form_opts=None, field_args=None) -> Markup:
        return Markup(form[self.field_name]())


class CatalogModelView(SignedIn, ModelView):
    list_template = "catalog/model_list.html"
    details_template = "catalog/model_details.html"

    create_template = "catalog/model_create.html"
    edit_template = "catalog/model_edit.html"
    form = ModelForm
    form_base_class = CsrfForm
    # Grouped as the model spec groups its fields; the reason and revision close the form.
    form_edit_rules = [
        *(rules.FieldSet(names, title) for title, names in FORM_GROUPS),
        "reason", *map(Hidden, ("expectedRevision", "pricePreviewed", "csrf_token")),
    ]
    form_create_rules = [*form_edit_rules[:-4], "isDefault", *form_edit_rules[-4:]]
    can_view_details = True
    can_export = False
    page_size = 20
    can_set_page_size = True

    # Columns, labels, filters and details come from the model spec (functions/spec.py).
    column_list = [*(spec.BY_NAME[n].attr for n in spec.LISTED if not n.startswith("is")),
                   "price", "status"]
    column_labels = {**{f.attr: f.label for f in spec.FIELDS}, "price": "Price"}
    column_formatters = {"status": _status, "price": _money, "name": _name_link,
                         "supported_durations": _listing, "supported_qualities": _listing,
                         "capabilities": _listing, "input_modalities": _listing,
                         "output_modalities": _listing, "tags": _listing}
    column_formatters_detail = {
        **{k: v for k, v in column_formatters.items() if k != "name"},
        **dict.fromkeys(
            ["input_schema", "model_parameters", "requirements", "quality_multipliers"], _json),
        **{f.attr: _yes_no for f in spec.FIELDS
           if isinstance(getattr(f.validator, "inner", f.validator), Boolean)},
    }
    column_sortable_list = ["name", "model_id", "provider", "content_type",
                            ("status", Model.is_active)]
    column_default_sort = ("id", False)
    column_searchable_list = ["model_id", "name", "provider"]
    # Inline, through models:updateModel too; offered on unlocked rows to writers (the name
    # opens the details page instead).
    column_editable_list = ["category"]
    # Pick-lists of the values that exist for text fields; yes/no for flags.
    column_filters = [
        *((EqualIgnoringCase if f.caseless else FilterEqual)(
            getattr(Model, f.attr), f.label, options=_values(getattr(Model, f.attr), f.caseless))
          for f in map(spec.BY_NAME.get, spec.FILTERABLE)
          if isinstance(f.validator, String | Literal)),
        HoldsCapability(Model.capabilities, spec.BY_NAME["capabilities"].label,
                        options=_capabilities),
        *(spec.BY_NAME[n].attr for n in spec.FILTERABLE
          if isinstance(spec.BY_NAME[n].validator, Boolean)),
    ]
    # Prices have their own table on the details page.
    column_details_list = [f.attr for f in spec.FIELDS
                           if f.group not in ("prices", "state")] + ["revision"]

    def fits(self, model: Model, attr: str) -> bool:
        """Whether a details row applies to this model's kind (no durations for chat)."""
        field = BY_ATTR.get(attr)
        return field is None or field.fits(model.content_type)

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

    def _get_filter_groups(self):
        """The filters, their pick-lists read now (Flask-Admin keeps the ones of start-up)."""
        groups = super()._get_filter_groups()
        for key, items in (groups or {}).items():
            groups[key] = [{**item, "options": self._filter_args[item["arg"]][1]
                            .get_options(self) or None} for item in items]
        return groups

    def get_one(self, id):
        """A model by its row id; anything that is not one (text, huge numbers) finds nothing."""
        pk = _row_id(id)
        return None if pk is None else super().get_one(str(pk))

    # -- forms -------------------------------------------------------------------------------

    def _read_only(self, what: str):
        """Where a viewer lands who opened a page for changes: the list, told why."""
        flash(f"{what} needs the editor or admin role; you are "
              f"{article(current_identity().role)} {current_identity().role}, "
              "so the catalog is read-only for you.", "warning")
        return redirect(self.get_url(".index_view"))

    @expose("/new/", methods=("GET", "POST"))
    def create_view(self):
        if not self.can_write:
            return self._read_only("Creating a model")
        return super().create_view()

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        if not self.can_write:
            return self._read_only("Editing a model")
        model = self.get_one(request.args.get("id", ""))
        if model is not None and model.is_locked and request.method == "GET":
            flash(f"{model.model_id} is locked; an admin must unlock it before it can be edited.",
                  "error")
            return redirect(self.get_url(".details_view", id=model.id))
        # A save of a model locked since its form opened: the mutation refuses it (LOCKED), and
        # the form comes back with what was typed, not discarded by a redirect.
        return super().edit_view()

    def get_edit_form(self):
        """The create form's class without isDefault (an existing model becomes the default
        by the "Set default" action): a class apart, since Flask-Admin strips from an edit
        form's class the fields its rules leave out, and the create form keeps it."""
        return type("EditModelForm", (self.form,), {"isDefault": None})

    def edit_form(self, obj=None):
        data = {**config_of(obj), "expectedRevision": obj.revision}
        form = self._edit_form_class(get_form_data(), data=data)
        form.modelId.render_kw = {"readonly": True}
        return form

    def validate_form(self, form) -> bool:
        """Flask-Admin marks each field at fault; the banner above says which to fix."""
        valid = super().validate_form(form)
        if not valid and "modelId" in form and not hasattr(form, "list_form_pk"):
            wrong = [form[name].label.text for name in form.errors
                     if name in form and name != "csrf_token"]
            if wrong:
                flash(f"Not saved: fix {', '.join(wrong)} (marked below). Everything you "
                      "typed is kept.", "error")
        return valid

    def _refused(self, form, refusal: RefusedError) -> None:
        field = (refusal.field or "").removeprefix("patch.").split(".")[0].split("[")[0]
        missing = [name for name in refusal.data.get("missing", ()) if name in form]
        if len(missing) > 1:  # several fields at once (a video model's price): each marked
            for name in missing:
                form[name].errors = [*form[name].errors, "required"]
            flash(f"Not saved: fix {', '.join(form[n].label.text for n in missing)} (marked "
                  f"below): {refusal.message}", "error")
            return
        if field in form and form[field].type == "HiddenField":  # nothing to fix by hand
            flash(f"Not saved: {refusal.message}. What you typed is kept below.", "error")
        elif field in form:
            form[field].errors = [*form[field].errors, refusal.message]
            flash(f"Not saved: fix {form[field].label.text} (marked below): "
                  f"{refusal.message}", "error")
        else:
            flash(f"Not saved: {refusal.message}", "error")

    def create_model(self, form):
        config = {k: v for k, v in form.config().items() if v is not None}
        for optional in ("version", "contentType"):
            if config.get(optional) == "":
                config.pop(optional)
        args = {"modelId": form.modelId.data.strip(), **config}
        if form.isDefault.data:
            args["isDefault"] = True
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
        revision = str(form.expectedRevision.data or "").strip()  # int when not posted
        opened = whole_number(revision)
        if opened is not None and opened != model.revision:  # before a price is previewed:
            stale.merge(form, model.id, model.model_id, opened, model.revision)  # its "old"
            return False  # would be theirs, and undoing it would look like the change asked
        current = config_of(model)
        wanted = form.config()
        patch = {k: v for k, v in wanted.items() if not unchanged(current.get(k), v)}
        if set(patch) & set(price_preview.PRICE_FIELDS) and _checks(patch) \
                and not self._price_seen(form, current, wanted):
            return False  # shown with the price's effect; the next Save applies it
        args = {"modelId": model.model_id, "patch": patch}
        if revision:  # a tampered value is the mutation's to refuse, not a crash here
            args["expectedRevision"] = number_or_text(revision)
        if form.reason.data:
            args["reason"] = form.reason.data
        try:
            after = run("models:updateModel", args)
        except RefusedError as refusal:
            if refusal.data.get("code") == "STALE_REVISION":  # changed since it was read
                stale.merge(form, model.id, model.model_id, args["expectedRevision"],
                            refusal.data["currentRevision"])
            else:
                self._refused(form, refusal)
            return False
        # What the mutation cleared that the form did not ask (a change of kind clears the
        # fields that no longer fit it), read from its answer: said, not done silently.
        cleared = [f.label for f in spec.EDITABLE_FIELDS if f.name not in patch
                   and current.get(f.name) not in (None, [], {}, f.default)
                   and after.get(f.name) in (None, [], {}, f.default)]
        if cleared:
            flash(f"{model.model_id} is now a {after['contentType']} model: "
                  f"{', '.join(cleared)} no longer apply and were cleared (History can revert "
                  "the change).", "warning")
        return True

    def _price_seen(self, form, current: dict, wanted: dict) -> bool:
        """Whether the person has seen what the new price does; if not, show it (g.price_preview)
        and let the next Save of this same price through."""
        new = {**current, **wanted}
        seen = price_preview.fingerprint(new)
        if form.pricePreviewed.data == seen:
            return True
        now = now_ms()
        rows = price_preview.preview(current, new, now)
        if rows is None:
            return True
        g.price_preview = rows
        g.price_backdated = price_preview.backdated(current, new, now)
        g.price_unpriced = price_preview.unpriced(new, now)
        form.pricePreviewed.data = seen
        flash("Check what the new price charges (below), then Save again to apply it.", "warning")
        return False

    INLINE = {"category": "category"}  # column_editable_list's columns -> mutation fields

    @expose("/inline/", methods=("POST",))
    def inline_view(self):
        """A list cell's own small form (category): the new value and a reason."""
        back = get_redirect_target() or self.get_url(".index_view")
        model = self.get_one(request.form.get("id", ""))
        column = request.form.get("column", "")
        if model is None or column not in self.column_editable_list:
            flash("Pick a model and a column.", "error")
            return redirect(back)
        args = {"modelId": model.model_id,
                "patch": {self.INLINE[column]: request.form.get("value", "").strip()}}
        if request.form.get("reason", "").strip():
            args["reason"] = request.form["reason"].strip()
        label_of = self.column_labels.get(column, column)
        run_or_flash("models:updateModel", args,
                     f"{label_of} of {model.model_id} saved.")
        return redirect(back)

    def _update_inline(self, form, model) -> bool:
        patch = {field: form[column].data for column, field in self.INLINE.items()
                 if column in form and column in request.form}  # the column posted, only
        if not patch:
            flash("Only " + ", ".join(self.column_labels.get(c, c) for c in
                                      self.column_editable_list) + " can be edited in the list.",
                  "error")
            return False
        try:
            run("models:updateModel", {"modelId": model.model_id, "patch": patch})
        except RefusedError as refusal:
            flash(refusal.message, "error")
            return False
        return True

    def delete_model(self, model) -> bool:
        return run_or_flash("models:deleteModel", {"modelId": model.model_id},
                            f"{model.model_id} deleted (it can be restored).") is not None

    # -- risky actions: a confirmation page first, then a POST (CSRF-checked) ---------------

    def verb(self, name: str) -> Verb | None:
        return VERBS.get(name)

    def may(self, verb: Verb) -> bool:
        return current_identity().allows(verb.scope)

    def _selection(self, source) -> tuple[list[Model], dict]:
        """The models an action is for, and the fields that name them again on the POST:
        the rows picked (`rowid`), or every model the list's search and filters match
        (`matching`, read from the URL's list arguments)."""
        if source.get("matching"):
            view_args = self._get_list_extra_args()
            _count, query = self.get_list(None, None, False, view_args.search,
                                          view_args.filters, execute=False, page_size=0)
            models = list(query)
            # The POST finds the matching models again; it acts only if they are still those
            # the confirmation named (a model edited into the filter meanwhile was never shown).
            return models, {"matching": ["1"], "selection": [_fingerprint(models)]}
        pks = sorted({pk for pk in map(_row_id, source.getlist("rowid")) if pk is not None})
        models = [model for start in range(0, len(pks), ROWS_PER_QUERY)  # in id order
                  for model in self.get_query().filter(Model.id.in_(
                      pks[start:start + ROWS_PER_QUERY])).order_by(Model.id)]
        return models, {"rowid": [str(m.id) for m in models]}

    def _checked(self, what: str, source, back: str):
        """The verb and models an action names in `source` (the list's query string, or the
        confirmation's form), or the answer that refuses it: the same checks before the
        confirmation and on its POST."""
        verb = self.verb(what)
        if verb is None:
            flash(f"Unknown action {what}.", "error")
            return None, None, None, redirect(back)
        if not self.may(verb):
            return None, None, None, self.forbidden(verb.scope, f"“{verb.label}”")
        models, fields = self._selection(source)
        expected = fields.get("selection")  # only for "every model that matches", on the POST
        if source is request.form and expected is not None and (
                source.getlist("selection") != expected):
            flash(f"The models that match changed since you looked ({len(models):,} match "
                  "now): nothing was done. Look at the list again and confirm anew.", "error")
            return None, None, None, redirect(back)
        if not models or (verb.single and len(models) != 1):
            flash(f"{verb.label} takes one model." if models else
                  "Pick a model." if verb.single else "Pick at least one model.", "error")
            return None, None, None, redirect(back)
        if self._too_many(what, models):
            return None, None, None, redirect(back)
        return verb, models, fields, None

    @expose("/confirm/<what>/", methods=("GET",))
    def confirm_view(self, what: str):
        """What an action will do, named model by model (or counted), with a reason box."""
        back = get_redirect_target() or self.get_url(".index_view")
        verb, models, fields, refused = self._checked(what, request.args, back)
        if refused is not None:
            return refused
        if what == "delete" and all(m.is_default for m in models):  # nothing it could do
            flash(f"{models[0].model_id} is the default: it cannot be deleted (set another "
                  "default first).", "warning")
            return redirect(back)
        question, effects, acting = consequences(what, models, self._default(),
                                                 self._others_stay_on(what, models))
        list_args = {k: v for k, v in request.args.items(multi=True)
                     if k == "search" or k.startswith("flt")} if "matching" in fields else {}
        return self.render(
            "catalog/confirm.html", question=question, effects=effects, verb=verb, acting=acting,
            models=models, shown=models[:SHOWN], back=back, fields=fields,
            action=self.get_url(".bulk_view", what=what, url=back, **list_args))

    @expose("/bulk/<what>/", methods=("POST",))
    def bulk_view(self, what: str):
        """Do a confirmed action to the models it names, with the reason given."""
        back = get_redirect_target() or self.get_url(".index_view")
        _verb, models, _fields, refused = self._checked(what, request.form, back)
        if refused is not None:
            return refused
        self._do(what, models, request.form.get("reason", "").strip())
        return redirect(back)

    def _too_many(self, what: str, models: list[Model]) -> bool:
        """An action that runs a mutation per model takes at most ONE_BY_ONE of them (one
        request must end well within the server's timeout); enable and disable take any."""
        if VERBS[what].function == "models:setModelsActive" or len(models) <= ONE_BY_ONE:
            return False
        flash(f"{VERBS[what].label} works on at most {ONE_BY_ONE:,} models at a time, and "
              f"{len(models):,} match: narrow the search or the filters.", "error")
        return True

    def _default(self) -> Model | None:
        return self.get_query().filter(Model.is_default.is_(True)).one_or_none()

    def _others_stay_on(self, what: str, models: list[Model]) -> bool:
        """Whether a disable leaves a model besides the default active: one not picked, or a
        picked one it skips (locked). The default then stays on (models.invariants)."""
        if what != "disable":
            return False
        active = self.get_query().filter(Model.is_active.is_(True)).count()
        going_off = sum(1 for m in models if m.is_active and not m.is_locked)  # the default too
        return active > going_off

    def _do(self, name: str, models: list[Model], reason: str = "") -> None:
        extra = {"reason": reason} if reason else {}
        if name in ("enable", "disable"):
            self._set_active([m.model_id for m in models], name == "enable", extra)
            return
        verb, done, refused = VERBS[name], [], []
        same = [m.model_id for m in models if already(name, m)]  # nothing to do: not said done
        if same:
            flash(f"{_names(same)} unchanged: already {ALREADY[name]}.", "info")
        for model_id in (m.model_id for m in models if not already(name, m)):
            try:
                run(verb.function, {"modelId": model_id, **extra})
            except RefusedError as refusal:
                refused.append(f"{model_id}: {refusal.message}")
            else:
                done.append(model_id)
        if done:
            flash(verb.done.format(_names(done)), "success")
        _flash_few(refused, "error", "refused")

    @expose("/row-action/<verb>/", methods=("POST",))
    def row_action(self, verb: str):
        """One model's action, straight away (the confirmation page posts to bulk_view)."""
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
            return redirect(self.get_url(".details_view", id=model.id, url=back))  # try again
        elif verb in VERBS:
            self._do(verb, [model], request.form.get("reason", "").strip())
        else:
            flash(f"Unknown action {verb}.", "error")
        return redirect(back)

    def _set_active(self, model_ids: list[str], active: bool, extra: dict) -> None:
        default = self._default()
        if default is not None and default.model_id in model_ids:  # in the last batch: it may
            # go off with the others, as in one call, only once no other model is left on
            model_ids = [i for i in model_ids if i != default.model_id] + [default.model_id]
        changed, skipped = [], []
        for start in range(0, len(model_ids), BATCH):  # the mutation takes BATCH at a time
            result = run_or_flash("models:setModelsActive", {
                "isActive": active, "modelIds": model_ids[start:start + BATCH], **extra})
            if result is None:
                return
            changed += result["changed"]
            skipped += result["skipped"]
        verb = "enabled" if active else "disabled"
        if changed:
            flash(f"{_names(changed)} {verb}.", "success")
        _flash_few([f"{one['modelId']} skipped: {one['reason']}." for one in skipped],
                   "warning", "skipped")

    # -- bulk actions: Flask-Admin's "With selected" menu leads to the confirmation page --------

    BULK = ("enable", "disable", "delete", "restore")

    def _confirm_selected(self, name: str, ids: list[str]):
        return redirect(self.get_url(".confirm_view", what=name, rowid=ids,
                                     url=get_redirect_target() or self.get_url(".index_view")))

    @action("enable", "Enable…")
    def action_enable(self, ids):
        return self._confirm_selected("enable", ids)

    @action("disable", "Disable…")
    def action_disable(self, ids):
        return self._confirm_selected("disable", ids)

    @action("delete", "Delete…")
    def action_delete(self, ids):
        return self._confirm_selected("delete", ids)

    @action("restore", "Restore…")
    def action_restore(self, ids):
        return self._confirm_selected("restore", ids)

    def matching_links(self) -> list[tuple[str, str]]:
        """The bulk actions for every model the list's search and filters match."""
        args = {k: v for k, v in request.args.items(multi=True)
                if k == "search" or k.startswith("flt")}
        if not args or not self.can_write:
            return []
        back = request.full_path.rstrip("?")
        return [(VERBS[name].label, self.get_url(".confirm_view", what=name, matching=1,
                                                  url=back, **args))
                for name in self.BULK]

    # -- what the details page shows ----------------------------------------------------------

    def prices(self, model) -> list[dict]:
        """The price schedule as money, entry by entry, the current and scheduled ones marked."""
        return money.schedule_rows(schedule_of(model), now_ms())

    @staticmethod
    def calculator_moment() -> int | None:
        """The moment the calculator prices at: the one typed (`at`, a date and time in UTC,
        as the schedule shows them, from 1970 on), or now; None when what was typed is not
        one."""
        typed = request.args.get("at", "").strip()
        if not typed:
            return now_ms()
        at = parse_local(typed)
        return at if at is not None and at >= 0 else None

    def calculator(self, model) -> dict:
        """What the price calculator asks for: a video model's durations and qualities, or the
        usage counts and options its price in force (at the moment asked) takes."""
        at = self.calculator_moment()
        usage, options = money.calculator_inputs(schedule_of(model),
                                                 now_ms() if at is None else at)
        if model.supported_qualities:  # every quality it lists, priced by name or by default
            priced = options.get("quality", [])
            options["quality"] = [*model.supported_qualities,
                                  *(q for q in priced if q not in model.supported_qualities)]
        return {"video": model.content_type == "video" and model.prices is None,
                "usage": usage, "options": options,
                "fractional": {k for k in usage if not prices.UNITS_BY_USAGE[k].whole}}

    def price_quote(self, model) -> dict:
        """The calculator's answer for what was picked on the details page."""
        if model.content_type == "video" and model.prices is None:
            return self._video_quote(model)
        asked = self.calculator(model)
        typed = {key: request.args.get(key, "").strip() for key in asked["usage"]}
        # seconds may be fractional (90.5 s of audio), as the engine takes them; counts not
        usage = {key: (amount(text) if key in asked["fractional"]
                       else whole_number(text, high=prices.MAX_COUNT))
                 for key, text in typed.items() if text}
        if not request.args.get("calculate"):
            return {}
        options = {k: v for k, v in request.args.items()
                   if k in ("quality", "resolution", "size", "serviceTier") and v}
        at = self.calculator_moment()
        bad = [f"{words(k)}: " + ("a number such as 90.5 (digits 0-9, one point)"
                                  if k in asked["fractional"] else
                                  f"a whole number (digits 0-9) up to {prices.MAX_COUNT:,}")
               for k, v in usage.items() if v is None]
        if at is None:
            bad.append("At (UTC): a date and time such as 2027-01-15T00:00")
        if bad:
            return {"error": "; ".join(bad) + ", please."}
        usage = {k: str(v) if isinstance(v, Decimal) else v for k, v in usage.items()}
        try:  # at a moment named, so a model not offered (inactive, paused) is priced too
            answer = run("pricing:quote", {"modelId": model.model_id, "usage": usage,
                                           "options": options, "at": at})
        except RefusedError as refusal:
            return {"error": refusal.message}
        cached = any(line["unit"].startswith("cache_") for line in answer["lines"])
        lines = [f"{money.quantity(line['quantity'])}"
                 + ("" if prices.UNITS[line["unit"]].whole else " s")  # seconds, even per hour
                 + " × "
                 f"{money.price(line['unitPrice'], line['unit'])}"
                 + (" (not cached)" if cached and line["unit"] == "input_tokens" else "")
                 + f" = {money.usd(line['usdExact'])}" for line in answer["lines"]]
        return {"quote": answer, "lines": lines, "usd": money.usd(answer["usdExact"])}

    def _video_quote(self, model) -> dict:
        quality = request.args.get("quality")
        if not quality:
            return {}
        args = {"modelId": model.model_id, "quality": quality, "at": now_ms()}  # any state
        duration = request.args.get("duration", "").strip()
        if duration:
            args["duration"] = number_or_text(duration)
        try:
            quote = run("pricing:getCreditCost", args)
        except RefusedError as refusal:
            return {"error": refusal.message}
        factor = format(Decimal(str(quote["qualityMultiplier"])).normalize(), "f")
        factor += "" if "." in factor else ".0"  # every factor shown, 1.0 too
        formula = (f"{quote['duration']} s × {money.price(quote['costPerSecond'], 'second')}"
                   f" × {factor} = {money.usd(quote['usdExact'])}")
        return {"quote": quote, "lines": [formula], "usd": money.usd(quote["usdExact"])}

    def history(self, model) -> dict:
        try:
            return run("history:getModelHistory", {
                "modelId": model.model_id,
                "paginationOpts": {"numItems": 50, "cursor": request.args.get("cursor") or None},
            })
        except RefusedError as refusal:  # a hand-edited cursor in the URL
            return {"page": [], "isDone": True, "error": refusal.message}

    @expose("/revert/", methods=("GET", "POST"))
    def revert_view(self):
        """GET: what a revert will change, with a reason box; POST: revert."""
        back = get_redirect_target() or self.get_url(".index_view")
        source = request.form if request.method == "POST" else request.args
        model = self.get_one(source.get("id", ""))
        revision = whole_number(source.get("revision", ""), low=1)
        if model is None or revision is None:
            flash("Pick a model and a revision.", "error")
            return redirect(back)
        if request.method == "GET":
            return self._confirm_revert(model, revision, back)
        args = {"modelId": model.model_id, "revision": revision}
        if request.form.get("reason"):
            args["reason"] = request.form["reason"]
        was = model.revision
        reverted = run_or_flash("history:revertModel", args)
        if reverted is not None:
            flash(f"{model.model_id} reverted to revision {revision}." if reverted["revision"]
                  != was else f"{model.model_id} already matches revision {revision}: "
                  "nothing was changed.", "success" if reverted["revision"] != was else "info")
        return redirect(back)

    def _reverting(self, model, revision: int) -> list[tuple[str, str, str]] | None:
        """What a revert to `revision` changes, as the history shows changes (None: the model
        has no such revision); a RefusedError when the revert would be refused."""
        snapshot = reader().scalar(select(ModelHistory.snapshot).where(
            ModelHistory.model_pk == model.id, ModelHistory.revision == revision))
        if snapshot is None:
            return None
        try:
            changes = revert_changes(config_of(model), snapshot)
        except FunctionError as error:
            raise RefusedError(labelled(error.message)) from None
        return money.changes_shown(changes)

    def _confirm_revert(self, model, revision: int, back: str):
        if not self.can_write:
            return self.forbidden(self.write_scope, "Reverting a model")
        try:
            changes = self._reverting(model, revision)
            if changes:  # every check the revert meets, the whole change's too, writing nothing
                run("history:revertModel", {"modelId": model.model_id, "revision": revision,
                                            "dryRun": True})
        except RefusedError as refusal:
            flash(f"{model.model_id} cannot go back to revision {revision}: "
                  f"{refusal.message}", "error")
            return redirect(back)
        if changes is None:
            flash(f"{model.model_id} has no revision {revision}.", "error")
            return redirect(back)
        if not changes:
            flash(f"{model.model_id} already matches revision {revision}: there is nothing "
                  "to revert.", "info")
            return redirect(back)
        effects = [f"It is at revision {model.revision} now; the revert is saved as revision "
                   f"{model.revision + 1}, so it can be undone too. What goes back:",
                   *(f"{what}: {old} → {new}" for what, old, new in changes)]
        return self.render(
            "catalog/confirm.html", question=f"Revert {model.name} to revision {revision}?",
            effects=effects, verb=REVERT, models=[model], shown=[model], acting=1, back=back,
            fields={"id": [str(model.id)], "revision": [str(revision)]},
            action=self.get_url(".revert_view", url=back))
