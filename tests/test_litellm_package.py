"""The engine against the real `litellm` package (1.110.2, a test dependency): every token-priced
entry of the map that package ships, converted as `catalog import-prices litellm` converts it
(functions/price_maps.py), quoted by the engine, must cost what LiteLLM's own
`generic_cost_per_token` says, within a relative 1e-9 (LiteLLM computes in floats).

The cases: every prompt size on both sides of every threshold the entry prices, every service
tier it prices, and a request with cache reads and writes, audio and image input, audio and
reasoning output. Other modes (images, video, speech, transcription) are proved against a port of
LiteLLM's formulas (tests/test_price_references.py), and the real maps' coverage in
tests/test_litellm_real_maps.py.
"""

from __future__ import annotations

import json
import math
import os
from decimal import Decimal
from importlib import resources
from importlib.metadata import version

import pytest

from functions import prices
from functions.price_maps import from_litellm, is_ignored
from tests.test_price_references import TIERS, prompt_counts

MODES = ("chat", "completion", "responses", "embedding")
AT = 1_790_000_000_000  # any moment: these entries have no time-of-day prices


def shipped_map() -> dict:
    """The price map inside the installed package: the one its code was released with."""
    text = (resources.files("litellm") / "model_prices_and_context_window_backup.json").read_text()
    entries = json.loads(text)
    entries.pop("sample_spec", None)
    return entries


def token_priced(info: dict) -> bool:
    return info.get("mode") in MODES and isinstance(info.get("input_cost_per_token"), int | float)


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
    schedule, reasons = from_litellm(key, info)
    if schedule is None or [r for r in reasons if not is_ignored(r)]:
        return 0, []  # reported as not representable, or partly: tests/test_litellm_real_maps.py
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
            if not math.isclose(float(Decimal(quoted["usdExact"])), expected, rel_tol=1e-9,
                                abs_tol=1e-12):
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
    assert compared >= 5_000  # (5,825 with 1.110.2): the proof is not vacuous
