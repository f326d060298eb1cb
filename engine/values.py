"""Values: what a client sends, decoded once, and Convex-style argument validators.

Every value a client sends (an HTTP body, a sync message, Convex's encoded JSON inside them)
is decoded here, by `parse_json` and `decode_convex`, which bound its depth: nothing deeper
than MAX_DECODE_DEPTH reaches a validator, a handler or an encoder.

Every validator (`v.string()`, `v.object({...})`, ...) is strict: unknown fields, wrong types
and missing fields are refused with a message that names the path (`patch.costPerSecond`,
`supportedDurations[1]`). `check` returns the value as the handler should see it; `schema`
describes it as JSON Schema.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import math
import re
import struct
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import FunctionError

MAX_JSON_DEPTH = 16  # a JSON field's own nesting (v.json())
# Any decoded value: arguments hold JSON fields a few levels down, so this leaves room for them
# (their own bound, above, is then reported on the field) and stops what no caller needs.
MAX_DECODE_DEPTH = 64


class DecodeError(ValueError):
    """A client's value that cannot be decoded: not JSON, too deep, or a bad Convex value."""


def _reject_constant(name: str):
    raise DecodeError(f"holds {name}, which is not JSON")


class InexactFloat(float):
    """A JSON number that the double it is read as does not hold: 0.99999999999999999999 is
    read as 1.0, 1e-400 as 0.0. `text` is the number as sent, for the checks that must not
    round it (whole numbers, amounts of money, usage counts); elsewhere it is the double, as a
    Convex client's number is."""

    text: str

    def __new__(cls, value: float, text: str) -> InexactFloat:
        number = super().__new__(cls, value)
        number.text = text
        return number

    def __getnewargs__(self) -> tuple[float, str]:  # copied and pickled whole
        return float(self), self.text


def json_float(text: str) -> float:
    """json's `parse_float` for what people and clients send: the double, or an InexactFloat
    when the double does not hold the number written."""
    value = float(text)
    try:
        exact = Decimal(text)
    except InvalidOperation:  # an exponent past what a decimal holds: 1e-99999999999999999999
        raise DecodeError(f"holds the number {text[:30]}, whose exponent is out of "
                          "range") from None
    if math.isfinite(value) and Decimal(repr(value)) != exact:
        return InexactFloat(value, text)
    return value


# A JSON number past what a double holds (1e400, or 4,301 digits and more): read as infinity.
TOO_LARGE = "is too large: past the largest number a double holds (about 1.8e308)"
INT_DIGITS = 4300  # Python's own bound on converting digits to an int (sys.int_info)


def json_int(text: str) -> int | float:
    """json's `parse_int`: the integer, or, past the digits Python converts, its sign's
    infinity (larger than any bound, refused as such by the field that gets it)."""
    if len(text) <= INT_DIGITS:
        return int(text)
    return -math.inf if text.startswith("-") else math.inf


def parse_json(raw: str | bytes) -> Any:
    """JSON text a client sent: standard JSON only (no NaN or Infinity), at most
    MAX_DECODE_DEPTH levels deep; a number a double does not hold is an InexactFloat."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, parse_float=json_float,
                           parse_int=json_int)
    except DecodeError:
        raise
    except RecursionError:  # the parser's own bound, far past ours
        raise DecodeError(f"nests deeper than {MAX_DECODE_DEPTH} levels") from None
    except json.JSONDecodeError as error:
        raise DecodeError(f"is not valid JSON: {error.msg} at line {error.lineno}, column "
                          f"{error.colno}") from None
    except ValueError:  # also UnicodeDecodeError, a ValueError
        raise DecodeError("is not valid JSON") from None
    _check_depth(value)
    return value


def canonical_json(value: Any) -> str:
    """A decoded value as one key: compact, keys sorted, and a number a double does not hold
    spelt as sent (json would write 0.99999999999999999999 as 1.0, the key of another call)."""
    return json.dumps(_as_sent(value), sort_keys=True, separators=(",", ":"))


def _as_sent(value: Any) -> Any:
    if isinstance(value, InexactFloat):
        return {"$inexact": value.text}  # ('$' names no client's field: decode_convex)
    if isinstance(value, dict):
        return {key: _as_sent(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_sent(item) for item in value]
    return value


def keys_once(pairs: list[tuple[str, Any]]) -> dict:
    """json's `object_pairs_hook` for JSON people write (a catalog file, the console's fields):
    a key named twice in one object is refused, not silently the last one kept."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise DecodeError(f"names the key {json.dumps(repeated)} twice in one object")
    return value


