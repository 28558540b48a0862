"""Binary-safe JSON for auth-state values: bytes <-> Baileys' ``BufferJSON`` form.

Baileys serialises a ``Buffer`` as ``{"type": "Buffer", "data": "<base64>"}``;
older stores (and ``JSON.stringify`` of a raw Buffer) wrote ``data`` as a list of
byte values. Both are read back as ``bytes``; ``bytes`` are always written as
base64, so a value stored from Python is readable by a Node.js Baileys client
and the other way round.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

_BUFFER_KEYS = frozenset({"type", "data"})


def encode_value(value: Any) -> Any:
    """Return ``value`` as plain JSON data, every bytes-like object as a Buffer dict."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {str(key): encode_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    return value


def dumps_value(value: Any) -> str:
    """``value`` as JSON text that PostgreSQL's ``jsonb`` gives back unchanged.

    Two things ``json.dumps`` alone gets wrong there: ``jsonb`` keeps numbers as
    ``numeric`` and prints them in full, so a float written ``1e+16`` would come
    back as the int ``10000000000000000`` (and ``1e308`` as ``10**308``, which is
    not equal to it): such floats are written as their exact decimal expansion
    with a ``.0``, which reads back as the same float. And ``jsonb`` cannot hold
    a NUL character in a string: refused here with ``ValueError``, before any SQL,
    as are lone surrogates (not UTF-8) and NaN or infinities (not JSON).
    """
    token = f"__datalayer_float_{uuid.uuid4().hex}_"
    exact: list[str] = []

    def prepare(item: Any) -> Any:
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("a string holds a NUL character, which jsonb cannot store")
            item.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
            return item
        if isinstance(item, float) and math.isfinite(item) and abs(item) >= 1e16:
            exact.append(f"{item:.1f}")
            return f"{token}{len(exact) - 1}"
        if isinstance(item, dict):
            return {prepare(key): prepare(entry) for key, entry in item.items()}
        if isinstance(item, list):
            return [prepare(entry) for entry in item]
        return item

    text = json.dumps(prepare(encode_value(value)), ensure_ascii=False, allow_nan=False)
    for index, number in enumerate(exact):
        text = text.replace(f'"{token}{index}"', number, 1)
    return text


def decode_value(value: Any) -> Any:
    """Return ``value`` with every Buffer dict (base64 or list of ints) turned into bytes."""
    if isinstance(value, dict):
        buffer = _buffer_bytes(value)
        if buffer is not None:
            return buffer
        return {key: decode_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    return value


def _buffer_bytes(value: dict[str, Any]) -> bytes | None:
    if value.keys() != _BUFFER_KEYS or value["type"] != "Buffer":
        return None
    data = value["data"]
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            return None
    if isinstance(data, list) and all(
        isinstance(byte, int) and not isinstance(byte, bool) and 0 <= byte <= 255 for byte in data
    ):
        return bytes(data)
    return None
