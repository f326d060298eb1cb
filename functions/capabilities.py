"""What a model can do: the one rule set behind validation and pricing."""

from __future__ import annotations

from db.schema import Model
from engine.errors import FunctionError


def resolve_request(model: Model, duration: int | None, quality: str) -> int:
    """The duration a request on this model will run for; refuses what the model cannot do."""
    if not model.is_active or model.is_deprecated:
        state = "deprecated" if model.is_deprecated else "inactive"
        raise FunctionError("INACTIVE", f"{model.model_id} is {state}", field="modelId")
    if quality not in model.supported_qualities:
        raise FunctionError(
            "UNSUPPORTED_QUALITY",
            f"{model.model_id} does not support quality '{quality}'; supported: "
            f"{', '.join(model.supported_qualities)}",
            field="quality",
            supported=list(model.supported_qualities),
        )
    fixed = model.fixed_duration
    if fixed is not None:
        if duration is not None and duration != fixed:
            raise FunctionError(
                "UNSUPPORTED_DURATION",
                f"{model.model_id} always generates {fixed} s; got {duration} s",
                field="duration",
                supported=[fixed],
            )
        return fixed
    supported = ", ".join(f"{d} s" for d in model.supported_durations)
    if duration is None:
        raise FunctionError(
            "INVALID_ARGUMENT",
            f"duration is required for {model.model_id}; supported: {supported}",
            field="duration",
        )
    if duration not in model.supported_durations:
        raise FunctionError(
            "UNSUPPORTED_DURATION",
            f"{model.model_id} does not support {duration} s; supported: {supported}",
            field="duration",
            supported=list(model.supported_durations),
        )
    return duration
