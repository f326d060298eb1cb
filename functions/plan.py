"""What applying a catalog file does, worked out in memory from the models as they are.

`Plan` reads the rows it is given and writes nothing. It takes each model from its state to the
file's through the state table (functions/states.py: every transition checked, the caller's
authorization included) and the field rules (functions/fields.py), then checks the invariants
once, at the end: whenever a model is active, exactly one active model is the default. It
answers the models as they would be, or every refusal. `catalog:planCatalog` runs it on a
read, holding no lock; `catalog:applyCatalog` runs it under the writers' lock and writes what
it says.
"""

from __future__ import annotations

from engine.errors import FunctionError
from engine.runtime import Identity
from functions import fields, spec, states
from functions.changes import diff
from functions.documents import config_of, from_micros, to_micros

STATE = spec.STATE_FLAGS
FILE_FIELDS = tuple(sorted(("modelId", *fields.EDITABLE, *STATE)))


def file_entry(config: dict) -> dict:
    """A model as the catalog file holds it: fields and state; no statistics or timestamps."""
    return {k: config[k] for k in FILE_FIELDS if config[k] is not None}


def wanted_state(entry: dict) -> str:
    if entry.get("isDeprecated"):
        return states.DELETED
    return states.ACTIVE if entry.get("isActive", True) else states.INACTIVE


def _field(name: str) -> property:
    def write(draft: Draft, value) -> None:
        draft.config[name] = value

    return property(lambda draft: draft.config[name], write)


class Draft:
    """A model as the plan sees it: every field (document names), changed in memory only.
    It has the attributes of a row that the state table reads and `states.move` sets."""

    def __init__(self, config: dict, pk: int | None, entry: int | None) -> None:
        self.config, self.pk, self.entry = config, pk, entry

    model_id = property(lambda draft: draft.config["modelId"])
    is_active = _field("isActive")
    is_deprecated = _field("isDeprecated")
    deprecated_at = _field("deprecatedAt")
    is_locked = _field("isLocked")
    is_default = _field("isDefault")

    @property
    def editable(self) -> dict:
        return {k: self.config[k] for k in fields.EDITABLE}


def stored(config: dict) -> dict:
    """Fields as the database gives them back (prices go through exact micro-USD); a model
    priced by `prices` has no costPerSecond."""
    cost = config["costPerSecond"]
    if cost is None:
        return dict(config)
    return {**config, "costPerSecond": from_micros(to_micros(cost, "costPerSecond"))}


