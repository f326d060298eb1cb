"""The engine against the real `litellm` package (1.110.2, a test dependency): entries of the map
that package ships, converted as `catalog import-prices litellm` converts them
(functions/price_maps.py) and quoted by the engine, must cost what LiteLLM's own functions say,
within a relative 1e-9 (LiteLLM computes in floats):

- every token-priced entry (chat, completion, responses, embedding, and speech or transcription
  priced by tokens), against `generic_cost_per_token`: every prompt size on both sides of every
  threshold the entry prices, every service tier it prices, and a request with cache reads and
  writes, audio and image input, audio and reasoning output;
- speech priced per character and transcription per second, against `cost_per_token`;
- video priced per second (by resolution) and per input image, against what `completion_cost`
  adds for a video generation;
- images, per image and per pixel, against its image router (a calculator per provider), except
  the models it prices from a response's image tokens.

The real maps' coverage is tests/test_litellm_real_maps.py.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from importlib.metadata import version
from itertools import product

import pytest

from functions import prices, sources
from functions.price_maps import from_litellm, image_options, is_ignored
from tests.test_price_references import TIERS, prompt_counts

MODES = ("chat", "completion", "responses", "embedding")
AUDIO = {"audio_speech": ("input_cost_per_character", "speech"),
         "audio_transcription": ("input_cost_per_second", "transcription")}
AT = 1_790_000_000_000  # a Monday, 14:13 UTC: the moment both sides price at


def shipped_map() -> dict:
    """The price map inside the installed package: the one its code was released with."""
    text = (resources.files("litellm") / "model_prices_and_context_window_backup.json").read_text()
    entries = json.loads(text)
    entries.pop("sample_spec", None)
    return entries


def token_priced(info: dict) -> bool:
    mode = info.get("mode")
    return (mode in MODES or (mode in AUDIO and AUDIO[mode][0] not in info)) and isinstance(
        info.get("input_cost_per_token"), int | float)


def representable(key: str, info: dict) -> list[dict] | None:
    """The entry's schedule, when the converter expresses all of it (the others are reported,
    tests/test_litellm_real_maps.py)."""
    schedule, reasons = from_litellm(key, info)
    if schedule is None or [r for r in reasons if not is_ignored(r)]:
        return None
    return schedule


def same(quoted: dict, expected: float) -> bool:
    return math.isclose(float(Decimal(quoted["usdExact"])), expected, rel_tol=1e-9,
                        abs_tol=1e-12)


def request(prompt: int, completion: int) -> tuple[object, dict]:
    """One request as LiteLLM's Usage and as the engine's usage."""
    from litellm.types.utils import (
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        Usage,
    )

    cached, creation, audio, image = prompt // 4, prompt // 8, prompt // 10, prompt // 20
    out_audio, reasoning = completion // 10, completion // 5
    theirs = Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetailsWrapper(
            cached_tokens=cached, audio_tokens=audio, image_tokens=image),
        completion_tokens_details=CompletionTokensDetailsWrapper(
            audio_tokens=out_audio, reasoning_tokens=reasoning),
        cache_creation_input_tokens=creation)
    ours = {"inputTokens": prompt, "cacheReadTokens": cached, "cacheWriteTokens": creation,
            "inputAudioTokens": audio, "inputImageTokens": image, "outputTokens": completion,
            "outputAudioTokens": out_audio, "outputReasoningTokens": reasoning,
            # LiteLLM has no count of these overlaps: none (the engine asks when one is priced)
            "cacheAudioReadTokens": 0, "cacheImageReadTokens": 0, "cacheAudioWriteTokens": 0,
            "cacheImageWriteTokens": 0}
    return theirs, ours


def moments(info: dict) -> list[int]:
    """AT; and for an entry with off-peak prices, both sides of every hour and half hour of a
    week (its windows are by hour of the day and day of the week, UTC)."""
    if "off_peak_pricing" not in info:
        return [AT]
    monday = AT - AT % (24 * 3_600_000)
    return [AT, *(monday + half * 1_800_000 + edge for half in range(7 * 48)
                  for edge in (-1, 0))]


def differences(key: str, info: dict) -> tuple[int, list[str]]:
    """How many cases of one entry were compared, and those that differ. LiteLLM is told the
    moment (`current_time`): left to its clock, an entry with off-peak prices differed by the
    hour the suite ran at."""
    from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token
    schedule = representable(key, info)
    if schedule is None:
        return 0, []
    compared, differ = 0, []
    for tier, at in product((None, *(t for t in TIERS if any(k.endswith(f"_{t}") for k in info))),
                            moments(info)):
        for prompt in prompt_counts(info) if at == AT else prompt_counts(info)[:1]:
            theirs, ours = request(prompt, 0 if info["mode"] == "embedding" else 4_321)
            expected = sum(generic_cost_per_token(
                model=key, usage=theirs, custom_llm_provider=info.get("litellm_provider"),
                model_info=info, service_tier=tier,
                current_time=datetime.fromtimestamp(at / 1000, UTC)))
            quoted = prices.quote(schedule, ours, {"serviceTier": tier} if tier else {}, at,
                                  Decimal(100))
            compared += 1
            if not same(quoted, expected):
                differ.append(f"{key} tier={tier} at={at} prompt={prompt}: engine "
                              f"{quoted['usdExact']}, LiteLLM {expected!r}")
    return compared, differ


@pytest.mark.sweep
def test_every_token_priced_entry_costs_what_litellm_says():
    # imported here, not when the suite is collected (litellm takes 2 s to import); its own
    # map only, never a newer one fetched from the network
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    assert version("litellm") == "1.110.2"  # the version the converter follows (README)
    entries = {key: info for key, info in shipped_map().items() if token_priced(info)}
    compared, differ = 0, []
    for key, info in entries.items():
        count, wrong = differences(key, info)
        compared += count
        differ += wrong
    assert differ == [], f"{len(differ)} of {compared} cases differ, e.g. {differ[:5]}"
    assert compared >= 5_000  # (5,852 with 1.110.2): the proof is not vacuous


@pytest.mark.sweep
def test_speech_per_character_and_transcription_per_second_cost_what_litellm_says():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    compared, differ = Counter(), []
    for key, info in shipped_map().items():
        mode = info.get("mode")
        if mode not in AUDIO or AUDIO[mode][0] not in info:
            continue
        schedule = representable(key, info)
        if schedule is None:
            continue
        if mode == "audio_speech":
            usage, how = {"characters": 1_234}, {"prompt_characters": 1_234}
        else:
            usage, how = {"audioSeconds": "90.5"}, {"audio_transcription_file_duration": 90.5}
        expected = sum(litellm.cost_per_token(
            model=key, custom_llm_provider=info.get("litellm_provider"),
            call_type=AUDIO[mode][1], **how))
        quoted = prices.quote(schedule, usage, {}, AT, Decimal(100))
        compared[mode] += 1
        if not same(quoted, expected):
            differ.append(f"{key}: engine {quoted['usdExact']}, LiteLLM {expected!r}")
    assert differ == [], f"{len(differ)} of {compared.total()} differ, e.g. {differ[:5]}"
    # (37 speech and 99 transcription models with 1.110.2): not vacuous
    assert compared["audio_speech"] >= 30 and compared["audio_transcription"] >= 90


@pytest.mark.sweep
def test_every_video_entry_costs_what_litellm_says():
    """Video priced per second, by resolution (output_cost_per_second_<resolution>, else the
    plain per-second price; output_cost_per_video_per_second before both) and per input image,
    against LiteLLM's own video cost: what `completion_cost` adds for a video generation,
    `video_generation_cost` and `_video_input_image_cost`, each given the entry."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from litellm.cost_calculator import _video_input_image_cost
    from litellm.llms.openai.cost_calculation import video_generation_cost

    compared, differ = 0, []
    for key, info in shipped_map().items():
        if info.get("mode") != "video_generation":
            continue
        schedule = representable(key, info)
        if schedule is None:
            continue
        provider = info.get("litellm_provider")
        named = [k.removeprefix("output_cost_per_second_") for k in info
                 if k.startswith("output_cost_per_second_")]
        resolutions = (None, *named, *(r.upper() for r in named), "1440p")
        images = (0, 2) if "input_cost_per_image" in info else (0,)
        for resolution, seconds, count in product(resolutions, (1, 8), images):
            expected = video_generation_cost(
                model=key, duration_seconds=seconds, custom_llm_provider=provider,
                model_info=info, video_resolution=resolution) + _video_input_image_cost(
                key, provider, info, {"billable_input_image_count": count})
            usage = {"seconds": seconds} | ({"inputImages": count} if count else {})
            options = {"resolution": resolution} if resolution else {}
            quoted = prices.quote(schedule, usage, options, AT, Decimal(100))
            compared += 1
            if not same(quoted, expected):
                differ.append(f"{key} {resolution} {seconds} s {count} images: engine "
                              f"{quoted['usdExact']}, LiteLLM {expected!r}")
    assert differ == [], f"{len(differ)} of {compared} cases differ, e.g. {differ[:5]}"
    assert compared >= 1_000  # (88 video models with 1.110.2): not vacuous


