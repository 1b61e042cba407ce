"""engine.core.windows: tumbling event-time windows with allowed lateness, gaps and idle advance."""

from __future__ import annotations

import math
import random

import orjson

from engine.core.windows import ClosedWindow, WindowCounter


def feed(
    w: WindowCounter, events: list[tuple[float, bool]]
) -> tuple[list[bool], list[ClosedWindow]]:
    """Add each event then advance, the way the pipeline does."""
    accepted, closed = [], []
    for ts, err in events:
        accepted.append(w.add(ts, err))
        closed.extend(w.advance())
    return accepted, closed


def test_counts_events_and_errors_per_window() -> None:
    w = WindowCounter(size=60.0, lateness=0.0)
    for ts, err in ((0.0, False), (10.0, True), (59.999, True), (60.0, False), (61.0, True)):
        assert w.add(ts, err)
    assert w.advance() == [ClosedWindow(0.0, 60.0, 3, 2)]
    assert w.add(125.0, False)
    assert w.advance() == [ClosedWindow(60.0, 120.0, 2, 1)]


def test_a_window_closes_only_after_end_plus_lateness() -> None:
    w = WindowCounter(size=60.0, lateness=30.0)
    w.add(5.0, False)
    w.add(89.0, False)
    assert w.advance() == []
    assert w.next_close_at == 90.0
    w.add(90.0, True)
    assert w.advance() == [ClosedWindow(0.0, 60.0, 1, 0)]
    assert w.next_close_at == 150.0


def test_out_of_order_events_within_lateness_count_in_their_window() -> None:
    w = WindowCounter(size=60.0, lateness=30.0)
    accepted, closed = feed(
        w, [(50.0, False), (70.0, False), (55.0, True), (85.0, False), (30.0, True)]
    )
    assert accepted == [True] * 5
    assert closed == []
    _, closed = feed(w, [(95.0, False)])
    assert closed == [ClosedWindow(0.0, 60.0, 3, 2)]


def test_events_for_a_closed_window_are_refused() -> None:
    w = WindowCounter(size=60.0, lateness=10.0)
    accepted, closed = feed(w, [(10.0, False), (75.0, False), (59.0, True)])
    assert accepted == [True, True, False]
    assert closed == [ClosedWindow(0.0, 60.0, 1, 0)]  # the late error was not counted
    assert w.add(60.0, True)  # the next window is still open


def test_an_event_past_end_plus_lateness_is_late_even_before_any_window_closed() -> None:
    w = WindowCounter(size=60.0, lateness=30.0)
    assert w.add(1000.0, False)
    assert not w.add(10.0, False)  # ~990 s behind the watermark
    assert not w.add(929.0, False)  # window [900, 960) is due at 990
    assert w.add(961.0, False)  # window [960, 1020) is open
    assert w.advance() == []
    w.add(1050.0, False)
    assert w.advance() == [ClosedWindow(960.0, 1020.0, 2, 0)]  # no phantom windows before it


def test_empty_windows_fill_a_gap() -> None:
    w = WindowCounter(size=60.0, lateness=0.0)
    _, closed = feed(w, [(0.0, True), (250.0, False)])
    assert closed == [
        ClosedWindow(0.0, 60.0, 1, 1),
        ClosedWindow(60.0, 120.0, 0, 0),
        ClosedWindow(120.0, 180.0, 0, 0),
        ClosedWindow(180.0, 240.0, 0, 0),
    ]
    _, closed = feed(w, [(300.0, False)])
    assert closed == [ClosedWindow(240.0, 300.0, 1, 0)]


def test_empty_windows_are_capped_by_max_empty() -> None:
    w = WindowCounter(size=10.0, lateness=0.0, max_empty=3)
    _, closed = feed(w, [(0.0, False), (1000.0, False), (1010.0, False)])
    assert [(c.start, c.total) for c in closed] == [
        (0.0, 1),
        (10.0, 0),
        (20.0, 0),
        (30.0, 0),
        (1000.0, 1),
    ]


