"""The cost of the behaviour series (engine/core/behaviour.py): CPU per log event, and memory
with a million distinct users.

    python bench/behaviour.py [--events 200000] [--rounds 3] [--users 1000000]

**CPU.** ``--events`` log events (one JSON object per Kafka record, 500 records a call, through
:func:`engine.core.batch.process_batch` as in ``bench/pipeline.py``; no broker) of an agent
platform: 3 services, 20,000 users drawn from a Zipf law, 200 sessions, the event types of the
demo with their context fields, 10,000 events a minute of event time (so windows close). It is run
with the behaviour keys off (today's log path: windows, latency, no pattern detectors), and on
(``per_type``, ``per_tool``, ``per_model``, four ``per_user_types``, ``per_session_types``), and
prints the best of ``--rounds`` rounds in CPU time per event (``time.process_time``).

**Memory.** ``--users`` ``cost_tracking`` events, each from a different user, through a
:class:`~engine.core.behaviour.Behaviour` with ``max_tracked_users`` = 10,000, under
``tracemalloc``: the memory it holds at the end and at its peak, in MB, and the users tracked.
The memory is bounded by the tables' capacity, not by the users seen. Asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.config import Config, parse_config
from engine.core.batch import process_batch
from engine.core.behaviour import Behaviour
from engine.core.pipeline import Pipeline
from engine.formats import build_decoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import Rec

from engine.model.alert import Alert
from engine.model.events import LogEvent

T0 = 1_700_000_040.0
FETCH = 500
PER_MINUTE = 10_000
USER_TYPES = ["cost_tracking", "security_event", "tool_executed", "user_approval"]
TYPES = ["thought", "llm_request", "llm_completion", "task_created", *USER_TYPES]


def _config(on: bool) -> Config:
    series: dict[str, Any] = {"pattern_detectors": []}
    if on:
        series.update(
            per_type=True,
            per_tool=True,
            per_model=True,
            per_user_types=USER_TYPES,
            per_session_types=["tool_executed"],
        )
    return parse_config({"series": series}, "bench")


def _events(n: int) -> list[dict[str, Any]]:
    rng = random.Random(1)
    weights = [1.0 / k for k in range(1, 20_001)]
    users = rng.choices(range(20_000), weights=weights, k=n)
    out = []
    for i in range(n):
        etype = rng.choice(TYPES)
        ctx: dict[str, Any] = {}
        if etype == "tool_executed":
            ctx = {"tool": rng.choice(("web_search", "code_exec")), "success": rng.random() > 0.05}
        elif etype == "llm_completion":
            ctx = {"model": "gpt-large", "total_tokens": 900, "cost_usd": 0.009}
        elif etype == "cost_tracking":
            ctx = {"cost_usd": round(rng.uniform(0.005, 0.05), 4)}
        elif etype == "user_approval":
            ctx = {"approved": rng.random() > 0.1}
        elif etype == "security_event":
            ctx = {"action": "login", "status": "ok"}
        event: dict[str, Any] = {
            "timestamp": T0 + 60.0 * i / PER_MINUTE,
            "level": "INFO",
            "service": ("agent-api", "tool-runner", "llm-gateway")[i % 3],
            "type": etype,
            "message": f"{etype} for task {rng.randint(1000, 9999)}",
            "user_id": f"u-{users[i]}",
            "session_id": f"s-{rng.randrange(200)}",
            "context": ctx,
        }
        if etype == "tool_executed":
            event["performance_data"] = {"operation": "tool_call", "duration_ms": 120.0}
        out.append(event)
    return out


def _run(cfg: Config, records: list[Rec]) -> tuple[float, int]:
    """CPU seconds to judge ``records`` (the logs topic's) with a fresh pipeline, and the alerts
    made."""
    decoders = {spec.topic: build_decoder(spec) for spec in cfg.inputs()}
    pipeline = Pipeline(cfg)
    alerts = 0
    started = time.process_time()
    for i in range(0, len(records), FETCH):
        result = process_batch(
            pipeline,
            cfg.topics.logs,
            0,
            records[i : i + FETCH],
            decoders=decoders,
            max_bytes=cfg.worker.max_message_bytes,
            max_future_seconds=cfg.worker.max_future_seconds,
            now=T0 + 1e6,
        )
        alerts += len(result.alerts)
    return time.process_time() - started, alerts


def _memory(users: int) -> None:
    cfg = parse_config({"series": {"per_user_types": ["cost_tracking"]}}, "bench")
    tracemalloc.start()
    behaviour = Behaviour(cfg, None)
    out: list[Alert] = []
    for i in range(users):
        raw = {"user_id": f"u-{i}", "context": {"cost_usd": 0.01}}
        ts = T0 + 60.0 * i / 100_000  # 100,000 users a minute
        behaviour.observe(LogEvent(ts, "INFO", "api", "", "cost_tracking", None, None, raw), 0, out)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cap = cfg.series.max_tracked_users
    print(
        f"memory: {users:,} distinct users, max_tracked_users={cap:,} (two tables: events, "
        f"cost_usd): {behaviour.tracked():,} tracked, {current / 1e6:.1f} MB held, "
        f"{peak / 1e6:.1f} MB peak, {len(out)} alerts"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--users", type=int, default=1_000_000)
    args = ap.parse_args()
    events = _events(args.events)
    print(f"{len(events):,} log events, {FETCH} records a call, best of {args.rounds}")
    costs = {}
    for on in (False, True):
        cfg = _config(on)
        stamp = int((T0 + 1e5) * 1000)
        records = [Rec(i, stamp, None, orjson.dumps(e)) for i, e in enumerate(events)]
        best, alerts = min(_run(cfg, records) for _ in range(args.rounds))
        costs[on] = best / len(events)
        print(
            f"behaviour {'on ' if on else 'off'}: {costs[on] * 1e6:6.2f} us/event "
            f"({1 / costs[on]:>9,.0f} events/s of CPU), {alerts:,} alert transitions"
        )
    print(f"the behaviour series add {(costs[True] - costs[False]) * 1e6:.2f} us/event")
    _memory(args.users)


if __name__ == "__main__":
    main()
