"""Helpers shared by detectors to read and write their JSON-serialisable state.

A saved state holds only ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``, and never a
non-finite float (JSON cannot carry ``nan`` or ``inf``). Reading a malformed state raises
:class:`ValueError` naming the offending key, so a corrupt snapshot is reported, never half-loaded.

>>> decode_bytes(encode_bytes(b"\\x00\\xff"), "blob")
b'\\x00\\xff'
>>> list(decode_doubles(encode_doubles([1.5, math.nan]), "floats", 2))
[1.5, nan]
>>> get_float({"n": 3}, "n")
3.0
>>> get_float({}, "n")
Traceback (most recent call last):
    ...
ValueError: detector state: missing key 'n'
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from detectors.hysteresis import Hysteresis

__all__ = [
    "decode_array",
    "decode_bytes",
    "decode_doubles",
    "encode_array",
    "encode_bytes",
    "encode_doubles",
    "get_bool",
    "get_float",
    "get_int",
    "get_list",
    "get_mapping",
    "load_hysteresis",
]


def encode_bytes(blob: bytes) -> str:
    """Encode an opaque binary blob as base64 text."""
    return base64.b64encode(blob).decode("ascii")


#: What an array's items are called in errors, by type code.
_ITEMS = {"d": "doubles", "h": "int16 codes"}


def encode_array(values: array[Any]) -> str:
    """An array as base64 of its items in little-endian order."""
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        values = array(values.typecode, values)
        values.byteswap()
    return encode_bytes(values.tobytes())


def decode_array(state_value: Any, key: str, typecode: str, size: int, why: str = "") -> array[Any]:
    """Decode what :func:`encode_array` produced: exactly ``size`` items of ``typecode``
    (``"d"`` or ``"h"``). ``why`` is added to the error for a wrong count (what ``size`` follows
    from)."""
    blob = decode_bytes(state_value, key)
    values = array(typecode)
    if len(blob) != values.itemsize * size:
        raise ValueError(f"detector state: {key!r} must hold {size} {_ITEMS[typecode]}{why}")
    values.frombytes(blob)
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        values.byteswap()
    return values


def encode_doubles(values: Iterable[float]) -> str:
    """Doubles as base64 of little-endian IEEE 754 (``nan`` allowed: it may mean "not yet")."""
    return encode_array(array("d", values))


def decode_doubles(state_value: Any, key: str, size: int, why: str = "") -> array[float]:
    """Decode what :func:`encode_doubles` produced: exactly ``size`` doubles, none infinite."""
    values = decode_array(state_value, key, "d", size, why)
    if math.inf in values or -math.inf in values:
        raise ValueError(f"detector state: {key!r} holds an infinite number")
    return values


def _get(state: Mapping[str, Any], key: str) -> Any:
    try:
        return state[key]
    except KeyError:
        raise ValueError(f"detector state: missing key {key!r}") from None


def decode_bytes(state_value: Any, key: str) -> bytes:
    """Decode what :func:`encode_bytes` produced; ``key`` names the value in errors."""
    if not isinstance(state_value, str):
        raise ValueError(f"detector state: {key!r} must be base64 text")
    try:
        return base64.b64decode(state_value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"detector state: {key!r} is not valid base64") from exc


def get_float(state: Mapping[str, Any], key: str) -> float:
    """Read a finite float (an ``int`` is accepted and converted)."""
    value = _get(state, key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"detector state: {key!r} must be a finite number, got {value!r}")
    return float(value)


def get_int(state: Mapping[str, Any], key: str, minimum: int = 0) -> int:
    """Read an ``int`` that is at least ``minimum``."""
    value = _get(state, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"detector state: {key!r} must be an int >= {minimum}, got {value!r}")
    return value


def get_bool(state: Mapping[str, Any], key: str) -> bool:
    """Read a ``bool``."""
    value = _get(state, key)
    if not isinstance(value, bool):
        raise ValueError(f"detector state: {key!r} must be a bool, got {value!r}")
    return value


def get_list(state: Mapping[str, Any], key: str) -> list[Any]:
    """Read a ``list``."""
    value = _get(state, key)
    if not isinstance(value, list):
        raise ValueError(f"detector state: {key!r} must be a list, got {type(value).__name__}")
    return value


def get_mapping(state: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Read a nested ``dict``."""
    value = _get(state, key)
    if not isinstance(value, Mapping):
        raise ValueError(f"detector state: {key!r} must be an object, got {type(value).__name__}")
    return value


def load_hysteresis(hysteresis: Hysteresis, state: Mapping[str, Any], key: str) -> None:
    """Check the nested hysteresis state under ``key`` and load it into ``hysteresis``."""
    nested = get_mapping(state, key)
    hysteresis.load_state({"firing": get_bool(nested, "firing"), "run": get_int(nested, "run")})
