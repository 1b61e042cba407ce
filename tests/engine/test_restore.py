"""The state changelog applied a fetched batch at a time during Faust's recovery (no broker).

The worker tests restart workers on both brokers; these pin the rules with a stand-in for
Faust's recovery: which partitions are applied, from which offset, and when recovery ends.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from engine.runtime.ingest import _restore
from engine.runtime.metrics import KestrelMetrics

ACTIVE, STANDBY, OTHER = ("changelog", 0), ("changelog", 1), ("changelog", 2)


@dataclass
class Recovery:
    """What ``_restore`` uses of Faust's ``Recovery``: end offsets are inclusive highwaters."""

    highwaters: dict[Any, int]
    active_tps: set[Any] = field(default_factory=lambda: {ACTIVE})
    standby_tps: set[Any] = field(default_factory=lambda: {STANDBY})
    active_offsets: Counter[Any] = field(default_factory=Counter)
    standby_offsets: Counter[Any] = field(default_factory=Counter)
    in_recovery: bool = True
    signal_recovery_end: asyncio.Event = field(default_factory=asyncio.Event)

    def need_recovery(self) -> bool:
        return any(self.active_offsets[tp] < hw for tp, hw in self.highwaters.items())


@dataclass
class Rec:
    offset: int
    key: bytes
    value: bytes | None


def worker(recovery: Recovery) -> Any:
    registry = CollectorRegistry()
    metrics = KestrelMetrics(registry, topics=("m",), detectors=(), channels=())
    tables = SimpleNamespace(recovery=recovery)
    return SimpleNamespace(
        app=SimpleNamespace(tables=tables),
        table=SimpleNamespace(data={}),
        metrics=metrics,
        registry=registry,
    )


def test_a_batch_is_applied_whole_and_recovery_ends_at_the_highwater() -> None:
    # Tansu's highwater is the base offset of the last record batch (here 1), though that
    # batch holds offsets 1 to 3: the whole batch must be applied, not just up to offset 1.
    recovery = Recovery(highwaters={ACTIVE: 1})
    recovery.active_offsets[ACTIVE] = -1
    w = worker(recovery)
    records = [Rec(0, b"a", b"1"), Rec(1, b"b", b"2"), Rec(2, b"a", b"3"), Rec(3, b"c", b"4")]
    _restore(w, ACTIVE, records)
    assert w.table.data == {b"a": b"3", b"b": b"2", b"c": b"4"}
    assert recovery.active_offsets[ACTIVE] == 3
    assert recovery.signal_recovery_end.is_set()
    assert w.registry.get_sample_value("kestrel_changelog_records_restored_total") == 4


def test_records_already_seen_are_skipped_and_tombstones_delete() -> None:
    recovery = Recovery(highwaters={ACTIVE: 10})
    recovery.active_offsets[ACTIVE] = 4
    w = worker(recovery)
    w.table.data.update({b"a": b"old", b"b": b"old"})
    _restore(w, ACTIVE, [Rec(3, b"a", b"stale"), Rec(5, b"b", None), Rec(6, b"c", b"new")])
    assert w.table.data == {b"a": b"old", b"c": b"new"}
    assert recovery.active_offsets[ACTIVE] == 6
    assert not recovery.signal_recovery_end.is_set()  # offset 6 of 10: not done yet


def test_standby_partitions_move_their_own_offsets_and_others_are_ignored() -> None:
    recovery = Recovery(highwaters={ACTIVE: 0})
    w = worker(recovery)
    _restore(w, STANDBY, [Rec(0, b"s", b"1")])
    assert recovery.standby_offsets[STANDBY] == 0 and not recovery.active_offsets
    _restore(w, OTHER, [Rec(0, b"x", b"1")])  # revoked meanwhile: not this worker's any more
    assert w.table.data == {b"s": b"1"}
