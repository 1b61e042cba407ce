"""engine.core.heavy_hitters and engine.core.behaviour: bounded per-user tracking, the derived
behaviour series, and the per-user / per-session incidents (pure, no Kafka)."""

from __future__ import annotations

import random
import tracemalloc
from collections import Counter
from typing import Any

import pytest

from engine.config import Config, parse_config
from engine.core.behaviour import Behaviour, UserTable
from engine.core.heavy_hitters import HeavyHitters
from engine.core.pipeline import Pipeline
from engine.model.alert import Alert, AlertStatus
from engine.model.events import LogEvent

T0 = 1_700_000_040.0  # a multiple of 60
USER_TYPES = ["cost_tracking", "security_event", "tool_executed", "user_approval"]


class _Entry:
    __slots__ = ("count", "error")

    def __init__(self) -> None:
        self.count = 0.0
        self.error = 0.0


def zipf_keys(rng: random.Random, n: int, distinct: int, s: float = 1.1) -> list[int]:
    weights = [1.0 / (k**s) for k in range(1, distinct + 1)]
    return rng.choices(range(distinct), weights=weights, k=n)


# -- heavy hitters ---------------------------------------------------------------------------


def test_space_saving_on_a_zipf_stream_is_bounded_and_finds_the_heavy_hitters() -> None:
    rng = random.Random(7)
    n, distinct, capacity = 200_000, 100_000, 1_000
    stream = zipf_keys(rng, n, distinct)
    truth = Counter(stream)
    hh: HeavyHitters[_Entry] = HeavyHitters(capacity, _Entry)
    most = 0
    for key in stream:
        hh.add(str(key), 1.0)
        most = max(most, len(hh))
    assert most == capacity  # never more keys than its capacity
    bound = n / capacity
    errors = []
    for key, e in hh.items():
        true = truth[int(key)]
        assert e.count - e.error <= true <= e.count  # the space-saving guarantee
        assert e.count - true <= bound
        errors.append(e.count - true)
    heavy = [k for k, c in truth.items() if c > bound]
    assert heavy and all(str(k) in hh for k in heavy)  # every key above total/K is tracked
    top100 = [str(k) for k, _ in truth.most_common(100)]
    found = {k for k, _ in hh.top(100)}
    recall = len(found.intersection(top100)) / 100
    print(
        f"zipf s=1.1: {n} events over {distinct} keys, K={capacity}: {len(heavy)} keys above "
        f"n/K all tracked; top-100 recall {recall:.2f}; mean overestimate "
        f"{sum(errors) / len(errors):.1f} (bound {bound:.0f})"
    )
    assert recall >= 0.95


def test_space_saving_decay_keeps_the_order_and_the_bound() -> None:
    hh: HeavyHitters[_Entry] = HeavyHitters(3, _Entry)
    for key, w in [("a", 5.0), ("b", 3.0), ("c", 1.0)]:
        hh.add(key, w)
    hh.decay(0.5)
    assert [k for k, _ in hh.top(3)] == ["a", "b", "c"]
    hh.add("d", 1.0)  # evicts c (0.5), inherits its count
    assert hh.evicted_key == "c" and "d" in hh and len(hh) == 3
    d = hh.get("d")
    assert d is not None and (d.count, d.error) == (1.5, 0.5)
    with pytest.raises(ValueError, match="capacity"):
        HeavyHitters(0, _Entry)


# -- user tables -----------------------------------------------------------------------------


def config(**series: Any) -> Config:
    data: dict[str, Any] = {
        "series": {"pattern_detectors": [], "per_user_types": USER_TYPES, **series},
        "windows": {"size_seconds": 60, "allowed_lateness_seconds": 0},
        "alerts": {"repeat_interval_seconds": 1e9},
    }
    return parse_config(data, "test.toml", {})


def log(
    ts: float,
    etype: str,
    user: str | None = None,
    session: str | None = None,
    level: str = "INFO",
    service: str = "agent-api",
    ms: float | None = None,
    **context: Any,
) -> LogEvent:
    raw: dict[str, Any] = {"type": etype, "context": context}
    if user is not None:
        raw["user_id"] = user
    if session is not None:
        raw["session_id"] = session
    return LogEvent(ts, level, service, etype, etype, None, ms, raw)


