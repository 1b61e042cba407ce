"""``kestrel demo``: the whole loop on one machine, with nothing installed but Kestrel.

Starts the embedded broker on a free port, a worker process, a local webhook receiver (the alert
channel), and a producer of simulated LLM-platform traffic (see
:mod:`engine.devtools.scenarios`) running
``speed`` times faster than real time, with a latency spike, an error burst, a level shift, a
runaway agent burning tokens and a credential-stuffing burst.
Each alert is printed as it fires and resolves. The last line is the summary::

    demo: events=<n> alerts_fired=<n> alerts_resolved=<n> dlq=<n>
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from engine.devtools.broker import EmbeddedBroker, free_port
from engine.devtools.scenarios import platform_traffic

__all__ = ["run_demo"]

STEP_SECONDS = 10.0
MALFORMED = (b"{not json", b'{"name": "cpu", "value": "high", "timestamp": 1}', b"\xff\xfe")


@dataclass
class _Counts:
    events: int = 0
    fired: int = 0
    resolved: int = 0
    dlq: int = 0
    webhooks: int = 0
    webhook_alerts: int = 0


def _say(text: str) -> None:
    print(text, flush=True)


def _config(broker: EmbeddedBroker, web_port: int, hook_port: int, run_id: str, token: str) -> str:
    return f"""
[api]
token = "{token}"

[kafka]
broker = "{broker.url}"
app_id = "kestrel-demo-{run_id}"
partitions = 2
session_timeout_seconds = 6

[worker]
web_port = {web_port}
checkpoint_interval_seconds = 2

[redis]
key_prefix = "kestrel-demo:"
retention_seconds = 3600

[windows]
size_seconds = 60
allowed_lateness_seconds = 10
idle_advance_seconds = 2

[series]
# Behaviour, security and cost series (engine/core/behaviour.py).
per_type = true
per_tool = true
per_model = true
per_user_types = ["cost_tracking", "security_event", "tool_executed", "user_approval"]
per_session_types = ["tool_executed"]

# The derived series are counts per minute, often small: zscore, as for log.events.
[[overrides]]
match = "log.type_events*"
use = ["zscore"]

[[overrides]]
match = "llm.*"
use = ["zscore"]

[[overrides]]
match = "tool.*"
use = ["zscore"]

[[channels]]
name = "demo-webhook"
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"
"""


async def _receiver(counts: _Counts) -> tuple[web.AppRunner, int]:
    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        counts.webhooks += 1
        counts.webhook_alerts += len(body.get("alerts", []))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


async def _watch_alerts(bootstrap: str, counts: _Counts, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        "kestrel.alerts",
        "kestrel.dlq",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                for m in messages:
                    if tp.topic == "kestrel.dlq":
                        counts.dlq += 1
                        reason = dict(m.headers).get("kestrel-reason", b"?").decode()
                        _say(f"  dead-lettered: {reason}")
                        continue
                    alert = orjson.loads(m.value)
                    if alert["status"] == "firing" and alert["repeat"] == 0:
                        counts.fired += 1
                        _say(f"  FIRING   [{alert['severity']}] {alert['summary']}")
                    elif alert["status"] == "resolved":
                        counts.resolved += 1
                        _say(f"  RESOLVED {alert['summary']}")
    finally:
        await consumer.stop()


async def _produce(bootstrap: str, seconds: float, speed: float, counts: _Counts) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        minutes = seconds * speed / 60
        start_sim = time.time() - minutes * 60
        t0 = time.monotonic()
        sent_bad = 0
        for kind, key, event in platform_traffic(
            random.Random(42), start=start_sim, minutes=minutes
        ):
            due = (event["timestamp"] - start_sim) / speed
            delay = t0 + due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            topic = "metrics" if kind == "metric" else "logs"
            await producer.send(topic, orjson.dumps(event), key=key)
            counts.events += 1
            if sent_bad < len(MALFORMED) and counts.events % 2000 == 0:
                await producer.send("metrics", MALFORMED[sent_bad])
                sent_bad += 1
        await producer.flush()
    finally:
        await producer.stop()


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            if r.status_code == 200:
                return True
        time.sleep(0.2)
    return False


def _say_cold_store(cfg: Path) -> None:
    """Say where the demo's cold events and alert history are kept and how to read them."""
    from engine.config import load_config
    from engine.sinks.cold_store import EventQuery, StoreError, open_store

    config = load_config(str(cfg))
    store = open_store(config.cold_store_url)
    try:
        n = len(store.query_events(EventQuery(limit=None)))
    except StoreError as exc:
        _say(f"demo: the cold store could not be read: {exc}")
        return
    finally:
        store.close()
    _say(
        f"demo: cold store {store.shown_url} holds {n} cold event(s) (of every demo run); "
        "read them with `kestrel logs` and the alert history with `kestrel alerts --history`"
    )


async def _main(
    duration: float, speed: float, workdir: Path, clock: Callable[[], float]
) -> _Counts:
    started = clock()
    counts = _Counts()
    broker = EmbeddedBroker(log_path=workdir / "broker.log").start()
    runner: Any = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        _say(f"demo: embedded broker on {broker.bootstrap}")
        runner, hook_port = await _receiver(counts)
        web_port = free_port()
        cfg = workdir / "kestrel.toml"
        token = secrets.token_urlsafe(16)  # the read-only API's and the dashboard's
        cfg.write_text(_config(broker, web_port, hook_port, str(os.getpid()), token))
        worker_log = workdir / "worker.log"
        worker = subprocess.Popen(  # noqa: ASYNC220 - started once, returns at once
            [sys.executable, "-m", "engine.cli", "worker", "--config", str(cfg)],
            stdout=worker_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        _say(
            f"demo: worker starting (log: {worker_log}); webhook receiver on 127.0.0.1:{hook_port}"
        )
        if not await asyncio.to_thread(_wait_healthy, web_port, worker, 60):
            raise RuntimeError(f"the worker did not become healthy; see {worker_log}")
        url = f"http://127.0.0.1:{web_port}"
        _say(f"demo: worker ready, metrics at {url}/metrics")
        _say(f"demo: dashboard at {url}/dashboard#token={token}")
        _say(f"demo: in another terminal: kestrel top --url {url} --token {token}")
        _say(
            f"demo: and, once an alert fired: kestrel explain 'llm_latency_ms{{model=gpt-large}}' "
            f"--url {url} --token {token}"
        )
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch_alerts(broker.bootstrap, counts, stop))
        traffic = max(10.0, duration - (clock() - started) - 6.0)
        _say(
            f"demo: publishing {traffic * speed / 60:.0f} simulated minutes of traffic "
            f"in {traffic:.0f}s"
        )
        await _produce(broker.bootstrap, traffic, speed, counts)
        await asyncio.sleep(max(2.0, duration - (clock() - started) - 1.0))
        stop.set()
        await watcher
        _say(
            f"demo: webhook receiver got {counts.webhooks} notification(s) "
            f"covering {counts.webhook_alerts} alert(s)"
        )
        _say_cold_store(cfg)
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
        if runner is not None:
            await runner.cleanup()
        broker.stop()
    return counts


def run_demo(duration: float = 60.0, speed: float = 120.0) -> int:
    """Run the demo for about ``duration`` seconds; prints the summary line last."""
    with tempfile.TemporaryDirectory(prefix="kestrel-demo-") as tmp:
        counts = asyncio.run(_main(duration, speed, Path(tmp), time.monotonic))
    _say(
        f"demo: events={counts.events} alerts_fired={counts.fired} "
        f"alerts_resolved={counts.resolved} dlq={counts.dlq}"
    )
    return 0
