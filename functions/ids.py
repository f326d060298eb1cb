"""Model ids: one grammar and one canonical form, for every path.

An id is one or more segments joined by '/'. A segment starts with a letter or a digit and goes
on with letters, digits, '_', '-', ':', '@' and '.', where every '.' is followed by a character
that is not a '.': no segment is empty, starts or ends with '.', or holds '..'. A segment after
the first may also start with one '@' or '~' (a provider's namespace or alias: Cloudflare's
`@cf/`, OpenRouter's `~anthropic/`). That takes the ids of public price maps as they are
(`openai/gpt-4o`, `ollama/llama2:13b`,
`bedrock/us-east-1/anthropic.claude-3-5-sonnet-20240620-v1:0`, `vertex_ai/claude-3-opus@20240229`,
`cloudflare/@cf/meta/llama-3.1-8b-instruct`, `openrouter/~openai/gpt-latest`); a wildcard
(`bedrock/*/...`) is not an id.

Ids are case-insensitive and canonical: whatever the case a caller writes, an id is stored and
answered in lower case, and every lookup lowers its argument first. So `Luma/Ray-2-720p` is
`luma/ray-2-720p`, and one model has one spelling in answers, history, caches and catalog files.
Only ASCII letters are folded: a lookup by a look-alike (the Kelvin sign for 'k') finds nothing.
"""

from __future__ import annotations

import string

from engine.values import String

SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9_:@-]|\.[A-Za-z0-9_:@-])*"
PATTERN = rf"{SEGMENT}(?:/[@~]?{SEGMENT})*"
HINT = ("segments of letters, digits, '.', '_', '-', ':' or '@' joined by '/', each starting "
        "with a letter or digit (after the first, '@' or '~' may come before it), with no '..' "
        "and no '.' at either end (e.g. google/veo-3)")

_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def canonical(model_id: str) -> str:
    """The one spelling of an id: ASCII letters in lower case."""
    return model_id.translate(_LOWER)


class ModelId(String):
    """A modelId argument, handed to the function in its canonical form."""

    def check(self, value, path):
        return canonical(super().check(value, path))


# A new model's id: the grammar above.
MODEL_ID = ModelId(1, 200, pattern=PATTERN, hint=HINT)
# An id to look up: any text; an id that breaks the grammar names no model.
MODEL_REF = ModelId(1, 200)