def priced_by_response_tokens(key: str, info: dict) -> bool:
    """Image models LiteLLM's image router prices from the response's token usage: OpenAI's
    gpt-image family (every size and quality key, whatever per-image price the key gives) and
    every model priced by image tokens (Gemini's, Microsoft's MAI). Their calculators read the
    response's `usage`; without one they answer 0, or the price of the input images. The engine
    prices those tokens as the map gives them (the token proof above), and an image by the
    map's per-image price: no comparison."""
    if info.get("litellm_provider") in ("openai", "azure", "azure_ai") and "gpt-image" in key:
        return True
    return "output_cost_per_image_token" in info


def router_image_cost(key: str, info: dict, images: int) -> float:
    """What LiteLLM's image router (`completion_cost` for an image generation) charges for
    `images` images made with the size and quality the key names."""
    from litellm.litellm_core_utils.llm_cost_calc.utils import CostCalculatorUtils
    from litellm.types.utils import ImageObject, ImageResponse

    options = image_options(key)
    size = options.get("size", "1024x1024").replace("x", "-x-")
    model, params = key, None
    if info.get("litellm_provider") == "bedrock" and "-steps/" in key:
        # stability 1 keys are "<size>/<steps>/<model>": its calculator builds them from the
        # request's size and steps (over 50 is max-steps)
        size, steps, model = key.split("/", 2)  # (a size may be "max-x-max")
        params = {"steps": 50 if steps == "50-steps" else 51}
    response = ImageResponse(data=[ImageObject(url="x") for _ in range(images)])
    return CostCalculatorUtils.route_image_generation_cost_calculator(
        model=model, completion_response=response, size=size, n=images,
        custom_llm_provider=info.get("litellm_provider"), quality=options.get("quality"),
        optional_params=params, call_type="image_generation", model_info=info)


