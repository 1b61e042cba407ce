"""The worker's read-only API and its web dashboard.

Every ``/api/v1`` call needs ``Authorization: Bearer <token>`` with ``api.token`` from the config
(else 401; without a configured token, 403), like the silences API; the worker serves on
``worker.web_host`` (loopback by default). Answers are JSON (``nan`` and ``inf`` are ``null``):

- ``GET /api/v1/alerts?limit=N``: ``firing`` (the alerts firing now) and ``recent`` (the latest
  transitions, newest first), each alert with its labels, severity, ``started_at``, value,
  expected value, score and ``reason``;
- ``GET /api/v1/series?match=TEXT&limit=N``: the series this worker holds, firing ones first;
- ``GET /api/v1/series/{id}``: explain one series (its detectors, parameters, warm-up, expected
  value and band, why its last alert fired, recent points); asking taps the series, so its
  points are recorded from then on (see :class:`~engine.core.explain.Taps`);
- ``GET /api/v1/stats``: throughput, lag, input dead letters, alerts and delivery counters, read
  from the worker's metrics registry;
- ``GET /api/v1/tail?service=&type=&session=&level=&since_seconds=&limit=``: server-sent events
  (``event: log``), the live hot events of the Redis mirror (503 when Redis is off).

``GET /dashboard`` is one static page (no data in it, so it needs no token): its script asks
for the token (or reads it from the address's ``#token=`` fragment, which the browser never
sends) and calls the API above with it.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from importlib import resources
from typing import Any

import orjson
from aiohttp import web as aioweb
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from engine.core.explain import AlertBoard, Taps, alert_view, explain, finite, list_series
from engine.runtime.api_auth import refusal
from engine.runtime.tail import TailFilter, tail
from engine.runtime.worker import Worker
from engine.sinks.alert_board import AlertBoardSink
from engine.sinks.redis_mirror import redis_client

__all__ = ["read_stats", "register_api"]

#: Socket timeout of the tail's Redis client, above the 1 s its blocking reads wait.
TAIL_SOCKET_TIMEOUT_SECONDS = 5.0

#: Seconds over which ``events_per_second`` is measured (between calls of the stats view).
RATE_WINDOW_SECONDS = 30.0


def _samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def read_stats(registry: CollectorRegistry) -> dict[str, Any]:
    """The counters people watch, read from ``registry`` (Kestrel's metrics).

    ``events_total`` and ``messages_total`` consumed, ``lag_seconds`` (Kafka timestamp to end of
    processing), ``invalid_total`` (inputs sent to the dead-letter topic), ``late_total``,
    ``alerts`` by status, ``deliveries`` by outcome (``ok``, ``retried``, ``dead_lettered``) and
    by channel, ``series`` tracked by kind, ``notification_queue`` and ``redis_up``.
    """
    s = _samples(registry)

    def total(name: str) -> float:
        return sum(v for _, v in s.get(name, ()))

    def by(name: str, label: str) -> dict[str, float]:
        counts: dict[str, float] = {}
        for labels, value in s.get(name, ()):
            key = labels.get(label, "")
            counts[key] = counts.get(key, 0.0) + value
        return counts

    channels: dict[str, dict[str, float]] = {}
    for labels, value in s.get("kestrel_deliveries_total", ()):
        channels.setdefault(labels.get("channel", ""), {})[labels.get("outcome", "")] = value
    redis_up = s.get("kestrel_redis_mirror_up")
    return {
        "events_total": total("kestrel_events_consumed_total"),
        "messages_total": total("kestrel_messages_consumed_total"),
        "lag_seconds": total("kestrel_processing_lag_seconds"),
        "invalid_total": total("kestrel_invalid_events_total"),
        "late_total": total("kestrel_late_events_total"),
        "alerts": by("kestrel_alerts_total", "status"),
        "deliveries": by("kestrel_deliveries_total", "outcome"),
        "channels": channels,
        "dlq_write_errors": total("kestrel_dlq_write_errors"),
        "series": {k: int(v) for k, v in by("kestrel_series_tracked", "kind").items()},
        "notification_queue": total("kestrel_notification_queue_alerts"),
        "redis_up": None if not redis_up else bool(redis_up[0][1]),
    }


def _int(request: Request, name: str, default: int, top: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    value = int(raw)  # ValueError: answered 400
    if not 0 <= value <= top:
        raise ValueError(f"{name}: between 0 and {top}")
    return value


def register_api(worker: Worker) -> None:
    """Add the API and the dashboard to ``worker.app``, and the alert board to its sinks."""
    app, cfg = worker.app, worker.config
    token = cfg.api.token.get_secret_value() if cfg.api.token is not None else None
    board = AlertBoard()
    worker.sinks.append(AlertBoardSink(board))
    taps = Taps()
    rates: deque[tuple[float, float]] = deque()
    page = resources.files("engine.runtime").joinpath("dashboard.html").read_bytes()

    def answer(view: View, doc: Any, status: int = 200) -> Response:
        return view.bytes(orjson.dumps(finite(doc)), content_type="application/json", status=status)

    def denied(view: View, request: Request) -> Response | None:
        refused = refusal(token, request)
        return None if refused is None else answer(view, *refused)

    @app.page("/dashboard")
    class DashboardView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(
                page,
                content_type="text/html",
                headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
            )

    @app.page("/api/v1/alerts")
    class AlertsView(View):
        async def get(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            try:
                limit = _int(request, "limit", 50, 1000)
            except ValueError as exc:
                return answer(self, {"error": str(exc)}, 400)
            return answer(
                self,
                {
                    "firing": [alert_view(a) for a in board.firing()],
                    "recent": [alert_view(a) for a in board.recent(limit)],
                    "transitions": board.transitions,
                    "now": worker.clock(),
                },
            )

    @app.page("/api/v1/series")
    class SeriesListView(View):
        async def get(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            try:
                limit = _int(request, "limit", 100, 100_000)
            except ValueError as exc:
                return answer(self, {"error": str(exc)}, 400)
            rows = list_series(worker.pipeline, request.query.get("match"), limit)
            return answer(self, {"series": rows, "counts": worker.pipeline.series_counts()})

    @app.page("/api/v1/series/{sid:.+}")  # an id holds braces, which {sid} does not match
    class SeriesView(View):
        async def get(self, request: Request, sid: str) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            taps.tap(worker.pipeline, sid)
            doc = explain(worker.pipeline, sid, board, taps)
            if doc is None:
                return answer(self, {"error": f"series {sid!r}: not held by this worker"}, 404)
            return answer(self, doc)

    @app.page("/api/v1/stats")
    class StatsView(View):
        async def get(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            doc = read_stats(worker.registry)
            now = time.monotonic()
            rates.append((now, doc["events_total"]))
            while len(rates) > 2 and now - rates[1][0] >= RATE_WINDOW_SECONDS:
                rates.popleft()
            then, before = rates[0]
            doc["events_per_second"] = (
                (doc["events_total"] - before) / (now - then) if now - then >= 0.5 else None
            )
            doc["uptime_seconds"] = worker.clock() - worker.started_at if worker.started_at else 0
            doc["app_id"] = cfg.kafka.app_id
            return answer(self, doc)

    @app.page("/api/v1/tail")
    class TailView(View):
        async def get(self, request: Request) -> Any:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            if worker.mirror is None:
                return answer(self, {"error": "no hot events: [redis] is off"}, 503)
            q = request.query
            where = TailFilter(q.get("service"), q.get("type"), q.get("session"), q.get("level"))
            try:
                limit = _int(request, "limit", 0, 1_000_000)
                since = float(q.get("since_seconds", "0"))
            except ValueError as exc:
                return answer(self, {"error": str(exc)}, 400)
            prefix = worker.mirror.events_key("")
            response = aioweb.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
            )
            await response.prepare(request)  # type: ignore[arg-type]
            # XREAD blocks up to a second: the socket must wait longer than that.
            timeout = max(cfg.redis.timeout_seconds, TAIL_SOCKET_TIMEOUT_SECONDS)
            client = redis_client(cfg.redis.model_copy(update={"timeout_seconds": timeout}))
            sent = 0
            try:
                await response.write(b": kestrel tail\n\n")
                events = tail(client, prefix, where, since_seconds=since, clock=worker.clock)
                async for item in events:
                    data = orjson.dumps(finite(item))
                    await response.write(b"event: log\ndata: " + data + b"\n\n")
                    sent += 1
                    if limit and sent >= limit:
                        break
            except ConnectionError:
                pass  # the client went away
            except (RedisError, OSError) as exc:
                with contextlib.suppress(ConnectionError, OSError):
                    why = f"redis at {cfg.redis.shown_url}: {type(exc).__name__}"
                    error = orjson.dumps({"error": why})
                    await response.write(b"event: error\ndata: " + error + b"\n\n")
            finally:
                await client.aclose()
            with contextlib.suppress(ConnectionError, OSError):
                await response.write_eof()
            return response