def ordinary_traffic(
    rng: random.Random, windows: int, users: int = 3000, per_window: int = 1500
) -> list[LogEvent]:
    """Churning users with ordinary, heavy-tailed spend: users come and go, a few are heavy."""
    events = []
    pool = list(range(users))
    for w in range(windows):
        if w % 5 == 4:  # churn: a tenth of the users leave, new ones arrive
            for i in rng.sample(range(users), users // 10):
                pool[i] = rng.randrange(10**9)
        ids = zipf_keys(rng, per_window, users, 1.0)
        for j, i in enumerate(ids):
            ts = T0 + w * 60 + 60 * j / per_window
            user = f"u{pool[i]}"
            etype = rng.choice(USER_TYPES)
            ctx: dict[str, Any] = {}
            level = "INFO"
            if etype == "cost_tracking":
                ctx["cost_usd"] = round(rng.lognormvariate(-3.0, 1.0), 4)
            elif etype == "tool_executed":
                ctx = {"tool": rng.choice(("search", "shell")), "success": rng.random() > 0.05}
            elif etype == "user_approval":
                ctx["approved"] = rng.random() > 0.1
            elif etype == "security_event":
                ctx["status"] = "failed" if rng.random() < 0.2 else "ok"
            events.append(log(ts, etype, user, f"s-{user}-{w // 10}", level, **ctx))
    return events


def run(b: Behaviour, events: list[LogEvent], partition: int = 0) -> list[Alert]:
    out: list[Alert] = []
    for ev in events:
        b.observe(ev, partition, out)
    return out


def merge(*streams: list[LogEvent]) -> list[LogEvent]:
    return sorted((e for s in streams for e in s), key=lambda e: e.ts)


def test_ordinary_churning_users_raise_no_alert() -> None:
    cfg = config(per_session_types=["tool_executed"])
    b = Behaviour(cfg, None)
    events = ordinary_traffic(random.Random(3), windows=40)
    alerts = run(b, events)
    print(f"ordinary churn: {len(events)} events, 40 windows, {b.tracked()} tracked: {alerts}")
    assert alerts == []


def burst(
    start_window: int, windows: int, per_window: int, etype: str, user: str, **kw: Any
) -> list[LogEvent]:
    return [
        log(T0 + (start_window + w) * 60 + 60 * j / per_window, etype, user, **kw)
        for w in range(windows)
        for j in range(per_window)
    ]


def firing(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status is AlertStatus.FIRING]


def test_a_user_suddenly_spending_50x_fires_with_its_labels_and_a_reason() -> None:
    rng = random.Random(5)
    b = Behaviour(config(), None)
    base = ordinary_traffic(rng, windows=30)
    # A user who spends about 0.05 USD a minute, then 50x: a runaway agent on gpt-large.
    steady = burst(0, 30, 1, "cost_tracking", "u-runaway", session="s-9", cost_usd=0.2)
    runaway = burst(
        20, 3, 50, "cost_tracking", "u-runaway", session="s-9", model="gpt-large", cost_usd=0.2
    )
    alerts = firing(run(b, merge(base, steady, runaway)))
    cost = [a for a in alerts if a.series == "user.cost_usd"]
    print([a.summary for a in alerts])
    assert {a.labels["user_id"] for a in alerts} == {"u-runaway"}
    assert len(cost) == 1
    a = cost[0]
    assert a.labels == {
        "type": "cost_tracking",
        "user_id": "u-runaway",
        "session_id": "s-9",
        "model": "gpt-large",
    }
    assert a.detector == "behaviour" and a.value == pytest.approx(10.2)  # 51 x 0.2
    assert "its own mean" in a.annotations["reason"]
    assert "population" in a.annotations["reason"]


@pytest.mark.parametrize(
    ("etype", "context", "series"),
    [
        ("user_approval", {"approved": False}, "user.failures"),
        ("security_event", {"status": "failed", "action": "login"}, "user.failures"),
    ],
)
def test_a_burst_of_failures_from_one_user_fires(
    etype: str, context: dict[str, Any], series: str
) -> None:
    b = Behaviour(config(), None)
    base = ordinary_traffic(random.Random(11), windows=20)
    attack = burst(12, 2, 150, etype, "u-stuffed", session="s-x", **context)
    alerts = firing(run(b, merge(base, attack)))
    print([a.summary for a in alerts])
    got = {(a.series, a.labels["user_id"], a.labels["type"]) for a in alerts}
    assert got == {(series, "u-stuffed", etype), ("user.events", "u-stuffed", etype)}


def test_a_session_doing_10x_the_usual_tool_calls_fires_and_resolves() -> None:
    b = Behaviour(config(per_session_types=["tool_executed"], per_user_types=[]), None)
    rng = random.Random(2)
    sessions = [
        log(T0 + w * 60 + j, "tool_executed", f"u{k}", f"s{k}", tool="search")
        for w in range(20)
        for k in range(30)
        for j in range(rng.randint(2, 4))
    ]
    runaway = burst(10, 2, 40, "tool_executed", "u3", session="s3", tool="shell")
    alerts = run(b, merge(sessions, runaway))
    print([a.summary for a in alerts])
    assert [(a.status, a.series, a.labels["session_id"]) for a in alerts] == [
        (AlertStatus.FIRING, "session.events", "s3"),
        (AlertStatus.RESOLVED, "session.events", "s3"),
    ]
    assert alerts[0].labels["user_id"] == "u3" and alerts[0].labels["tool"] == "shell"


def test_the_tables_stay_bounded_with_every_user_distinct() -> None:
    # bench/behaviour.py measures the memory at 1,000,000 distinct users.
    table = UserTable("user_id", "cost_tracking", "events", 1000, 10.0, 10.0, 20.0, 60.0)
    out: list[Alert] = []
    tracemalloc.start()
    for i in range(100_000):
        table.add(f"u{i}", 1.0, None, None, None, out)
        if i % 10_000 == 9_999:
            table.close(T0 + i, out)
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"100,000 distinct users, K=1000: {len(table.users)} tracked, {used / 1e6:.2f} MB")
    assert len(table.users) == 1000 and len(table.users._heap) == 1000
    assert used < 2_000_000
    assert out == []  # one event each: nobody is anomalous