class Plan:
    """The plan for `entries` (checked file entries) against `rows` (every model, in creation
    order), as `identity` would apply it at `now`. Raises with every refusal."""

    def __init__(self, rows, entries: list[dict], identity: Identity, now: int) -> None:
        self.identity, self.now = identity, now
        self.errors: list[dict] = []
        self.failed: set[str | None] = set()
        self.before = {row.model_id: config_of(row) for row in rows}
        self.drafts = {mid: Draft(dict(config), row.id, None)
                       for (mid, config), row in zip(self.before.items(), rows, strict=True)}
        began = next((d for d in self.drafts.values() if d.is_default and self._on(d)), None)
        wanted = {entry["modelId"]: entry for entry in entries}
        self.named = set(wanted)
        for index, model_id in enumerate(wanted):
            if model_id in self.drafts:
                self.drafts[model_id].entry = index
        # 1. unlock what the file unlocks (or leaves out); 2. create, configure and move each
        # model to the file's state; 3. the default; 4. lock what the file locks; 5. the
        # invariants, at the end.
        for draft in list(self.drafts.values()):
            if draft.is_locked and not wanted.get(draft.model_id, {}).get("isLocked", False):
                self._step(draft, self._set_lock, draft, False)
        for index, (model_id, entry) in enumerate(wanted.items()):
            if model_id in self.drafts:
                self._step(self.drafts[model_id], self._configure, self.drafts[model_id], entry)
            else:
                self._create(model_id, entry, index)
        for draft in self.drafts.values():
            if draft.model_id not in wanted and self._on(draft):
                self._step(draft, self._move, draft, states.INACTIVE)
        chosen = next((mid for mid, entry in wanted.items() if entry.get("isDefault")), None)
        if chosen in self.drafts and self._on(self.drafts[chosen]):
            self._step(self.drafts[chosen], self._make_default, self.drafts[chosen])
        for model_id, entry in wanted.items():
            draft = self.drafts.get(model_id)
            if entry.get("isLocked") and draft is not None and not draft.is_locked:
                self._step(draft, self._set_lock, draft, True)
        if not self.errors:
            self._settle(began, self.drafts.get(chosen))
        if self.errors:
            raise refusal(self.errors)

    # -- the answer ----------------------------------------------------------------------------

    def changed(self) -> list[Draft]:
        """The models the plan adds or changes, in creation order."""
        return [d for d in self.drafts.values()
                if d.pk is None or d.config != self.before[d.model_id]]

    def summary(self) -> dict:
        before = {mid: file_entry(config) for mid, config in self.before.items()}
        after = {d.model_id: file_entry(d.config) for d in self.drafts.values()}
        changed = [{"modelId": mid, "changes": diff(before[mid], after[mid])}
                   for mid in sorted(before) if before[mid] != after[mid]]
        deactivated = sorted(mid for mid in before
                             if before[mid]["isActive"] and not after[mid]["isActive"])
        left_out = sorted(mid for mid in before if mid not in self.named
                          and before[mid] != after[mid])
        return {"created": sorted(set(after) - set(before)), "changed": changed,
                "deactivated": deactivated, "leftOut": left_out,
                "unchanged": len(before) - len(changed)}

    # -- the steps ---------------------------------------------------------------------------

    def _step(self, draft: Draft, step, *args) -> None:
        """Run one step, noting a refusal against its model (its first refusal only)."""
        if draft.model_id in self.failed:
            return
        try:
            step(*args)
        except FunctionError as error:
            self._refused(draft.model_id, draft.entry, error)

    def _refused(self, model_id: str | None, entry: int | None, error: FunctionError) -> None:
        self.failed.add(model_id)
        field = error.data.get("field")
        if entry is not None and field is not None and not field.startswith("models["):
            field = f"models[{entry}].{field}"  # as the file's own checks name it
        self.errors.append({"entry": entry, "modelId": model_id, "code": error.code,
                            "field": field, "message": error.message})

    def _on(self, draft: Draft) -> bool:
        return states.state_of(draft) == states.ACTIVE

    def _move(self, draft: Draft, state: str) -> None:
        for turn in states.route(states.state_of(draft), state):
            states.move(draft, states.check(self.identity, draft, turn), self.now)

    def _set_lock(self, draft: Draft, locked: bool) -> None:
        states.check(self.identity, draft, states.LOCK if locked else states.UNLOCK)
        draft.is_locked = locked

    def _configure(self, draft: Draft, entry: dict) -> None:
        wanted = {k: entry.get(k, fields.DEFAULTS.get(k)) for k in fields.EDITABLE
                  if k in entry or k in fields.DEFAULTS}
        patch = {k: val for k, val in wanted.items()
                 if k != "isActive" and draft.config[k] != val}
        if patch:
            states.check(self.identity, draft, states.EDIT)
            config = fields.settle({**draft.editable, **patch}, set(patch))
            config.pop("isActive")
            draft.config.update(stored(config))
        self._move(draft, wanted_state(entry))

    def _create(self, model_id: str, entry: dict, index: int) -> None:
        given = {k: entry[k] for k in fields.EDITABLE if k in entry}
        target = wanted_state(entry)
        given["isActive"] = target == states.ACTIVE  # a deleted one is made, then deleted
        try:
            states.permit(self.identity, states.CREATE, model_id)
            config = stored(fields.settle({**fields.DEFAULTS, **given}, set(given)))
        except FunctionError as error:
            self._refused(model_id, index, error)
            return
        draft = Draft({**config, "modelId": model_id, "isDefault": False, "isLocked": False,
                       "isDeprecated": False, "deprecatedAt": None}, None, index)
        self.drafts[model_id] = draft
        self._step(draft, self._move, draft, target)

    def _make_default(self, draft: Draft) -> None:
        if draft.is_default:
            return
        states.check(self.identity, draft, states.SET_DEFAULT)
        for old in self.drafts.values():
            if old.is_default:
                if self._on(old):  # taking the default from a model changes it
                    states.writable(old)
                old.is_default = False
        draft.is_default = True

    def _settle(self, began: Draft | None, chosen: Draft | None) -> None:
        """The invariants at the end, as models.settle does on rows. When the file leaves no
        model active, no model needs to be the default (what it marks isDefault included)."""
        first = next((d for d in self.drafts.values() if self._on(d)), None)
        if first is not None and chosen is not None and not self._on(chosen):
            self._refused(chosen.model_id, chosen.entry, FunctionError(
                "DEFAULT_REQUIRED",
                f"{chosen.model_id} is marked isDefault but the file does not leave it active, "
                "while other models are; the default must be active",
                field="isDefault"))
            return
        flagged = next((d for d in self.drafts.values() if d.is_default), None)
        if flagged is not None and self._on(flagged):
            return
        if first is None:
            return
        if began is not None:
            doing = "deleted" if began.is_deprecated else "deactivated"
            self._refused(began.model_id, began.entry, FunctionError(
                "DEFAULT_REQUIRED",
                f"{began.model_id} is the default model and cannot be {doing} while other "
                "models are active; mark another model isDefault in the file",
                field="isDefault"))
            return
        if flagged is not None:
            flagged.is_default = False
        first.is_default = True


