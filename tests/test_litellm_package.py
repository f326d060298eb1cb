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
  adds for a video generation.

Images are proved against a port of LiteLLM's formulas (tests/test_price_references.py): the
package picks an image calculator by provider. The real maps' coverage is
tests/test_litellm_real_maps.py.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from decimal import Decimal
from importlib import resources
from importlib.metadata import version

import pytest

from functions import prices
from functions.price_maps import from_litellm, is_ignored
from tests.test_price_references import TIERS, prompt_counts

MODES = ("chat", "completion", "responses", "embedding")
AUDIO = {"audio_speech": ("input_cost_per_character", "speech"),
         "audio_transcription": ("input_cost_per_second", "transcription")}
AT = 1_790_000_000_000  # any moment: these entries have no time-of-day prices


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


def differences(key: str, info: dict) -> tuple[int, list[str]]:
    """How many cases of one entry were compared, and those that differ."""
    from litellm.litellm_core_utils.llm_cost_calc.utils import generic_cost_per_token
    schedule = representable(key, info)
    if schedule is None:
        return 0, []
    compared, differ = 0, []
    for tier in (None, *(t for t in TIERS if any(k.endswith(f"_{t}") for k in info))):
        for prompt in prompt_counts(info):
            theirs, ours = request(prompt, 0 if info["mode"] == "embedding" else 4_321)
            expected = sum(generic_cost_per_token(
                model=key, usage=theirs, custom_llm_provider=info.get("litellm_provider"),
                model_info=info, service_tier=tier))
            quoted = prices.quote(schedule, ours, {"serviceTier": tier} if tier else {}, AT,
                                  Decimal(100))
            compared += 1
            if not same(quoted, expected):
                differ.append(f"{key} tier={tier} prompt={prompt}: engine "
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
        for resolution in (None, *named, *(r.upper() for r in named), "1440p"):
            for seconds in (1, 8):
                for images in ((0, 2) if "input_cost_per_image" in info else (0,)):
                    expected = video_generation_cost(
                        model=key, duration_seconds=seconds, custom_llm_provider=provider,
                        model_info=info, video_resolution=resolution) + _video_input_image_cost(
                        key, provider, info, {"billable_input_image_count": images})
                    usage = {"seconds": seconds} | ({"inputImages": images} if images else {})
                    options = {"resolution": resolution} if resolution else {}
                    quoted = prices.quote(schedule, usage, options, AT, Decimal(100))
                    compared += 1
                    if not same(quoted, expected):
                        differ.append(f"{key} {resolution} {seconds} s {images} images: engine "
                                      f"{quoted['usdExact']}, LiteLLM {expected!r}")
    assert differ == [], f"{len(differ)} of {compared} cases differ, e.g. {differ[:5]}"
    assert compared >= 1_000  # (88 video models with 1.110.2): not vacuous
