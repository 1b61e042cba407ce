"""The behaviour series on a running worker and a real broker (Apache Kafka, or Tansu with
``KESTREL_TEST_BROKER=tansu``).

Forty users spend and log in as usual, minute after minute (event time). User ``u-runaway``'s
agent then spends about 50 times its usual; a first worker raises ``user.cost_usd`` for it and
is stopped while the incident is open. A second worker restores the user tables from the
changelog, resolves that incident (same fingerprint) when the spend is back to normal, and
raises ``user.failures`` for a credential-stuffing burst against ``u-stuffed``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from engine.devtools.broker import Broker
from tests.testkit import WorkerProcess, collect, producer, run, write_config

T0 = 1_700_000_040.0  # a multiple of 60: window w is [T0 + 60 w, T0 + 60 (w + 1))
USERS = 40

CONFIG = """
[windows]
size_seconds = 60
allowed_lateness_seconds = 0
# The windows close by event time here (no idle close while the test runs).
idle_advance_seconds = 3600

[alerts]
repeat_interval_seconds = 1e9

[series]
pattern_detectors = []
per_user_types = ["cost_tracking", "security_event"]
"""


def _event(ts: float, etype: str, user: str, **context: Any) -> dict[str, Any]:
    return {
        "timestamp": ts,
        "level": "INFO",
        "service": "agent-api",
        "type": etype,
        "message": f"{etype} by {user}",
        "user_id": user,
        "session_id": f"s-{user}",
        "context": context,
    }


def _minute(rng: random.Random, w: int, runaway: bool = False, stuffing: bool = False) -> list[Any]:
    """One minute of traffic: every user spends a little and logs in once or twice."""
    events = []
    for u in range(USERS):
        user = f"u-{u}"
        for _ in range(rng.randint(1, 3)):
            cost = round(rng.uniform(0.05, 0.15), 4)
            events.append(_event(0.0, "cost_tracking", user, cost_usd=cost, model="gpt-small"))
        status = "failed" if rng.random() < 0.1 else "ok"
        events.append(_event(0.0, "security_event", user, action="login", status=status))
    user = "u-runaway"
    for _ in range(60 if runaway else 2):  # ~0.2 USD a minute, then ~12
        events.append(_event(0.0, "cost_tracking", user, cost_usd=0.2, model="gpt-large"))
    if stuffing:
        for _ in range(80):
            events.append(
                _event(0.0, "security_event", "u-stuffed", action="login", status="failed")
            )
    rng.shuffle(events)
    for i, ev in enumerate(events):
        ev["timestamp"] = T0 + 60 * w + 59 * i / len(events)
    return events


async def _publish(bootstrap: str, topic: str, events: list[Any]) -> None:
    async with producer(bootstrap) as p:
        for ev in events:
            # One key: one partition, in order (as a service keys its logs).
            await p.send(topic, orjson.dumps(ev), key=b"agent-api")


def _alerts(broker: Broker, topic: str, until: Any, timeout: float = 60) -> list[dict[str, Any]]:
    def decoded(records: list[Any]) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in records]

    records = run(collect(broker.bootstrap, topic, lambda rs: until(decoded(rs)), timeout))
    return decoded(records)


def _is(alert: dict[str, Any], status: str, series: str, user: str) -> bool:
    return bool(
        alert["status"] == status
        and alert["series"] == series
        and alert["labels"].get("user_id") == user
    )


def test_a_runaway_spender_and_credential_stuffing_fire_with_their_labels_across_a_restart(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path
) -> None:
    cfg = tmp_path / "kestrel.toml"
    port = write_config(cfg, broker, unique, redis_url, CONFIG)
    logs, alerts_topic = f"logs-{unique}", f"alerts-{unique}"
    rng = random.Random(12)
    first = WorkerProcess(cfg, port, tmp_path / "worker-1.log").start()
    try:
        first.wait_ready()
        # Windows 0-9 as usual, 10-11 the runaway agent, window 12 opens (closing window 11).
        events = [ev for w in range(12) for ev in _minute(rng, w, runaway=w >= 10)]
        events.append(_event(T0 + 60 * 12, "cost_tracking", "u-0", cost_usd=0.1))
        run(_publish(broker.bootstrap, logs, events))
        fired = _alerts(
            broker,
            alerts_topic,
            lambda al: any(_is(a, "firing", "user.cost_usd", "u-runaway") for a in al),
        )
        print("\nfirst worker:", [a["summary"] for a in fired])
        runaway = next(a for a in fired if _is(a, "firing", "user.cost_usd", "u-runaway"))
        assert runaway["labels"] == {
            "type": "cost_tracking",
            "user_id": "u-runaway",
            "session_id": "s-u-runaway",
            "model": "gpt-large",
        }
        assert runaway["detector"] == "behaviour"
        assert runaway["value"] > 10 and "its own mean" in runaway["annotations"]["reason"]
        assert {a["labels"].get("user_id") for a in fired} == {"u-runaway"}  # no one else
        # Past a checkpoint (0.5 s), then stopped with the incident open.
        first.stop()
        log = first.log()
        assert "Traceback" not in log, log
    finally:
        first.stop()

    second = WorkerProcess(cfg, port, tmp_path / "worker-2.log").start()
    try:
        second.wait_ready()
        # Windows 13-19 as usual, 15-16 a credential-stuffing burst; window 20 opens.
        events = [ev for w in range(13, 20) for ev in _minute(rng, w, stuffing=w in (15, 16))]
        events.append(_event(T0 + 60 * 20, "cost_tracking", "u-0", cost_usd=0.1))
        run(_publish(broker.bootstrap, logs, events))

        def done(al: list[dict[str, Any]]) -> bool:
            return any(_is(a, "resolved", "user.cost_usd", "u-runaway") for a in al) and any(
                _is(a, "firing", "user.failures", "u-stuffed") for a in al
            )

        alerts = _alerts(broker, alerts_topic, done)
        print("second worker:", [a["summary"] for a in alerts[len(fired) :]])
        resolved = next(a for a in alerts if _is(a, "resolved", "user.cost_usd", "u-runaway"))
        assert resolved["fingerprint"] == runaway["fingerprint"]  # restored, not orphaned
        stuffing = next(a for a in alerts if _is(a, "firing", "user.failures", "u-stuffed"))
        assert stuffing["labels"] == {
            "type": "security_event",
            "user_id": "u-stuffed",
            "session_id": "s-u-stuffed",
        }
        assert stuffing["value"] == 80.0
        firing = {
            (a["series"], a["labels"].get("user_id")) for a in alerts if a["status"] == "firing"
        }
        assert firing <= {
            ("user.cost_usd", "u-runaway"),
            ("user.events", "u-runaway"),
            ("user.failures", "u-stuffed"),
            ("user.events", "u-stuffed"),
        }, firing
        assert "Traceback" not in second.log(), second.log()
    finally:
        second.stop()
