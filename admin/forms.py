"""Console forms: a model's fields as a person edits them, parsed before any mutation runs."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from flask_admin.form import BaseForm
from flask_wtf.csrf import generate_csrf
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length
from wtforms.widgets import NumberInput, TextInput

from admin.console_json import ConsoleJsonError, decode_console_json
from admin.labels import labelled
from admin.numbers import LARGEST, amount, too_large, whole_number
from engine.values import (
    Array,
    Boolean,
    Date,
    Json,
    Literal,
    Nullable,
    Number,
    Record,
    String,
)
from functions import spec


class CsrfForm(BaseForm):
    """Every console form carries Flask-WTF's token; CSRFProtect checks it before any view runs."""

    csrf_token = HiddenField(default=generate_csrf)

    def __init__(self, formdata=None, obj=None, prefix="", **kwargs):
        super().__init__(formdata, obj, prefix, **kwargs)
        self.csrf_token.data = generate_csrf()


def _whole(text: str) -> int:
    value = whole_number(text)
    if value is None:
        raise ValueError(_too_large(text) or f"'{text}' is not a whole number (digits 0-9)")
    return value


def _seconds(text: str) -> int:
    """Seconds as people type them: "10", "10s", "10 s" or "10 sec"."""
    digits = re.sub(r"\s*(?:s|sec|secs|seconds?)\Z", "", text.strip(), flags=re.IGNORECASE)
    if whole_number(digits) is None:
        raise ValueError(_too_large(digits)
                         or f"'{text}' is not a whole number of seconds (e.g. 5 or 5s)")
    return whole_number(digits)


def _too_large(text: str, money: bool = False) -> str | None:
    if not too_large(text, money=money):
        return None
    shown = text.strip() if len(text.strip()) <= 24 else f"{text.strip()[:20]}…"
    if money:
        return f"'{shown}' is too large: at most 15 digits before the point"
    return f"'{shown}' is too large: at most {LARGEST:,}"


class KeepsTyped:
    """A field that shows what was typed when the form comes back (a refusal, a preview),
    not its parsed value (which a failed parse empties)."""

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return self._shown()


