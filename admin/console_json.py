"""JSON typed or uploaded into the console, decoded here and nowhere else, its depth bounded.

Python's json module recurses once per level of nesting, and so do the validators, templates
and encoders after it: a few thousand '[' raise RecursionError (a 500). So the nesting is
measured first, without recursion, and refused past MAX_DEPTH with a message, and the decoder
refuses NaN and Infinity as the API does. The engine's own decoder (engine/values.py) is
getting a depth bound for API values; `decode_console_json` is meant to be folded into it then.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.values import DecodeError, json_float, keys_once

# A catalog file nests a model's JSON fields (at most 16 levels, engine/values.py) three levels
# down: 64 leaves room for the functions to name the field that is too deep, far from Python's
# recursion limit.
MAX_DEPTH = 64
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
NOT_BRACKET = re.compile(r"[^][{}]+")


class ConsoleJsonError(ValueError):
    """The text is not JSON the console takes; the message says why, for the person."""


def nesting_depth(text: str, stop: int = MAX_DEPTH) -> int:
    """How deep arrays and objects nest in `text` (strings skipped), counting up to `stop` + 1."""
    depth = deepest = 0
    for char in NOT_BRACKET.sub("", STRING.sub("", text)):
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> None:
    raise ConsoleJsonError(f"{name} is not a number JSON allows")


def text_of_file(raw: bytes) -> str:
    """An uploaded file's text: UTF-8, as JSON is, or a ConsoleJsonError (a Latin-1 file read
    with replacement characters would store them)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConsoleJsonError(
            f"it is not UTF-8 text (byte 0x{raw[error.start]:02x} at position {error.start:,}); "
            "save it as UTF-8") from None


def decode_console_json(text: str, keys_twice: bool = False) -> Any:
    """The value `text` holds; ConsoleJsonError (with a readable reason) when it is not JSON,
    nests deeper than MAX_DEPTH, holds NaN or Infinity, or names a key twice in one object
    (unless `keys_twice`: a public price map, read as its publisher's tools read it, the last
    one kept)."""
    if nesting_depth(text) > MAX_DEPTH:
        raise ConsoleJsonError(f"Nested more than {MAX_DEPTH} levels deep")
    try:
        if keys_twice:  # numbers as doubles, as its publisher's tools read them
            return json.loads(text, parse_constant=_refuse_constant)
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=keys_once,
                          parse_float=json_float)
    except json.JSONDecodeError as error:
        raise ConsoleJsonError(
            f"Not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None
    except DecodeError as error:  # a key named twice
        raise ConsoleJsonError(f"It {error}") from None
    except ConsoleJsonError:
        raise
    except RecursionError:  # not reached below MAX_DEPTH; kept as the last line of defence
        raise ConsoleJsonError(f"Nested more than {MAX_DEPTH} levels deep") from None
    except ValueError:  # an integer of more than 4,300 digits
        raise ConsoleJsonError("Holds a number too long to read") from None
