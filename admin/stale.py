"""An edit saved over someone else's change (updateModel's STALE_REVISION): the form comes back
with what was typed, takes the other change in every field it left as it was, and marks the
fields both changed, so that the next Save applies what the person now sees, never undoes
the other change unseen."""

from __future__ import annotations

from flask import flash
from sqlalchemy import select

from admin.forms import ModelForm, unchanged
from admin.money import field_value
from admin.reading import reader
from db.schema import ModelHistory
from functions import spec


def merge(form: ModelForm, model_pk: int, model_id: str, opened: int, current: int) -> None:
    """`opened`: the revision the form was read at; `current`: the model's now."""
    rows = reader().execute(
        select(ModelHistory.revision, ModelHistory.actor, ModelHistory.snapshot)
        .where(ModelHistory.model_pk == model_pk, ModelHistory.revision >= opened,
               ModelHistory.revision <= current)
        .order_by(ModelHistory.revision)).all()
    by_revision = {row.revision: row for row in rows}
    if opened not in by_revision or current not in by_revision:  # history cut short: say so
        flash(f"Not saved: someone changed {model_id} since you opened it. What you typed is "
              "kept below; reload the page to see their change.", "error")
        return
    was, now = by_revision[opened].snapshot, by_revision[current].snapshot
    typed = form.config()
    taken, both = [], []
    for name, mine in typed.items():
        theirs = now.get(name, spec.BY_NAME[name].default)
        before = was.get(name, spec.BY_NAME[name].default)
        if unchanged(before, theirs) or unchanged(theirs, mine):
            continue
        label = form[name].label.text
        if unchanged(before, mine):  # left as it was: theirs now
            form[name].process(None, data=theirs)
            form[name].raw_data = None  # shown from the value, not from what was posted
            taken.append(label)
        else:
            form[name].errors = [*form[name].errors, "also changed meanwhile, to "
                                 f"{_shown(name, theirs)}; yours is kept"]
            both.append(label)
    form.expectedRevision.data = current
    form.pricePreviewed.data = ""  # a price seen against the old one is previewed again
    who = ", ".join(dict.fromkeys(row.actor for row in rows if row.revision > opened))
    said = [f"Not saved: {who} changed {model_id} since you opened it."]
    if taken:
        said.append(f"Their {', '.join(taken)} {'is' if len(taken) == 1 else 'are'} now in "
                    "the form.")
    if both:
        said.append(f"You both changed {', '.join(both)} (marked below: yours is kept).")
    said.append("Save again to apply the form as it is now.")
    flash(" ".join(said), "error")


def _shown(name: str, value: object) -> str:
    text = field_value(name, value)  # as the history shows it
    return text if len(text) <= 80 else f"{text[:77]}…"