def test_each_gap_gets_its_own_empty_windows_even_in_one_advance() -> None:
    w = WindowCounter(size=10.0, lateness=0.0, max_empty=2)
    for ts in (0.0, 100.0, 200.0, 300.0):
        assert w.add(ts, False)
    closed = w.advance()
    assert [(c.start, c.total) for c in closed] == [
        (0.0, 1),
        (10.0, 0),
        (20.0, 0),
        (100.0, 1),
        (110.0, 0),
        (120.0, 0),
        (200.0, 1),
        (210.0, 0),
        (220.0, 0),
    ]


def test_idle_advance_closes_the_last_windows() -> None:
    w = WindowCounter(size=60.0, lateness=30.0, max_empty=1)
    feed(w, [(10.0, False), (20.0, True)])
    assert w.advance(idle_seconds=50.0) == []  # watermark 70 < 90
    assert w.watermark == 70.0
    assert w.advance(idle_seconds=20.0) == [ClosedWindow(0.0, 60.0, 2, 1)]
    assert w.advance(idle_seconds=60.0) == [ClosedWindow(60.0, 120.0, 0, 0)]
    assert w.advance(idle_seconds=600.0) == []  # max_empty reached
    assert not w.add(100.0, False)  # behind the advanced watermark
    assert w.add(800.0, True)  # after a gap: its empty windows close first
    assert w.advance(idle_seconds=100.0) == [
        ClosedWindow(720.0, 780.0, 0, 0),
        ClosedWindow(780.0, 840.0, 1, 1),
    ]


def test_nothing_to_close_without_events() -> None:
    w = WindowCounter(size=60.0, lateness=0.0)
    assert w.advance(idle_seconds=1e6) == []
    assert w.next_close_at == math.inf
    assert w.watermark == -math.inf


def test_state_round_trip_mid_stream_gives_identical_results() -> None:
    rng = random.Random(3)
    events = []
    t = 0.0
    for _ in range(600):
        t += rng.expovariate(1 / 7.0) if rng.random() > 0.02 else rng.uniform(200, 900)  # gaps
        jitter = rng.uniform(-45.0, 5.0)  # out of order, some beyond lateness
        events.append((max(0.0, t + jitter), rng.random() < 0.1))

    original = WindowCounter(size=30.0, lateness=20.0, max_empty=4)
    accepted1, closed1 = feed(original, events[:250])
    original.advance(idle_seconds=3.0)  # idle advance mid-stream is state too

    state = orjson.loads(orjson.dumps(original.to_state()))  # through JSON, like the changelog
    restored = WindowCounter(size=30.0, lateness=20.0, max_empty=4)
    restored.load_state(state)
    assert restored.to_state() == original.to_state()

    rest = events[250:]
    accepted_a, closed_a = feed(original, rest)
    accepted_b, closed_b = feed(restored, rest)
    assert (accepted_a, closed_a) == (accepted_b, closed_b)
    assert False in accepted_a + accepted1  # the stream did exercise late refusal
    assert any(c.total == 0 for c in closed1 + closed_a)  # and empty windows
    assert original.advance(idle_seconds=1000.0) == restored.advance(idle_seconds=1000.0)


def test_the_empty_window_cap_survives_a_round_trip() -> None:
    w = WindowCounter(size=10.0, lateness=0.0, max_empty=2)
    w.add(0.0, False)
    assert len(w.advance(idle_seconds=30.0)) == 3  # the window and 2 empty ones: cap reached
    copy = WindowCounter(size=10.0, lateness=0.0, max_empty=2)
    copy.load_state(orjson.loads(orjson.dumps(w.to_state())))
    assert copy.advance(idle_seconds=100.0) == w.advance(idle_seconds=100.0) == []


def test_a_fresh_state_round_trips() -> None:
    w = WindowCounter(size=60.0, lateness=0.0)
    copy = WindowCounter(size=60.0, lateness=0.0)
    copy.load_state(orjson.loads(orjson.dumps(w.to_state())))
    assert copy.watermark == -math.inf
    assert copy.add(5.0, False)
    assert w.add(5.0, False)
    assert copy.to_state() == w.to_state()
