"""Console forms: a model's fields as a person edits them, parsed before any mutation runs."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from flask_admin.form import BaseForm
from flask_wtf.csrf import generate_csrf
from wtforms import (
    BooleanField,
    Field,
    HiddenField,
    IntegerField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import TextInput


class CsrfForm(BaseForm):
    """Every console form carries Flask-WTF's token; CSRFProtect checks it before any view runs."""

    csrf_token = HiddenField(default=generate_csrf)

    def __init__(self, formdata=None, obj=None, prefix="", **kwargs):
        super().__init__(formdata, obj, prefix, **kwargs)
        self.csrf_token.data = generate_csrf()


class ListField(Field):
    """A comma-separated list: "standard, high" -> ["standard", "high"]."""

    widget = TextInput()

    def __init__(self, *args, item=str, **kwargs):
        super().__init__(*args, **kwargs)
        self.item = item

    def _value(self) -> str:
        return ", ".join(str(x) for x in self.data or [])

    def process_formdata(self, valuelist):
        self.data = []
        if not valuelist:
            return
        for part in valuelist[0].split(","):
            part = part.strip()
            if not part:
                continue
            try:
                self.data.append(self.item(part))
            except ValueError:
                self.data = []
                raise ValueError(f"'{part}' is not a whole number") from None


class JsonField(TextAreaField):
    """A JSON object, checked before saving; empty means none."""

    def _value(self) -> str:
        return "" if self.data is None else json.dumps(self.data, indent=2, sort_keys=True)

    def process_formdata(self, valuelist):
        text = valuelist[0].strip() if valuelist else ""
        if not text:
            self.data = None
            return
        try:
            self.data = json.loads(text)
        except json.JSONDecodeError as error:
            self.data = None
            raise ValueError(
                f"Not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            ) from None
        if not isinstance(self.data, dict):
            raise ValueError("Must be a JSON object ({...})")


class MoneyField(StringField):
    """USD with at most 6 decimal places, kept exact."""

    def _value(self) -> str:
        return "" if self.data is None else format(Decimal(str(self.data)).normalize(), "f")

    def process_formdata(self, valuelist):
        text = valuelist[0].strip().lstrip("$") if valuelist else ""
        try:
            self.data = float(Decimal(text)) if text else None
        except InvalidOperation:
            self.data = None
            raise ValueError(f"'{text}' is not an amount in USD") from None


class ModelForm(CsrfForm):
    modelId = StringField("Model id", validators=[DataRequired(), Length(max=200)],
                          description="e.g. google/veo-3; cannot be changed later")
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    description = TextAreaField("Description", validators=[Length(max=5000)])
    version = StringField("Version", default="1.0", validators=[Length(max=50)])
    provider = StringField("Provider", validators=[DataRequired(), Length(max=100)])
    category = StringField("Category", validators=[Length(max=100)])
    contentType = StringField("Content type", default="prompt_to_video")
    costPerSecond = MoneyField("Cost per second (USD)", validators=[DataRequired()])
    supportedDurations = ListField("Supported durations (s)", item=int,
                                   description="comma-separated, e.g. 5, 9")
    fixedDuration = IntegerField("Fixed duration (s)", validators=[Optional()],
                                 description="only for models that always run this long")
    maxDuration = IntegerField("Max duration (s)", validators=[Optional()],
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
