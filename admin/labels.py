"""Messages as people read them: the functions name fields (`costPerSecond`,
`patch.supportedDurations[1]`, `modelId`); the console says the model spec's labels instead
("Cost per second (USD)"), and a kind of model by its name, not its identifier."""

from __future__ import annotations

import re

from engine.runtime import REGISTRY
from functions import spec

# Every spec field by name, plus the arguments the console's forms send besides them.
LABELS = {f.name: f.label for f in spec.FIELDS} | {
    "newModelId": "New model id", "expectedRevision": "Revision", "reason": "Reason",
    "revision": "Revision", "usage": "Usage", "options": "Options",
    "expiresInDays": "Expires in (days)", "scopes": "Scopes",
}
# A field path as the functions write it: an optional `patch.`/`args.`/`models[3].` prefix,
# the field, then indexes or keys (`[1]`, `.high`).
PATH = re.compile(r"\b((?:(?:patch|args|config|models\[\d+\])\.)*)(" + "|".join(
    sorted(map(re.escape, LABELS), key=len, reverse=True)) + r")(?!\w)((?:\[\d+\]|\.[\w-]+)*)")


def label(name: str) -> str:
    """The label of a field name or path (`patch.costPerSecond` -> its label)."""
    found = PATH.fullmatch(name or "")
    return LABELS[found.group(2)] if found else name


def _spelled(found: re.Match) -> str:
    prefix, name, rest = found.groups()
    if name.islower() and not (prefix or rest or found.start() == 0):
        return found.group(0)  # a plain word in prose ("a name"), not a field
    if name in ("usage", "options") and rest and rest.count(".") == 1:
        return words(rest[1:])  # usage.cacheReadTokens -> "Cache read tokens"
    item = re.fullmatch(r"\[(\d+)\]", rest or "")
    if item:
        return f"{LABELS[name]} (item {int(item.group(1)) + 1})"
    return LABELS[name] + (f" ({rest.lstrip('.')})" if rest else "")


# A function named in parentheses, as an API caller's hint ("... first (models:setDefaultModel)"):
# the console's buttons are the way there, so it is left out (any registered function).
FUNCTION_HINT = re.compile(r" \(([A-Za-z_]\w*:[A-Za-z_]\w*)\)")


def _hint_dropped(found: re.Match) -> str:
    return "" if found.group(1) in REGISTRY else found.group(0)


def labelled(message: str) -> str:
    """`message` with each field name or path it holds spelled as the field's label, and
    without the functions it names for API callers."""
    return PATH.sub(_spelled, FUNCTION_HINT.sub(_hint_dropped, message or ""))


def article(word: str) -> str:
    """The article a word takes: "a" viewer, "an" editor, "an" admin."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def words(name: str) -> str:
    """An identifier that has no label (a usage count, an option) as words:
    `cacheReadTokens` -> "Cache read tokens", `service_tier` -> "Service tier"."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").lower()
    return spaced[:1].upper() + spaced[1:]


def counted(count: int, word: str, plural: str | None = None) -> str:
    """A count and its noun, agreeing: "1 credit", "2,500 credits", "3 deliveries"."""
    return f"{count:,} {word if count == 1 else plural or word + 's'}"
