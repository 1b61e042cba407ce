"""Helpers the formats other than ``kestrel_json`` share: JSON splitting, rejects, numbers, labels.

Nothing here does I/O. A format reads one message into items (one JSON document, the elements
of an array, or NDJSON lines), turns each item into events, and turns an item's
:class:`~engine.model.events.InvalidEvent` into a :class:`~engine.model.events.Rejected` that keeps
the item's bytes and index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from engine.formats.base import DecodeContext
from engine.model.events import Decoded, Event, InvalidEvent, Rejected

__all__ = ["add_item", "as_number", "json_items", "reencode", "reject", "text_labels"]


def add_item(
    out: Decoded,
    context: DecodeContext,
    parse: Callable[[Any], Sequence[Event]],
    item: Any,
    raw: bytes | None,
    index: int | None,
) -> None:
    """Append the events ``parse`` reads from ``item``, or its one rejection.

    An item with an event later than ``context.not_after`` is rejected whole as
    ``bad_timestamp`` (see :class:`~engine.formats.base.DecodeContext`).
    """
    try:
        events = parse(item)
        not_after = context.not_after
        for event in events:
            if event.ts > not_after:
                raise InvalidEvent(
                    "bad_timestamp",
                    f"timestamp: {event.ts - not_after:.0f}s later than the message's own time "
                    "allows",
                )
        out.events.extend(events)
    except InvalidEvent as exc:
        reject(out, exc, item, raw, index)


def json_items(value: bytes, out: Decoded) -> Iterator[tuple[int | None, Any, bytes | None]]:
    """The JSON items of one message: ``(index, item, bytes as sent or None)``.

    A JSON array gives its elements (index = position; bytes ``None``: re-encoded if rejected),
    one JSON document gives itself (index ``None``, the whole message), NDJSON gives its lines
    (index = line number). A message that is none of these is rejected once, as a whole, into
    ``out`` (``not_utf8`` or ``invalid_json``), and gives no item.

    >>> out = Decoded()
    >>> [item for _, item, _ in json_items(b'{"a": 1}\\n{"a": 2}', out)]
    [{'a': 1}, {'a': 2}]
    >>> list(json_items(b"\\xff", out)), out.rejected[0].reason
    ([], 'not_utf8')
    """
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    else:
        if type(doc) is list:
            for i, item in enumerate(doc):
                yield i, item, None
        else:
            yield None, doc, value
        return
    lines: list[tuple[int, bytes, Any]] = []
    bad: list[tuple[int, bytes]] = []
    for i, line in enumerate(value.split(b"\n")):
        if not line.strip():
            continue
        try:
            lines.append((i, line, orjson.loads(line)))
        except orjson.JSONDecodeError:
            bad.append((i, line))
    if len(lines) + len(bad) < 2 or not lines:
        out.rejected.append(undecodable(value))
        return
    for i, line in bad:
        rejected = undecodable(line)
        rejected.index = i
        out.rejected.append(rejected)
    for i, line, item in lines:
        yield i, item, line


def undecodable(data: bytes) -> Rejected:
    """The rejection of bytes that are no JSON document (``not_utf8`` or ``invalid_json``)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected("not_utf8", f"not UTF-8 at byte {exc.start}", data)
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Rejected("invalid_json", f"invalid JSON: {exc}", data)
    return Rejected("invalid_json", "invalid JSON", data)  # pragma: no cover


def reencode(item: Any) -> bytes:
    """Bytes of a rejected item that has none of its own (an array element, a decoded record)."""
    try:
        return orjson.dumps(item, default=str)
    except (orjson.JSONEncodeError, TypeError):
        return repr(item).encode("utf-8", "backslashreplace")[:65536]


def reject(
    out: Decoded, exc: InvalidEvent, item: Any, raw: bytes | None, index: int | None
) -> None:
    """Append the rejection of one item (its bytes as sent, or re-encoded)."""
    out.rejected.append(
        Rejected(exc.reason, str(exc), raw if raw is not None else reencode(item), index)
    )


def as_number(value: Any, where: str) -> float:
    """A finite float from a JSON number or a numeric string (``"1.5"``, ``"7"``).

    Raises :class:`InvalidEvent` (``wrong_type`` or ``not_finite``) naming ``where``.

    >>> as_number("2.5", "value"), as_number(3, "value")
    (2.5, 3.0)
    >>> as_number("NaN", "value")
    Traceback (most recent call last):
    ...
    engine.model.events.InvalidEvent: value: must be finite, got 'NaN'
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidEvent("wrong_type", f"{where}: expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise InvalidEvent("wrong_type", f"{where}: expected a number, got {value!r:.64}") from None
    if not math.isfinite(number):
        raise InvalidEvent("not_finite", f"{where}: must be finite, got {value!r:.64}")
    return number


def text_labels(labels: Any, where: str) -> dict[str, str]:
    """Labels as ``str -> str``: strings kept, numbers and booleans written as text.

    >>> text_labels({"host": "a", "cpu": 0, "up": True}, "tags")
    {'host': 'a', 'cpu': '0', 'up': 'true'}
    """
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise InvalidEvent(
            "wrong_type", f"{where}: expected an object, got {type(labels).__name__}"
        )
    out: dict[str, str] = {}
    for k, v in labels.items():
        if isinstance(v, str):
            out[k] = v
        elif isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, int | float) and math.isfinite(v):
            out[k] = str(v)
        else:
            raise InvalidEvent(
                "wrong_type", f"{where}.{k}: expected a string, got {type(v).__name__}"
            )
    return out