def image_costs(key: str, info: dict, schedule: list[dict],
                images: int) -> tuple[float | None, dict | None]:
    """LiteLLM's cost and the engine's quote for `images` images of the key's size and quality;
    None for each that prices no image (an image model priced by tokens alone)."""
    try:
        expected = router_image_cost(key, info, images)
    except Exception as error:  # noqa: BLE001 - LiteLLM raises a bare Exception for "no price"
        if not str(error).startswith("No pricing information"):
            raise
        expected = None
    options = image_options(key)
    usage = {"images": images}
    if any(c["unit"] == "image_pixel" for e in schedule for c in e["components"]):
        # priced per pixel, with no size in the key: the caller counts the pixels; LiteLLM's
        # router takes 1024 x 1024 when the request names no size
        width, height = map(int, options.get("size", "1024x1024").split("x"))
        usage = {"imagePixels": width * height * images}
    try:
        quoted = prices.quote(schedule, usage, options, AT, Decimal(100))
    except prices.PricingError as error:
        if error.code != "UNSUPPORTED_USAGE":
            raise
        quoted = None
    return expected, quoted


@pytest.mark.sweep
def test_every_image_model_costs_what_litellm_says():
    """Image models as `catalog import-prices litellm` makes them (one model of every size and
    quality key), each key's images against LiteLLM's own image router: per image, per pixel
    of the key's size, by provider (bedrock's steps, fal.ai's qualities)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    data = shipped_map()
    compared, differ, skipped = 0, [], 0
    for model in sources.litellm(data).models:
        keys = [k for k in model["keys"] if data[k].get("mode") == "image_generation"]
        if not keys:
            continue
        schedule = model["fields"]["prices"]
        for key in keys:
            info = data[key]
            if priced_by_response_tokens(key, info):
                skipped += 1
                continue
            for images in (1, 3):
                expected, quoted = image_costs(key, info, schedule, images)
                compared += 1
                if (expected is None) != (quoted is None) or (
                        quoted is not None and not same(quoted, expected)):
                    differ.append(f"{key} x{images}: engine "
                                  f"{quoted and quoted['usdExact']}, LiteLLM {expected!r}")
    assert differ == [], f"{len(differ)} of {compared} cases differ, e.g. {differ[:5]}"
    # (566 cases of 283 keys, and 101 keys priced by tokens, with 1.110.2): not vacuous
    assert compared >= 500 and skipped < compared
