"""The JSON Schemas a model holds (`inputSchema`): every regular expression in them compiles.

A schema's `pattern`s and `patternProperties` keys are regular expressions, which the JSON
Schema validator compiles with Python's `re`. One it cannot compile (an unbalanced group, a
repeat count over `re`'s limit, groups nested past its recursion limit) is refused here with
INVALID_ARGUMENT naming its path, before anything else reads the schema.
"""

from __future__ import annotations

import re
from typing import Any

from engine.errors import FunctionError

# Keywords whose value is a schema, a list of schemas, or an object of schemas (any draft).
ONE = {"additionalProperties", "propertyNames", "items", "contains", "not", "if", "then", "else",
       "unevaluatedItems", "unevaluatedProperties", "contentSchema", "additionalItems"}
MANY = {"allOf", "anyOf", "oneOf", "prefixItems", "items", "additionalItems"}
NAMED = {"properties", "patternProperties", "definitions", "dependentSchemas", "dependencies"}


def check_patterns(schema: Any, path: str) -> None:
    """Refuse the first regular expression in `schema` that does not compile."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        where = f"{path}.{key}"
        if key == "pattern" and isinstance(value, str):
            _compile(value, where)
        if key == "patternProperties" and isinstance(value, dict):
            for regex in value:
                _compile(regex, f"{where}.{_shown(regex)}")
        if key in ONE:
            check_patterns(value, where)
        if key in MANY and isinstance(value, list):
            for index, item in enumerate(value):
                check_patterns(item, f"{where}[{index}]")
        if key in NAMED and isinstance(value, dict):
            for name, item in value.items():
                check_patterns(item, f"{where}.{_shown(name)}")


def _compile(regex: str, where: str) -> None:
    try:
        re.compile(regex)
    except (re.error, OverflowError, RecursionError, ValueError) as error:
        raise FunctionError(
            "INVALID_ARGUMENT",
            f"{where} is not a regular expression that can be compiled: {error}",
            field=where,
        ) from None


def _shown(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else f"{name[:limit]}..."