class ListField(KeepsTyped, Field):
    """A comma-separated list: "standard, high" -> ["standard", "high"]."""

    widget = TextInput()

    def __init__(self, *args, whole_numbers: bool = False, seconds: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.item = _seconds if seconds else _whole if whole_numbers else str

    def _shown(self) -> str:
        return ", ".join(str(x) for x in self.data or [])

    def process_formdata(self, valuelist):
        self.data = []
        if not valuelist:
            return
        try:
            self.data = [self.item(part.strip()) for part in valuelist[0].split(",")
                         if part.strip()]
        except ValueError:
            self.data = []
            raise


class WholeNumberField(KeepsTyped, StringField):
    """An optional whole number, in ASCII digits; empty means none."""

    widget = NumberInput(min=0)
    parse = staticmethod(_whole)

    def _shown(self) -> str:
        return "" if self.data is None else str(self.data)

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        self.data = None
        if text:
            self.data = self.parse(text)


class SecondsField(WholeNumberField):
    """An optional number of seconds: "10" or "10s"; empty means none."""

    widget = TextInput()
    parse = staticmethod(_seconds)


class JsonField(KeepsTyped, TextAreaField):
    """A JSON object, checked before saving; empty means none."""

    def _shown(self) -> str:
        return "" if self.data is None else json.dumps(self.data, indent=2, sort_keys=True)

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        self.data = None
        if not text:
            return
        try:
            value = decode_console_json(text)
        except ConsoleJsonError as error:
            raise ValueError(str(error)) from None
        if not isinstance(value, dict):
            raise ValueError("Must be a JSON object ({...})")
        self.data = value


class MoneyField(KeepsTyped, StringField):
    """USD, kept exact; the functions check its range and decimal places."""

    def _shown(self) -> str:
        return "" if self.data is None else format(Decimal(str(self.data)).normalize(), "f")

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        self.data = None
        if not text:
            return
        value = amount(text)
        if value is None and amount(text.removeprefix("-").removeprefix("$-")) is not None:
            raise ValueError(f"'{text}' is negative: an amount in USD is 0 or more")
        if value is None:
            raise ValueError(_too_large(text, money=True)
                             or f"'{text}' is not an amount in USD (e.g. 0.10)")
        self.data = format(value, "f")  # as typed, less a "$": the mutation reads it exactly


def unchanged(stored: object, typed: object) -> bool:
    """Whether a form's value is the stored one: an amount typed as text ("0.10") is the
    number stored (0.1)."""
    if isinstance(typed, str) and type(stored) in (int, float):
        return amount(typed) == Decimal(str(stored))
    return stored == typed


class ScheduleField(KeepsTyped, TextAreaField):
    """A price schedule as JSON (a list of entries); the pricing engine checks it."""

    def _shown(self) -> str:
        return "" if self.data is None else json.dumps(self.data, indent=2)

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        self.data = None
        if not text:
            return
        try:
            value = decode_console_json(text)
        except ConsoleJsonError as error:
            raise ValueError(str(error)) from None
        if not isinstance(value, list):
            raise ValueError('Must be a JSON list of entries ([{"effectiveFrom": null, '
                             '"components": [...]}])')
        self.data = value


class OptionalText(StringField):
    """Text whose empty value means none (null)."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self.data = (self.data or "").strip() or None


def _inner(validator):
    return validator.inner if isinstance(validator, Nullable) else validator


def shown(field: spec.Field) -> bool:
    """A field with one possible value (the pricing unit) is set by the rules, not typed."""
    validator = _inner(field.validator)
    return not (isinstance(validator, Literal) and len(validator.choices) == 1)


def _in_seconds(field: spec.Field) -> bool:
    return field.label.endswith("(s)")


def _form_field(field: spec.Field):
    """The WTForms field that edits one spec field, labelled and explained by the spec."""
    validator = _inner(field.validator)
    kinds = " ".join(sorted(field.kinds)) if field.kinds else "all"
    options = {"label": field.label, "description": labelled(field.help),
               "render_kw": {"data-kinds": kinds}}
    required = [DataRequired()] if field.required else []
    if isinstance(validator, Boolean):
        return BooleanField(default=field.default, **options)
    if isinstance(validator, Literal):
        return SelectField(choices=list(validator.choices), default=field.default,
                           **options)
    if isinstance(validator, Array):
        if isinstance(validator.item, Literal):
            return SelectMultipleField(choices=list(validator.item.choices),
                                       **options)
        whole = isinstance(validator.item, Number) and validator.item.integer
        return ListField(whole_numbers=whole, seconds=whole and _in_seconds(field), **options)
    if isinstance(validator, Number):
        if validator.integer:
            return (SecondsField if _in_seconds(field) else WholeNumberField)(**options)
        return MoneyField(**options)
    if isinstance(validator, spec.Schedule):
        return ScheduleField(**options)
    if isinstance(validator, (Json, Record)) or validator.schema().get("type") == "object":
        return JsonField(**options)
    if isinstance(validator, Date):  # text, not a date picker: a stored date that does not
        # exist (kept before dates were checked) shows as it is, not as an empty field
        options["render_kw"] |= {"placeholder": "YYYY-MM-DD"}
        return (OptionalText if isinstance(field.validator, Nullable) else StringField)(
            validators=[Length(max=10)], **options)
    if isinstance(validator, String):
        length = [Length(max=validator.max_length)]
        if isinstance(field.validator, Nullable):
            return OptionalText(validators=length, **options)
        if validator.max_length >= 5000:  # prose
            return TextAreaField(validators=length, **options)
        return StringField(default=field.default, validators=required + length, **options)
    raise TypeError(f"no console field for {field.name}")


class ModelForm(CsrfForm):
    """A model's editable fields, as the model spec (functions/spec.py) declares them."""

    locals().update({f.name: _form_field(f) for f in (spec.BY_NAME["modelId"],
                                                      *spec.EDITABLE_FIELDS) if shown(f)})
    isDefault = BooleanField("Make it the default model",
                             description="the frontend's default; the current default stops "
                                         "being it")
    reason = StringField("Reason for this change", validators=[Length(max=500)],
                         description="optional; shown in the history")
    expectedRevision = HiddenField()
    pricePreviewed = HiddenField()  # the price whose effect was shown (admin/price_preview.py)

    def config(self) -> dict:
        """The configuration the form describes, in the mutations' field names: the fields
        that fit the chosen kind of model (the others keep their defaults)."""
        kind = self.contentType.data
        out = {}
        for field in spec.fields_for(kind):
            if not shown(field):
                continue
            value = self[field.name].data
            if isinstance(value, str):  # a browser sends a text area's lines with CRLF
                value = value.replace("\r\n", "\n")
                value = value if field.name == "description" else value.strip()
            if value is None and field.default is not None:
                value = field.default
            if value is False and isinstance(field.validator, Nullable):
                value = None  # an unticked box where empty and false mean the same
            out[field.name] = value
        return out


# The form's fields grouped as the spec groups them, for Flask-Admin's form rules.
FORM_GROUPS = [
    (title, [f.name for f in ((spec.BY_NAME["modelId"],) if group == "identity" else ())
             + tuple(spec.fields_for(None, group)) if shown(f)])
    for group, title in spec.GROUPS.items()
]
