"""The converter over LiteLLM's real price maps, as shipped in its wheels on PyPI (fetched by
`make install-test`, tests/litellm_maps.py, into .venv/litellm-maps; not committed: the exact
proof of the formulas is tests/test_price_references.py on the small committed map).

    python -m tests.test_litellm_real_maps .venv/litellm-maps/litellm-1.110.2.json

prints the figures: entries with a complete schedule, complete with keys classified as not a
price of the request, partial (a price left unexpressed, by reason), none (no valid schedule),
and the share of priced entries with a price left unexpressed.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from functions.price_maps import from_litellm, is_ignored

MAPS = Path(os.environ.get("LITELLM_MAPS", Path(__file__).parent.parent / ".venv/litellm-maps"))


def coverage(path: Path) -> dict:
    entries = json.loads(path.read_text())
    entries.pop("sample_spec", None)
    kinds: Counter = Counter()
    unexpressed: Counter = Counter()
    ignored: Counter = Counter()
    priced = 0
    for key, entry in entries.items():
        schedule, reasons = from_litellm(key, entry)
        left = [r for r in reasons if not is_ignored(r)]
        priced += any(v is not None and ("cost" in k or "multiplier" in k or k in (
            "tiered_pricing", "off_peak_pricing")) for k, v in entry.items())
        kinds["none" if schedule is None else "partial" if left
              else "complete, some keys ignored" if reasons else "complete"] += 1
        unexpressed.update(re.sub(r"schedule\[0\]\.components.*", "schedule[0].components...",
                                  r) for r in left)
        ignored.update(r.split(":")[1].strip() for r in reasons if is_ignored(r))
    return {"entries": len(entries), "priced": priced, "kinds": dict(kinds),
            "unexpressed": dict(unexpressed.most_common()), "ignored": dict(ignored.most_common()),
            "share": (kinds["partial"] + kinds["none"]) / priced}


# the share of priced entries with a price left unexpressed; 1.80.0 (the older format) keeps 14
# Gemini 1.5 entries whose Vertex character prices change above 32k characters
@pytest.mark.parametrize("name,share", [("litellm-1.110.2.json", 0.01),
                                        ("litellm-1.80.0.json", 0.015)])
def test_the_real_maps_convert_with_every_left_out_price_reported(name, share):
    path = MAPS / name
    assert path.exists(), f"{path} is missing: `make install-test` fetches it"
    figures = coverage(path)
    print(json.dumps(figures, indent=1))
    assert figures["kinds"].get("none", 0) == 0
    assert figures["share"] < share


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, json.dumps(coverage(Path(arg)), indent=1))