# -- state -----------------------------------------------------------------------------------


def test_the_state_round_trips_with_an_open_incident_that_then_resolves() -> None:
    cfg = config()
    store: dict[bytes, bytes] = {}
    b = Behaviour(cfg, store.get)
    base = ordinary_traffic(random.Random(4), windows=16)
    attack = burst(12, 2, 150, "user_approval", "u-stuffed", approved=False)
    early = [e for e in merge(base, attack) if e.ts < T0 + 14 * 60 + 1]
    alerts = firing(run(b, early))
    assert {a.labels["user_id"] for a in alerts} == {"u-stuffed"}
    writes = b.checkpoint()
    assert [(k, p) for k, p, _ in writes] == [(b"b|0", 0)]
    assert b.checkpoint() == []  # saved only when a window closed since
    store.update((k, v) for k, _, v in writes)
    assert len(store[b"b|0"]) < 200_000
    # A new worker takes the partition over: the incidents resolve at the next normal window.
    again = Behaviour(cfg, store.get)
    later = [e for e in base if e.ts >= T0 + 14 * 60 + 1]
    resolved = [a for a in run(again, later) if a.status is AlertStatus.RESOLVED]
    assert {(a.series, a.labels["user_id"]) for a in resolved} == {
        ("user.events", "u-stuffed"),
        ("user.failures", "u-stuffed"),
    }
    assert {a.fingerprint for a in resolved} == {a.fingerprint for a in alerts}
    # A revoked partition hands its state back for the table to keep.
    assert [k for k, _, _ in again.release([0])] == [b"b|0"]
    assert again.tracked() == 0


def test_a_malformed_saved_state_is_rebuilt() -> None:
    b = Behaviour(config(), {b"b|0": b'{"v": 1, "s": {"start": 0}}'}.get)
    assert run(b, [log(T0, "cost_tracking", "u1", cost_usd=1.0)]) == []
    assert b.tracked() == 2  # u1 in the events and in the cost_usd table


# -- derived series through the pipeline -----------------------------------------------------


