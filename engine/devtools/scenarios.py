"""Synthetic traffic of an LLM agent platform, with injected anomalies (for the demo and tests).

Pure generators: a seeded :class:`random.Random` and a simulated start time in, events out. Each
event is ``(kind, key, event)`` where ``kind`` is ``"metric"`` or ``"log"``, ``key`` is the Kafka
message key (the series name or the service: keying by series keeps a series on one partition).

The timeline is split in fractions so that any length works:

- 35%-38%: ``llm_latency_ms{model=gpt-large}`` spikes to about 4x;
- 55%-58%: ``tool-runner`` logs turn mostly to errors;
- from 75%: ``queue_depth{queue=tasks}`` shifts from ~20 to ~60 and stays;
- 20%-24%: a runaway agent of user ``u-7`` (session ``s-runaway``) burns tokens on
  ``llm-gateway``: about 50 times its usual spend (``cost_tracking`` events with
  ``context.cost_usd``, ``llm_completion`` with ``context.total_tokens``) and 30 tool calls a
  minute;
- 62%-65%: a credential-stuffing burst: 36 failed logins a minute (``security_event``,
  ``context.status = "failed"``) for user ``u-13`` on ``agent-api``.

Log events carry ``user_id`` (40 users), ``session_id`` and, by type, the context fields the
behaviour series read (:mod:`engine.core.behaviour`): ``tool`` and ``success`` on
``tool_executed``, ``model``, ``total_tokens`` and ``cost_usd`` on ``llm_completion``,
``cost_usd`` on ``cost_tracking``, ``approved`` on ``user_approval``, ``action`` and ``status``
on ``security_event``.

>>> import random
>>> events = list(platform_traffic(random.Random(1), start=0.0, minutes=2, step_seconds=10))
>>> sorted({kind for kind, _, _ in events})
['log', 'metric']
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SCENARIOS", "Event", "platform_traffic"]

Event = tuple[str, bytes, dict[str, Any]]

SERVICES = ("agent-api", "tool-runner", "llm-gateway")
HOT_TYPES = ("thought", "llm_request", "executor_heartbeat", "stream_delta")
COLD_TYPES = (
    "task_created",
    "tool_executed",
    "llm_completion",
    "cost_tracking",
    "user_approval",
    "security_event",
)
TOOLS = ("web_search", "code_exec", "file_read")
MODELS = ("gpt-large", "gpt-small")
RUNAWAY_USER = "u-7"
STUFFED_USER = "u-13"


def _metric(name: str, value: float, ts: float, labels: dict[str, str]) -> Event:
    return (
        "metric",
        name.encode(),
        {"name": name, "value": round(value, 3), "timestamp": ts, "labels": labels},
    )


def platform_traffic(
    rng: random.Random,
    *,
    start: float,
    minutes: float,
    step_seconds: float = 10.0,
    anomalies: bool = True,
    only: str | None = None,
) -> Iterator[Event]:
    """Events of ``minutes`` of simulated traffic from epoch second ``start``, step by step.

    ``only`` keeps one kind (``"metric"`` or ``"log"``); ``anomalies=False`` gives steady traffic.
    """
    steps = int(minutes * 60 / step_seconds)
    for i in range(steps):
        ts = start + i * step_seconds
        frac = i / max(steps, 1)
        spike = anomalies and 0.35 <= frac < 0.38
        burst = anomalies and 0.55 <= frac < 0.58
        shifted = anomalies and frac >= 0.75
        runaway = anomalies and 0.20 <= frac < 0.24
        stuffing = anomalies and 0.62 <= frac < 0.65
        if only in (None, "metric"):
            latency = rng.gauss(800, 40) * (4.0 if spike else 1.0)
            yield _metric("llm_latency_ms", latency, ts, {"model": "gpt-large"})
            yield _metric(
                "queue_depth", rng.gauss(60 if shifted else 20, 2), ts, {"queue": "tasks"}
            )
            yield _metric("cpu_percent", rng.gauss(45, 3), ts, {"host": "worker-1"})
            yield _metric("cost_usd", abs(rng.gauss(0.4, 0.04)), ts, {"team": "research"})
        if only in (None, "log"):
            for service in SERVICES:
                error_rate = 0.7 if (burst and service == "tool-runner") else 0.02
                for j in range(6):
                    yield _log(rng, service, ts + j * step_seconds / 6, error_rate)
            if runaway:
                yield from _runaway(rng, ts, step_seconds)
            if stuffing:
                for j in range(6):
                    yield _stuffing(ts + j * step_seconds / 6)


def _log(rng: random.Random, service: str, ts: float, error_rate: float) -> Event:
    if rng.random() < error_rate:
        event: dict[str, Any] = {
            "timestamp": ts,
            "level": rng.choice(("ERROR", "error", "CRITICAL")),
            "service": service,
            "type": "error_occurred",
            "message": f"tool call failed: timeout after {rng.randint(20, 40)}s",
            "session_id": f"s-{rng.randint(1, 50)}",
        }
    else:
        etype = rng.choice(HOT_TYPES + COLD_TYPES)
        event = {
            "timestamp": ts,
            "level": rng.choice(("INFO", "info", "DEBUG")),
            "service": service,
            "type": etype,
            "message": f"{etype} for task {rng.randint(1000, 9999)}",
            "session_id": f"s-{rng.randint(1, 50)}",
            "context": _context(rng, etype),
        }
        if etype == "tool_executed":
            event["performance_data"] = {
                "operation": "tool_call",
                "duration_ms": round(rng.gauss(120, 10), 2),
            }
    event["user_id"] = f"u-{rng.randint(1, 40)}"
    return ("log", service.encode(), event)


def _context(rng: random.Random, etype: str) -> dict[str, Any]:
    ctx: dict[str, Any] = {"attempt": 1}
    if etype == "tool_executed":
        ctx.update(tool=rng.choice(TOOLS), success=rng.random() > 0.03)
    elif etype == "llm_completion":
        tokens = rng.randint(200, 2000)
        ctx.update(model=rng.choice(MODELS), total_tokens=tokens, cost_usd=tokens * 1e-5)
    elif etype == "cost_tracking":
        ctx.update(cost_usd=round(rng.uniform(0.005, 0.05), 4))
    elif etype == "user_approval":
        ctx.update(approved=rng.random() > 0.1)
    elif etype == "security_event":
        ctx.update(action="login", status="failed" if rng.random() < 0.1 else "ok")
    return ctx


def _runaway(rng: random.Random, ts: float, step_seconds: float) -> Iterator[Event]:
    """One step of a runaway agent on llm-gateway: 8 costly completions, 5 tool calls."""
    for j in range(8):
        t = ts + j * step_seconds / 8
        tokens = rng.randint(30_000, 50_000)
        for etype, ctx in (
            ("llm_completion", {"model": "gpt-large", "total_tokens": tokens}),
            ("cost_tracking", {"model": "gpt-large", "cost_usd": round(tokens * 1e-5, 4)}),
        ):
            ctx["cost_usd"] = round(tokens * 1e-5, 4)
            yield (
                "log",
                b"llm-gateway",
                {
                    "timestamp": t,
                    "level": "INFO",
                    "service": "llm-gateway",
                    "type": etype,
                    "message": f"{etype} for task 4242",
                    "session_id": "s-runaway",
                    "user_id": RUNAWAY_USER,
                    "context": ctx,
                },
            )
    for j in range(5):
        yield (
            "log",
            b"llm-gateway",
            {
                "timestamp": ts + j * step_seconds / 5,
                "level": "INFO",
                "service": "llm-gateway",
                "type": "tool_executed",
                "message": "tool_executed for task 4242",
                "session_id": "s-runaway",
                "user_id": RUNAWAY_USER,
                "context": {"tool": "web_search", "success": True},
                "performance_data": {
                    "operation": "tool_call",
                    "duration_ms": round(rng.gauss(120, 10), 2),
                },
            },
        )


def _stuffing(ts: float) -> Event:
    """One failed login of a credential-stuffing burst against one user."""
    return (
        "log",
        b"agent-api",
        {
            "timestamp": ts,
            "level": "WARNING",
            "service": "agent-api",
            "type": "security_event",
            "message": "login failed: bad password",
            "session_id": "s-anon",
            "user_id": STUFFED_USER,
            "context": {"action": "login", "status": "failed", "ip": "203.0.113.7"},
        },
    )


def _only(kind: str, anomalies: bool = True) -> Callable[..., Iterator[Event]]:
    def gen(rng: random.Random, *, start: float, minutes: float) -> Iterator[Event]:
        return platform_traffic(rng, start=start, minutes=minutes, anomalies=anomalies, only=kind)

    return gen


#: Scenarios for ``kestrel produce --scenario NAME``.
SCENARIOS: dict[str, Callable[..., Iterator[Event]]] = {
    "metrics": _only("metric"),
    "logs": _only("log"),
    "steady-metrics": _only("metric", anomalies=False),
    "steady-logs": _only("log", anomalies=False),
}
