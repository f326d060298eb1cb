"""What a model can do: the one rule set behind validation and pricing."""

from __future__ import annotations

from db.schema import Model
from engine.errors import FunctionError
from functions import prices


def require_active(model: Model) -> None:
    if not model.is_active or model.is_deprecated:
        state = "deleted" if model.is_deprecated else "inactive"
        raise FunctionError("INACTIVE", f"{model.model_id} is {state}", field="modelId")


def require_video(model: Model) -> None:
    if model.content_type != "video":
        kind = model.content_type
        raise FunctionError(
            "INVALID_ARGUMENT", f"{model.model_id} is {'an' if kind[0] in 'aeiou' else 'a'} "
            f"{kind} model: durations and qualities are for video models; price it with "
            "pricing:quote", field="modelId")


def check_quality(model: Model, quality: str, field: str = "quality") -> None:
    """A model priced by `prices` that lists no qualities takes any (its price decides).
    `field`: where the caller gave the quality (a quote's is `options.quality`)."""
    if not model.supported_qualities and model.prices is not None:
        return
    if not prices.among_options(quality, model.supported_qualities):
        raise FunctionError(
            "UNSUPPORTED_QUALITY",
            f"{model.model_id} does not support quality '{quality}'; supported: "
            f"{', '.join(model.supported_qualities)}",
            field=field,
            supported=list(model.supported_qualities),
        )


def resolve_duration(model: Model, duration: int | None, field: str = "duration") -> int:
    """The duration a request on this video model will run for. `field`: where the caller
    gave the duration (a quote's is `usage.seconds`)."""
    fixed = model.fixed_duration
    if fixed is not None:
        if duration is not None and duration != fixed:
            raise FunctionError(
                "UNSUPPORTED_DURATION",
                f"{model.model_id} always generates {fixed} s; got {duration} s",
                field=field,
                supported=[fixed],
            )
        return fixed
    if not model.supported_durations and model.prices is not None:
        # priced by `prices` with no durations listed: any whole duration up to maxDuration
        longest = model.max_duration or 3600
        if duration is None:
            raise FunctionError("INVALID_ARGUMENT", f"{field} is required for "
                                f"{model.model_id} (up to {longest} s)", field=field)
        if not 1 <= duration <= longest:
            raise FunctionError("UNSUPPORTED_DURATION", f"{model.model_id} runs up to "
                                f"{longest} s; got {duration} s", field=field,
                                supported=[1, longest])
        return duration
    supported = ", ".join(f"{d} s" for d in model.supported_durations)
    if duration is None:
        raise FunctionError(
            "INVALID_ARGUMENT",
            f"{field} is required for {model.model_id}; supported: {supported}",
            field=field,
        )
    if duration not in model.supported_durations:
        raise FunctionError(
            "UNSUPPORTED_DURATION",
            f"{model.model_id} does not support {duration} s; supported: {supported}",
            field=field,
            supported=list(model.supported_durations),
        )
    return duration


def resolve_request(model: Model, duration: int | None, quality: str,
                    offered: bool = True) -> int:
    """The duration a video request will run for; refuses what the model cannot do (and,
    when `offered`, a model that is not active)."""
    if offered:
        require_active(model)
    require_video(model)
    check_quality(model, quality)
    return resolve_duration(model, duration)