def test_the_derived_series_per_type_tool_and_model() -> None:
    cfg = config(per_type=True, per_tool=True, per_model=True, per_user_types=[])
    b = Behaviour(cfg, None)
    out: list[Alert] = []
    events = [
        *(log(T0 + 1, "tool_executed", tool="search", ms=100.0, success=True) for _ in range(5)),
        *(log(T0 + 2, "tool_executed", tool="search", ms=300.0, status="failed") for _ in range(5)),
        log(T0 + 3, "llm_completion", model="gpt-large", ms=800.0, total_tokens=1000, cost=0.5),
        log(T0 + 4, "llm_completion", model="gpt-large", prompt_tokens=10, completion_tokens=5),
    ]
    for ev in events:
        assert b.observe(ev, 0, out) == ()
    samples = b.observe(log(T0 + 61, "login"), 0, out)
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in samples}
    assert all(s.ts == T0 + 60 for s in samples)
    api = ("service", "agent-api")
    assert got == {
        ("log.type_events", (api, ("type", "tool_executed"))): 10.0,
        ("log.type_events", (api, ("type", "llm_completion"))): 2.0,
        ("tool.failure_ratio", (api, ("tool", "search"))): 0.5,
        ("tool.latency_ms", (api, ("tool", "search"))): 200.0,
        ("llm.latency_ms", (("model", "gpt-large"), api)): 800.0,
        ("llm.tokens", (("model", "gpt-large"), api)): 1015.0,
        ("llm.cost_usd", (("model", "gpt-large"), api)): 0.5,
    }
    # The next window: a type without events gives 0, tools and models without calls nothing.
    names = {(s.name, s.labels.get("type"), s.value) for s in b.observe(log(T0 + 121, "x"), 0, out)}
    assert ("log.type_events", "tool_executed", 0.0) in names
    assert not any(n.startswith(("tool.", "llm.")) for n, _, _ in names)
    assert out == []


def test_the_pipeline_judges_derived_series_and_checkpoints_the_user_tables() -> None:
    cfg = parse_config(
        {
            "series": {
                "pattern_detectors": [],
                "metric_detectors": ["zscore"],
                "per_model": True,
                "per_user_types": ["cost_tracking"],
            },
            "windows": {"size_seconds": 60, "allowed_lateness_seconds": 0},
            "detectors": {"zscore": {"warmup": 5, "fire_after": 1}},
        },
        "test.toml",
        {},
    )
    p = Pipeline(cfg)
    rng = random.Random(1)
    out: list[Alert] = []
    for w in range(20):
        spend = 40.0 if w == 15 else 1.0  # llm-gateway's spend jumps 40x in window 15
        for j in range(20):
            ev = log(
                T0 + w * 60 + 3 * j,
                "cost_tracking",
                f"u{rng.randrange(40)}" if w != 15 or j % 2 else "u-runaway",
                service="llm-gateway",
                model="gpt-large",
                cost_usd=spend * rng.uniform(0.04, 0.06) * (2 if w == 15 and not j % 2 else 0.1),
            )
            p.log(ev, 0, T0, out)
    fired = {(a.series, a.labels.get("user_id", "")) for a in firing(out)}
    print(sorted(fired))
    assert ("llm.cost_usd", "") in fired
    assert ("user.cost_usd", "u-runaway") in fired
    keys = {w.key for w in p.checkpoint()}
    assert b"b|0" in keys and b"m|llm.cost_usd{model=gpt-large,service=llm-gateway}" in keys
    assert all(w.key != b"b|0" for w in p.checkpoint())  # nothing changed since


def test_an_idle_partition_closes_its_window_by_the_wall_clock() -> None:
    cfg = config(per_type=True, per_user_types=[])  # idle_advance_seconds = 10 by default
    p = Pipeline(cfg)
    wall = 5_000.0
    out: list[Alert] = []
    p.log(log(T0 + 50, "login"), 0, wall, out)
    assert p.tick(wall + 5) == []  # not idle long enough
    assert p.behaviour is not None and p.behaviour.tick(wall + 9, out) == []
    closed = p.behaviour.tick(wall + 10, out)  # event time 50 + 10 reaches the window's end
    assert [(part, [(s.name, s.value, s.ts) for s in samples]) for part, samples in closed] == [
        (0, [("log.type_events", 1.0, T0 + 60)])
    ]
    assert p.behaviour.tick(wall + 20, out) == []  # nothing new: the next window is still open
    assert out == []


def test_behaviour_is_off_by_default() -> None:
    assert Pipeline(parse_config({}, "test.toml", {})).behaviour is None