def by_outcome(plan: dict) -> dict:
    """A catalog file's plan (planCatalog's answer) as people read it, in the console and the
    CLI: a model the file deactivates is listed (and counted) once, under "deactivate", with
    its other changes; not also under "change"."""
    deactivated = set(plan["deactivated"])
    changes = {c["modelId"]: c["changes"] for c in plan["changed"]}
    return {
        "created": plan["created"],
        "changed": [c for c in plan["changed"] if c["modelId"] not in deactivated],
        "deactivated": [{"modelId": m, "changes": [c for c in changes.get(m, [])
                                                   if c["field"] != "isActive"]}
                        for m in plan["deactivated"]],
        "leftOut": plan["leftOut"],
        "unchanged": plan["unchanged"],
        "catalogVersion": plan.get("catalogVersion"),  # a plan's, not an apply's
    }


def left_out_warning(plan: dict) -> str | None:
    """What applying does to the models a file does not name (by_outcome's plan), said before
    it is applied: a catalog file is the whole catalog, so they are switched off."""
    if not plan["leftOut"]:
        return None
    left_out = set(plan["leftOut"])
    locked = sum(1 for d in plan["deactivated"] if d["modelId"] in left_out
                 and any(c["field"] == "isLocked" for c in d["changes"]))
    count = len(left_out)
    return (f"{count:,} model{'s are' if count != 1 else ' is'} not in this file: applying it "
            f"deactivates {'them' if count != 1 else 'it'}"
            + (f" and unlocks {locked:,} locked one{'s' if locked != 1 else ''}" if locked else "")
            + ". A catalog file is the whole catalog: to change a few models, export the "
            "catalog, edit that file and plan it.")


def refusal(errors: list[dict]) -> FunctionError:
    """Every error of a file at once; the code is theirs when they share one."""
    codes = {e["code"] for e in errors}
    code = codes.pop() if len(codes) == 1 else "INVALID_ARGUMENT"
    summary = "; ".join(f"{e['modelId'] or 'file'}: {e['message']}" for e in errors[:5])
    return FunctionError(
        code, f"The catalog file has {len(errors)} error(s); nothing was changed: {summary}",
        errors=errors,
    )
