"""The Import page's public price maps: what the form sent, converted, planned and applied.

The console does what `flask catalog import-prices` does (cli/__init__.py): the source is
converted by `functions.sources.convert` (pure, no database), then planned by
`catalog:planImport` (changes nothing) or applied by `catalog:importPrices` (all or nothing,
history source `import:<source>`), as the signed-in user.

A LiteLLM map comes as an upload: JSON, or gzip-compressed JSON (the whole map is about 3.5 MB,
over the 1 MiB a request may carry; gzip makes it about 0.3 MB, and the page compresses a large
file in the browser before sending it). The plan page carries the map on to the confirmation
as base64 of gzip, so the apply converts exactly the file that was planned (its SHA-256 is
shown on both).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import re
import zlib
from dataclasses import dataclass, field

from flask import request

from admin.console_json import ConsoleJsonError, decode_console_json, text_of_file
from admin.operations import parse_local

SOURCES = {"litellm": "LiteLLM price map (upload model_prices_and_context_window.json)",
           "genai-prices": "genai-prices (the installed package's data)"}
MAX_MAP_BYTES = 16 * 1024 * 1024  # a decompressed map; LiteLLM's is about 3.5 MB
PROVIDER = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")
LIST_AT_MOST = 500  # entries listed per group on the page; the counts are always whole


class FormError(ValueError):
    """What the person must fix in the form; the message says what."""


@dataclass
class PriceForm:
    """The price-import form, read and checked."""

    source: str
    providers: list[str] = field(default_factory=list)
    activate: bool = False
    overwrite: bool = False
    at: int | None = None  # schedule the price changes for this moment (ms, UTC)
    at_text: str = ""
    data: dict | None = None  # the LiteLLM map, loaded
    payload: str | None = None  # the map as base64 of gzip, for the confirmation
    digest: str | None = None  # SHA-256 of the map's bytes
    file_name: str | None = None

    def options(self) -> dict:
        options = {"activate": self.activate, "overwriteLocalEdits": self.overwrite}
        if self.at is not None:
            options["at"] = self.at
        return options


def _providers(text: str) -> list[str]:
    names = [p for p in re.split(r"[\s,]+", text.strip()) if p]
    bad = [p for p in names if not PROVIDER.fullmatch(p)]
    if bad:
        raise FormError(f"Not a provider name: {bad[0][:40]!r} (letters, digits, '_', '.', "
                        "':', '/' or '-'; separate names with commas)")
    if len(names) > 100:
        raise FormError("At most 100 providers at a time")
    return names


def _inflate(raw: bytes) -> bytes:
    """`raw`, or its content when it is gzip-compressed; bounded."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, MAX_MAP_BYTES + 1)
    except zlib.error:
        raise FormError("The file looks gzip-compressed but cannot be decompressed") from None
    if len(out) > MAX_MAP_BYTES:
        raise FormError(f"The map is larger than {MAX_MAP_BYTES // (1024 * 1024)} MB "
                        "uncompressed")
    return out


def _load(content: bytes) -> dict:
    try:
        data = decode_console_json(text_of_file(content), keys_twice=True)
    except ConsoleJsonError as error:
        raise FormError(f"The file cannot be read: {error}") from None
    if not isinstance(data, dict):
        raise FormError("A LiteLLM price map is a JSON object of entries by key")
    return data


def typed_form() -> PriceForm:
    """What was typed into the form, unchecked: shown again when the form fails."""
    form = request.form
    source = form.get("source", "")
    return PriceForm(source if source in SOURCES else "litellm",
                     [p for p in re.split(r"[\s,]+", form.get("providers", "")) if p][:100],
                     form.get("activate") == "1", form.get("overwriteLocalEdits") == "1",
                     at_text=form.get("at", "")[:40])


def read_form() -> PriceForm:
    """The form as sent: on the plan, an upload; on the confirmation, the carried payload."""
    form = request.form
    source = form.get("source", "")
    if source not in SOURCES:
        raise FormError("Choose a source: a LiteLLM price map or genai-prices")
    out = PriceForm(source, _providers(form.get("providers", "")),
                    form.get("activate") == "1", form.get("overwriteLocalEdits") == "1")
    at = form.get("at", "").strip()
    if at:
        out.at, out.at_text = parse_local(at), at
        if out.at is None:
            raise FormError("The time to schedule the price changes for reads YYYY-MM-DDTHH:MM "
                            "(UTC), e.g. 2027-01-01T00:00")
    if source != "litellm":
        return out
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read()
        out.file_name = upload.filename[:200]
    elif form.get("payload"):
        try:
            raw = base64.b64decode(form["payload"], validate=True)  # gzip: inflated below,
        except (binascii.Error, ValueError):  # bounded as an upload is (ValueError: text
            # that is not ASCII)
            raise FormError("The carried map is damaged; upload the file again") from None
        out.file_name = form.get("fileName", "")[:200] or None
    else:
        raise FormError("Choose the LiteLLM file (model_prices_and_context_window.json)")
    content = _inflate(raw)
    out.data = _load(content)
    out.digest = hashlib.sha256(content).hexdigest()
    out.payload = base64.b64encode(gzip.compress(content, 6)).decode("ascii")
    return out


def describe_applied(plan: dict) -> str:
    counts = plan["counts"]
    return (f"Imported from {plan['source']}: {counts['created']:,} created, "
            f"{counts['priceChanges']:,} price changes, {counts['fieldChanges']:,} with other "
            f"field changes; {counts['localEditsKept']:,} kept local edits, "
            f"{counts['notRepresentable']:,} not representable. History: "
            f"{plan['historySource']}.")
