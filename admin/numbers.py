"""Numbers typed into the console: ASCII digits only, parsed here and nowhere else.

Python's `int()` and `Decimal()` take any Unicode decimal digit ('٣' is 3), signs, spaces
and underscores, and `str.isdigit()` says yes to '²', which `int()` then refuses (a 500). Every
number in a console query or form goes through these functions instead: they take what a
keyboard types, within bounds a database can hold, and answer None for anything else.
"""

from __future__ import annotations

import re
from decimal import Decimal

from config import LARGEST_WHOLE

WHOLE = re.compile(r"[0-9]{1,18}")
# (more decimal places than a price may have are read, for the function to say how many it
# takes: "0.30000000000000004" is refused for its places, as "0.1234567" is)
AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,40})?|\.[0-9]{1,40}")
LARGEST = LARGEST_WHOLE  # an INTEGER column


def whole_number(text: object, *, low: int = 0, high: int = LARGEST) -> int | None:
    """`text` as a whole number from `low` to `high`, when it is one in ASCII digits."""
    if not isinstance(text, str) or not WHOLE.fullmatch(text := text.strip()):
        return None
    value = int(text)
    return value if low <= value <= high else None


def number_or_text(text: str) -> int | str:
    """A whole number when `text` is one, else the text itself: for a function's validator
    to refuse with its own message (naming the field)."""
    value = whole_number(text)
    return text if value is None else value


def amount(text: object) -> Decimal | None:
    """A non-negative decimal amount in ASCII digits ("0.10", "$0.10"), exact; else None."""
    if not isinstance(text, str):
        return None
    text = text.strip().removeprefix("$").strip()
    return Decimal(text) if AMOUNT.fullmatch(text) else None


def too_large(text: object, *, money: bool = False) -> bool:
    """Whether `text` is a number in ASCII digits refused only for its size (a whole number
    past LARGEST; an amount with over 15 digits before its point): said so, not "not a
    number"."""
    if not isinstance(text, str):
        return False
    spelt = re.fullmatch(r"0*([0-9]+?)(?:\.([0-9]+))?", text.strip().removeprefix("$").strip())
    if spelt is None or (spelt.group(2) is not None and not money):
        return False
    if money:
        return len(spelt.group(1)) > 15
    return int(spelt.group(1)) > LARGEST if len(spelt.group(1)) <= 30 else True
