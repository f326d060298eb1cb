"""Console forms: a model's fields as a person edits them, parsed before any mutation runs."""

from __future__ import annotations

import json
from decimal import Decimal

from flask_admin.form import BaseForm
from flask_wtf.csrf import generate_csrf
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length
from wtforms.widgets import NumberInput, TextInput

from admin.console_json import ConsoleJsonError, decode_console_json
from admin.numbers import amount, whole_number


class CsrfForm(BaseForm):
    """Every console form carries Flask-WTF's token; CSRFProtect checks it before any view runs."""

    csrf_token = HiddenField(default=generate_csrf)

    def __init__(self, formdata=None, obj=None, prefix="", **kwargs):
        super().__init__(formdata, obj, prefix, **kwargs)
        self.csrf_token.data = generate_csrf()


def _whole(text: str) -> int:
    value = whole_number(text)
    if value is None:
        raise ValueError(f"'{text}' is not a whole number (digits 0-9)")
    return value


class ListField(Field):
    """A comma-separated list: "standard, high" -> ["standard", "high"]."""

    widget = TextInput()

    def __init__(self, *args, whole_numbers: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.item = _whole if whole_numbers else str

    def _value(self) -> str:
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


class WholeNumberField(StringField):
    """An optional whole number, in ASCII digits; empty means none."""

    widget = NumberInput(min=0)

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        self.data = None
        if text:
            self.data = _whole(text)


class JsonField(TextAreaField):
    """A JSON object, checked before saving; empty means none."""

    def _value(self) -> str:
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


class MoneyField(StringField):
    """USD, kept exact; the functions check its range and decimal places."""

    def _value(self) -> str:
        return "" if self.data is None else format(Decimal(str(self.data)).normalize(), "f")

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        self.data = None
        if not text:
            return
        value = amount(text)
        if value is None:
            raise ValueError(f"'{text}' is not an amount in USD (e.g. 0.10)")
        self.data = float(value)


class ModelForm(CsrfForm):
    modelId = StringField("Model id", validators=[DataRequired(), Length(max=200)],
                          description="e.g. google/veo-3; cannot be changed later")
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=5000)])
    version = StringField("Version", default="1.0", validators=[Length(max=50)])
    provider = StringField("Provider", validators=[DataRequired(), Length(max=100)])
    category = StringField("Category", validators=[Length(max=100)])
    contentType = StringField("Content type", default="prompt_to_video")
    costPerSecond = MoneyField("Cost per second (USD)", validators=[InputRequired()])
    supportedDurations = ListField("Supported durations (s)", whole_numbers=True,
                                   description="comma-separated, e.g. 5, 9")
    fixedDuration = WholeNumberField("Fixed duration (s)",
                                     description="only for models that always run this long")
    maxDuration = WholeNumberField("Max duration (s)",
                                   description="empty: the longest supported duration")
    supportedQualities = ListField("Supported qualities",
                                   description="comma-separated, e.g. standard, high, ultra")
    qualityMultipliers = JsonField("Quality multipliers",
                                   description='e.g. {"high": 1.5}; a missing quality costs 1x')
    tags = ListField("Tags")
    isActive = BooleanField("Active", default=True)
    isPremium = BooleanField("Premium")
    replicateModelId = StringField("Replicate model id", validators=[Length(max=200)])
    inputSchema = JsonField("Input schema (JSON Schema)")
    modelParameters = JsonField("Model parameters")
    requirements = JsonField("Requirements")
    reason = StringField("Reason for this change", validators=[Length(max=500)],
                         description="optional; shown in the history")
    expectedRevision = HiddenField()

    def config(self) -> dict:
        """The configuration the form describes, in the mutations' field names."""
        out = {}
        for name in ("name", "description", "version", "provider", "category", "contentType",
                     "costPerSecond", "supportedDurations", "fixedDuration", "maxDuration",
                     "supportedQualities", "qualityMultipliers", "tags", "isActive",
                     "isPremium", "replicateModelId", "inputSchema", "modelParameters",
                     "requirements"):
            value = self[name].data
            if isinstance(value, str):
                value = value.strip()
            out[name] = value
        out["qualityMultipliers"] = out["qualityMultipliers"] or {}
        out["replicateModelId"] = out["replicateModelId"] or None
        return out