def _check_depth(value: Any) -> None:
    """Refuse a value nested deeper than MAX_DECODE_DEPTH (without recursing)."""
    level = [value]
    for _ in range(MAX_DECODE_DEPTH + 1):
        level = [item for v in level if isinstance(v, (dict, list))
                 for item in (v.values() if isinstance(v, dict) else v)]
        if not level:
            return
    raise DecodeError(f"nests deeper than {MAX_DECODE_DEPTH} levels")


def decode_convex(value: Any, path: str = "args", depth: int = 0) -> Any:
    """Convex's encoded JSON ($integer, $float) to plain values; bytes are refused."""
    if depth > MAX_DECODE_DEPTH:
        raise DecodeError(f"{path}: nests deeper than {MAX_DECODE_DEPTH} levels")
    if isinstance(value, list):
        return [decode_convex(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        key, inner = next(iter(value.items()))
        if key in ("$integer", "$float") and isinstance(inner, str):
            try:
                raw = base64.b64decode(inner, validate=True)
            except (binascii.Error, ValueError):
                raise DecodeError(f"{path}: {key} must be base64") from None
            if len(raw) != 8:
                raise DecodeError(f"{path}: {key} must hold 8 bytes")
            return struct.unpack("<q" if key == "$integer" else "<d", raw)[0]
    out = {}
    for key, item in value.items():
        if key.startswith("$"):
            raise DecodeError(f"{path}.{key}: field names starting with '$' are reserved")
        out[key] = decode_convex(item, f"{path}.{key}", depth + 1)
    return out


def _fail(path: str, message: str) -> FunctionError:
    label = path or "args"
    return FunctionError("INVALID_ARGUMENT", f"{label} {message}", field=path or None)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def text_problem(value: str) -> str | None:
    """Why every database could not store this text (NUL, lone surrogates), or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text"
    return None


def _check_text(value: str, path: str) -> None:
    problem = text_problem(value)
    if problem:
        raise _fail(path, problem)


class Validator:
    optional = False

    def check(self, value: Any, path: str) -> Any:
        raise NotImplementedError

    def schema(self) -> dict:
        raise NotImplementedError


class String(Validator):
    def __init__(self, min_length=0, max_length=1000, pattern: str | None = None, hint=""):
        self.min_length, self.max_length = min_length, max_length
        self.pattern = re.compile(pattern) if pattern else None
        self.hint = hint

    def check(self, value, path):
        if not isinstance(value, str):
            raise _fail(path, f"must be a string, got {_describe(value)}")
        _check_text(value, path)
        if len(value) < self.min_length:
            raise _fail(path, "must not be empty" if self.min_length == 1 else
                        f"must be at least {self.min_length} characters")
        if len(value) > self.max_length:
            raise _fail(path, f"must be at most {self.max_length} characters, got {len(value)}")
        if self.pattern and not self.pattern.fullmatch(value):
            raise _fail(path, f"is not valid{': ' + self.hint if self.hint else ''}")
        return value

    def schema(self):
        out = {"type": "string", "minLength": self.min_length, "maxLength": self.max_length}
        if self.pattern:
            out["pattern"] = f"^(?:{self.pattern.pattern})$"
        return out


class Line(String):
    """A name people read in a list or a sentence: text on one line, not only spaces (empty
    only when its minimum length is 0). Refused:
    controls (a tab, a line break), line and paragraph separators, and invisible format
    characters (direction overrides, which turn the text around them; zero-width spaces;
    byte-order marks), except the joiners that Persian words and emoji sequences need
    (ZWNJ, ZWJ). Any script, any space (a no-break space), any emoji."""

    JOINERS = frozenset("\u200c\u200d")
    REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})

    def check(self, value, path):
        value = super().check(value, path)
        if (value and not value.strip()) or any(  # (empty: refused by a minimum length)
                unicodedata.category(c) in self.REFUSED and c not in self.JOINERS
                for c in value):
            raise _fail(path, "is not valid: text on one line, without control or invisible "
                              "characters, and not only spaces")
        return value


class Date(Validator):
    """A calendar date, YYYY-MM-DD, that exists (not 2025-02-30)."""

    PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")

    def check(self, value, path):
        if not isinstance(value, str):
            raise _fail(path, f"must be a date as a string (YYYY-MM-DD), got {_describe(value)}")
        try:
            if not self.PATTERN.fullmatch(value):
                raise ValueError
            datetime.date.fromisoformat(value)
        except ValueError:
            shown = value if len(value) <= 20 else value[:20] + "…"
            raise _fail(path, f"must be a date that exists, YYYY-MM-DD (e.g. 2026-12-31), "
                              f"got {json.dumps(shown)}") from None
        return value

    def schema(self):
        return {"type": "string", "format": "date",
                "pattern": f"^(?:{self.PATTERN.pattern})$"}


class Number(Validator):
    def __init__(self, minimum=None, maximum=None, exclusive_minimum=None, integer=False,
                 multiple_of=None, unit=None):
        self.minimum, self.maximum = minimum, maximum
        self.exclusive_minimum = exclusive_minimum
        self.integer = integer
        self.multiple_of, self.unit = multiple_of, unit  # unit: what a multiple is called

    def check(self, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, f"must be a number, got {_describe(value)}")
        if isinstance(value, float) and not math.isfinite(value):  # (JSON has no NaN)
            raise _fail(path, TOO_LARGE)
        given = value
        # A number a double does not hold is checked as sent (0.99999999999999999999 is no
        # whole number, 100.00000000000000000001 is above 100) and, when it is handed on as
        # the double, as that too (1e-400 is above 0, its double 0.0 is not).
        sent = Decimal(value.text) if isinstance(value, InexactFloat) else value
        if self.integer and isinstance(value, float):
            if sent != int(sent):
                raise _fail(path, f"must be a whole number, got {_number(value)}")
            value = sent = int(sent)
        low, high = min(sent, value), max(sent, value)
        if self.exclusive_minimum is not None and not low > self.exclusive_minimum:
            raise _fail(path, f"must be greater than {self.exclusive_minimum}, "
                              f"got {_number(given)}{_as_double(given)}")
        if self.minimum is not None and low < self.minimum:
            raise _fail(path, f"must be at least {self.minimum}, got {_number(given)}"
                              f"{_as_double(given)}")
        if self.maximum is not None and high > self.maximum:
            raise _fail(path, f"must be at most {self.maximum}, got {_number(given)}"
                              f"{_as_double(given)}")
        if self.multiple_of is not None and sent % self.multiple_of:
            raise _fail(path, f"must be a multiple of {self.multiple_of}"
                              f"{f' ({self.unit})' if self.unit else ''}, got {_number(given)}")
        return value

    def schema(self):
        out: dict = {"type": "integer" if self.integer else "number"}
        if self.multiple_of is not None:
            out["multipleOf"] = self.multiple_of
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.exclusive_minimum is not None:
            out["exclusiveMinimum"] = self.exclusive_minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


class Amount(Number):
    """A number that may also be sent as a decimal string ("0.20", as prices are written),
    with at most `decimals` decimal places when given: read as the number it spells."""

    # (read with more places than any amount may have, to refuse it for its places)
    DECIMAL = re.compile(r"([0-9]{1,15})(?:\.([0-9]{1,40}))?")
    PLACES = 15  # without `decimals`: what a float holds exactly

    def __init__(self, *, decimals: int | None = None, **bounds):
        super().__init__(**bounds)
        self.decimals = decimals

    def check(self, value, path):
        if isinstance(value, InexactFloat):  # money is never rounded: refused, as sent
            places = self.PLACES if self.decimals is None else self.decimals
            if -min(0, Decimal(value.text).as_tuple().exponent) > places:
                raise _fail(path, f"must have at most {places} decimal places, got "
                                  f"{_number(value)}")
            super().check(value, path)  # its bounds
            raise _fail(path, f"has more digits than a JSON number holds exactly, got "
                              f"{_number(value)}: send it as a decimal string (\"0.20\")")
        spelt = self.DECIMAL.fullmatch(value) if isinstance(value, str) else None
        if isinstance(value, str) and spelt is None:
            shown = json.dumps(value) if len(value) <= 24 else "a longer string"
            raise _fail(path, "must be a number, or a decimal string: 1 to 15 digits, then "
                              'a point and digits if any ("0.20"; no sign, no exponent), '
                              f"got {shown}")
        if spelt is not None:
            places = self.PLACES if self.decimals is None else self.decimals
            if len(spelt.group(2) or "") > places:
                raise _fail(path, f"must have at most {places} decimal places, got {value}")
            value = float(value) if spelt.group(2) else int(value)  # exact: 15 digits
        return super().check(value, path)

    def schema(self):
        places = "{1,15}" if self.decimals is None else f"{{1,{self.decimals}}}"
        spelt = {"type": "string", "pattern": f"^[0-9]{{1,15}}(\\.[0-9]{places})?$"}
        return {"anyOf": [super().schema(), spelt]}


def _as_double(value: object) -> str:
    """For a number a double does not hold: what it is read as, " (0.0 as a double)"."""
    return f" ({float(value)!r} as a double)" if isinstance(value, InexactFloat) else ""


def _number(value: int | float) -> str:
    """A number as a message shows it: as sent, or in a dozen characters when longer (1e308
    as a whole number has 309 digits)."""
    if isinstance(value, InexactFloat):  # its own digits: rounded, they would hide why
        return value.text if len(value.text) <= 40 else f"{value.text[:36]}…"
    text = str(value)
    if len(text) <= 20:
        return text
    mantissa, _, exponent = f"{Decimal(value):.5e}".partition("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


class Boolean(Validator):
    def check(self, value, path):
        if not isinstance(value, bool):
            raise _fail(path, f"must be true or false, got {_describe(value)}")
        return value

    def schema(self):
        return {"type": "boolean"}


class Literal(Validator):
    def __init__(self, *choices: str):
        self.choices = choices

    def check(self, value, path):
        if value not in self.choices or not isinstance(value, str):
            raise _fail(path, f"must be one of {', '.join(self.choices)}")
        return value

    def schema(self):
        return {"type": "string", "enum": list(self.choices)}


class Array(Validator):
    def __init__(self, item: Validator, min_items=0, max_items=100, unique=False):
        self.item, self.min_items, self.max_items, self.unique = item, min_items, max_items, unique

    def check(self, value, path):
        if not isinstance(value, list):
            raise _fail(path, f"must be an array, got {_describe(value)}")
        if len(value) < self.min_items:
            raise _fail(path, f"must have at least {self.min_items} "
                              f"item{'' if self.min_items == 1 else 's'}")
        if len(value) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} items, got {len(value)}")
        out = [self.item.check(item, f"{path}[{i}]") for i, item in enumerate(value)]
        if self.unique and len({json.dumps(x, sort_keys=True) for x in out}) != len(out):
            raise _fail(path, "must not repeat an item")
        return out

    def schema(self):
        out = {"type": "array", "items": self.item.schema(), "minItems": self.min_items,
               "maxItems": self.max_items}
        if self.unique:
            out["uniqueItems"] = True
        return out


class Optional(Validator):
    optional = True

    def __init__(self, inner: Validator):
        self.inner = inner

    def check(self, value, path):
        return self.inner.check(value, path)

    def schema(self):
        return self.inner.schema()


class Nullable(Validator):
    def __init__(self, inner: Validator):
        self.inner = inner

    def check(self, value, path):
        return None if value is None else self.inner.check(value, path)

    def schema(self):
        return {"anyOf": [self.inner.schema(), {"type": "null"}]}


class Object(Validator):
    def __init__(self, fields: dict[str, Validator]):
        self.fields = fields

    def check(self, value, path):
        if not isinstance(value, dict):
            raise _fail(path, f"must be an object, got {_describe(value)}")
        for key in value:
            if key not in self.fields:
                where = f"{path}.{key}" if path else str(key)
                allowed = ", ".join(self.fields) or "none"
                raise _fail(where, f"is not an allowed field (allowed: {allowed})")
        out = {}
        for name, validator in self.fields.items():
            where = f"{path}.{name}" if path else name
            if name not in value:
                if not validator.optional:
                    raise _fail(where, "is required")
                continue
            out[name] = validator.check(value[name], where)
        return out

    def schema(self):
        return {
            "type": "object",
            "properties": {k: f.schema() for k, f in self.fields.items()},
            "required": [k for k, f in self.fields.items() if not f.optional],
            "additionalProperties": False,
        }


class Record(Validator):
    def __init__(self, key: String, value: Validator, max_items=50):
        self.key, self.value, self.max_items = key, value, max_items

    def check(self, value, path):
        if not isinstance(value, dict):
            raise _fail(path, f"must be an object, got {_describe(value)}")
        if len(value) > self.max_items:
            raise _fail(path, f"must have at most {self.max_items} entries")
        return {
            self.key.check(k, f"{path}.{k}"): self.value.check(item, f"{path}.{k}")
            for k, item in value.items()
        }

    def schema(self):
        return {"type": "object", "additionalProperties": self.value.schema(),
                "propertyNames": self.key.schema(), "maxProperties": self.max_items}


class Json(Validator):
    """Any JSON object, bounded in size and depth; keys may not start with '$' (Convex)."""

    def __init__(self, max_bytes=65536):
        self.max_bytes = max_bytes

    def check(self, value, path):
        if not isinstance(value, dict):
            raise _fail(path, f"must be a JSON object, got {_describe(value)}")
        self._walk(value, path, 0)
        size = len(json.dumps(value, separators=(",", ":")))
        if size > self.max_bytes:
            raise _fail(path, f"must be at most {self.max_bytes} bytes of JSON, got {size}")
        return value

    def _walk(self, value, path, depth):
        if depth > MAX_JSON_DEPTH:
            raise _fail(path, f"nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(path, TOO_LARGE)
        if isinstance(value, str):
            _check_text(value, path)
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, f"{path}.{key}")
                if key.startswith("$"):
                    raise _fail(f"{path}.{key}", "starts with '$', which is reserved")
                self._walk(item, f"{path}.{key}", depth + 1)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self._walk(item, f"{path}[{i}]", depth + 1)

    def schema(self):
        return {"type": "object"}


class _V:
    """The `v` namespace, as in Convex."""

    string = String
    line = Line
    date = Date
    number = Number
    amount = Amount
    boolean = Boolean
    literal = Literal
    array = Array
    optional = Optional
    nullable = Nullable
    object = Object
    record = Record
    json = Json

    @staticmethod
    def int(minimum=None, maximum=None, multiple_of=None, unit=None) -> Number:
        return Number(minimum=minimum, maximum=maximum, integer=True, multiple_of=multiple_of,
                      unit=unit)


v = _V()
