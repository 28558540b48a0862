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
