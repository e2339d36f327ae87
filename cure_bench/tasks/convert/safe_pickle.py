"""Decoding LiveCodeBench's compressed private tests without trusting pickle.

``private_test_cases`` in ``code_generation_lite`` is either JSON text or ``base64(zlib(pickle(json_text)))``.
``pickle.loads`` on downloaded bytes would run whatever callable the bytes name, so this module unpickles
with an allow-list: plain builtin containers and scalars only, every other global refused. Decompression
is capped, so a small blob cannot expand into all of memory.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import io
import json
import pickle
import zlib
from typing import Any

MAX_DECOMPRESSED_BYTES = 1 << 30  # 1 GiB: LiveCodeBench's largest private test blobs are a few hundred MB

_ALLOWED_BUILTINS = frozenset(
    {"list", "dict", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "bool", "complex"}
)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing it names was imported or called."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in ("builtins", "__builtin__") and name in _ALLOWED_BUILTINS:  # __builtin__: protocol <= 2
            return getattr(builtins, name)
        raise UnsafePickleError(f"refused to load global {module}.{name}: only plain builtin values are allowed")


def restricted_loads(data: bytes) -> Any:
    """``pickle.loads`` that can only build builtin containers and scalars."""
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError(f"decompressed data exceeds {limit} bytes")
    return out + inflater.flush()


def decode_test_cases(value: Any, *, limit: int = MAX_DECOMPRESSED_BYTES) -> list[dict[str, Any]]:
    """LiveCodeBench test cases from JSON text, a list, or the base64+zlib+pickle encoding.

    Raises ValueError (with the reason) for anything else, UnsafePickleError for a pickle that names
    a non-allowed global.
    """
    if isinstance(value, list):
        cases: Any = value
    elif isinstance(value, str):
        try:
            cases = json.loads(value)
        except json.JSONDecodeError:
            cases = _decode_packed(value, limit)
    else:
        raise ValueError(f"expected a string or a list, got {type(value).__name__}")
    if isinstance(cases, str):
        cases = json.loads(cases)
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ValueError("test cases are not a list of objects")
    return cases


def _decode_packed(text: str, limit: int) -> Any:
    try:
        packed = base64.b64decode(text.encode("ascii"), validate=False)
        raw = _inflate(packed, limit)
    except (binascii.Error, zlib.error, UnicodeEncodeError) as exc:
        raise ValueError(f"neither JSON nor base64+zlib data ({exc})") from None
    try:
        value = restricted_loads(raw)
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not a valid pickle ({exc})") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return json.loads(value) if isinstance(value, str) else value
