"""Bounded top-K tracking of a weighted stream: the space-saving algorithm, with decay.

Metwally, Agrawal and El Abbadi's *space-saving* keeps at most ``capacity`` keys. A tracked key's
count grows by each weight; an untracked key replaces the key with the smallest count and
inherits that count as its *error* (its true count is at least ``count - error``). Every key
whose true count exceeds ``total / capacity`` is tracked, and a count overestimates the truth by
at most ``total / capacity``.

The smallest count is found with a lazy min-heap: counts only grow between decays, so an entry
of the heap may be stale (lower than its key's count); it is re-pushed when it reaches the top.
Each re-push follows at least one increment, so a key costs O(log K) amortised and memory is one
entry and one heap item per tracked key. :meth:`HeavyHitters.decay` scales every count (the order
is kept), so that the table follows recent traffic rather than all time.

What a tracked key carries is the caller's: an entry object made by ``make`` with writable
``count`` and ``error`` attributes, so per-key statistics live in the same object.

>>> class Entry:
...     __slots__ = ("count", "error")
...     def __init__(self) -> None:
...         self.count = self.error = 0.0
>>> hh = HeavyHitters(2, Entry)
>>> for user in ["a", "a", "b", "a", "c"]:
...     _ = hh.add(user, 1.0)
>>> sorted((k, e.count, e.error) for k, e in hh.items())
[('a', 3.0, 0.0), ('c', 2.0, 1.0)]
>>> hh.evicted_key
'b'
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

__all__ = ["Counted", "HeavyHitters"]


class Counted(Protocol):
    """What a tracked key's entry must have: its ``count`` and the ``error`` it inherited."""

    count: float
    error: float


E = TypeVar("E", bound=Counted)


class HeavyHitters(Generic[E]):
    """The ``capacity`` heaviest keys of a stream of ``(key, weight)`` (see the module docstring).

    Parameters
    ----------
    capacity:
        Most keys tracked at once (memory is O(capacity)).
    make:
        Makes the entry of a newly tracked key (its ``count`` and ``error`` are then set).
    """

    __slots__ = ("_entries", "_heap", "_make", "capacity", "evicted", "evicted_key")

    def __init__(self, capacity: int, make: Callable[[], E]) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._make = make
        self._entries: dict[str, E] = {}
        self._heap: list[tuple[float, str]] = []
        #: The key (and entry) the last :meth:`add` evicted, else ``None``.
        self.evicted_key: str | None = None
        self.evicted: E | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> E | None:
        """The entry of ``key`` if it is tracked."""
        return self._entries.get(key)

    def items(self) -> Iterator[tuple[str, E]]:
        """The tracked keys and their entries, in no order."""
        return iter(self._entries.items())

    def add(self, key: str, weight: float) -> E:
        """Count ``weight`` (> 0) for ``key``; returns its entry (a new one if it was untracked).

        A key evicted to make room is left in :attr:`evicted_key` and :attr:`evicted`.
        """
        entries = self._entries
        entry = entries.get(key)
        if entry is not None:
            entry.count += weight
            self.evicted_key = None
            return entry
        entry = self._make()
        heap = self._heap
        if len(entries) < self.capacity:
            entry.count, entry.error = weight, 0.0
            entries[key] = entry
            heapq.heappush(heap, (weight, key))
            self.evicted_key = self.evicted = None
            return entry
        while True:  # the smallest count: re-push stale heap items until the top is current
            low, low_key = heap[0]
            current = entries[low_key].count
            if current == low:
                break
            heapq.heapreplace(heap, (current, low_key))
        self.evicted = entries.pop(low_key)
        self.evicted_key = low_key
        entry.count, entry.error = low + weight, low
        entries[key] = entry
        heapq.heapreplace(heap, (entry.count, key))
        return entry

    def decay(self, factor: float, drop: Iterable[str] = ()) -> None:
        """Multiply every count and error by ``factor`` (in (0, 1]): older traffic weighs less.

        The keys in ``drop`` stop being tracked (e.g. those whose count has decayed to nothing).
        """
        entries = self._entries
        for key in drop:
            entries.pop(key, None)
        for entry in entries.values():
            entry.count *= factor
            entry.error *= factor
        self._heap = [(e.count, k) for k, e in entries.items()]
        heapq.heapify(self._heap)

    def restore(self, key: str, entry: E) -> None:
        """Track ``key`` with ``entry`` as it is (its count and error set), if there is room."""
        if key in self._entries or len(self._entries) >= self.capacity:
            return
        self._entries[key] = entry
        heapq.heappush(self._heap, (entry.count, key))

    def top(self, n: int) -> list[tuple[str, E]]:
        """The ``n`` tracked keys with the highest counts, highest first."""
        return heapq.nlargest(n, self._entries.items(), key=lambda item: item[1].count)
