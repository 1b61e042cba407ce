"""The worker's HTTP endpoints: ``/metrics``, ``/health`` and the silences API.

Silences API (Alertmanager API v2 silence JSON; every call needs ``Authorization: Bearer <token>``
with ``api.token`` from the config, else 401; without a configured token, 403):

- ``GET /silences``: every silence, active first;
- ``POST /silences``: create (or update, with ``id``) a silence; answers ``{"silenceID": id}``;
- ``GET /silences/{id}``, ``DELETE /silences/{id}``: read, or expire, one silence.

A change is written to the silences topic, from which every worker (this one too) applies it.
The same API at Alertmanager's paths (``/api/v2/...``, for amtool) is in
:mod:`engine.runtime.alertmanager_api`.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.notify import UnknownSilenceError
from engine.runtime.alertmanager_api import register_alertmanager_api
from engine.runtime.api import register_api
from engine.runtime.worker import Worker

__all__ = ["register_views"]


def register_views(worker: Worker) -> None:
    """Add the endpoints to ``worker.app`` (and Alertmanager's API v2 paths)."""
    register_alertmanager_api(worker)
    app, cfg = worker.app, worker.config
    inputs = worker.input_topics
    token = cfg.api.token.get_secret_value() if cfg.api.token is not None else None
    register_api(worker)  # the read-only API and the dashboard

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Request) -> Any:
        # aiohttp refuses a charset in content_type=, so the full header goes in headers=.
        body = generate_latest(worker.registry)
        return web.bytes(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/health")
    async def health_view(web: Any, request: Request) -> Any:
        assigned = sorted({tp.partition for tp in app.consumer.assignment() if tp.topic in inputs})
        # Ready once it has joined the group and restored its state from the changelog.
        ready = not app.rebalancing and not app.in_recovery and worker.started_at > 0
        mirror = worker.mirror
        body = {
            "status": "ok" if ready else "starting",
            "recovering": bool(app.in_recovery),
            "app_id": cfg.kafka.app_id,
            "partitions": assigned,
            "notifier": worker.notifier.active,
            "series": worker.pipeline.series_counts(),
            "redis": None if mirror is None else ("ok" if mirror.healthy else "down"),
        }
        return web.json(body, status=200 if ready else 503)

    def denied(view: View, request: Request) -> Response | None:
        if token is None:
            return view.json({"error": "the silences API is off: set api.token"}, status=403)
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return view.json({"error": "missing or wrong bearer token"}, status=401)
        return None

    async def publish(silence_id: str) -> dict[str, Any]:
        silence = worker.silences.get(silence_id)
        await worker.topics.silences.send(
            key=silence_id.encode(), value=orjson.dumps(silence.to_state())
        )
        return silence.to_dict(worker.clock())

    @app.page("/silences")
    class SilencesView(View):
        async def get(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            now = worker.clock()
            return self.json([s.to_dict(now) for s in worker.silences.list_all(now)])

        async def post(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            try:
                data = orjson.loads(await request.read())
                silence_id = worker.silences.add_dict(data, worker.clock())
            except orjson.JSONDecodeError:
                return self.json({"error": "body: not JSON"}, status=400)
            except UnknownSilenceError as exc:
                return self.json({"error": str(exc)}, status=404)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            await publish(silence_id)
            return self.json({"silenceID": silence_id})

    @app.page("/silences/{silence_id}")
    class SilenceView(View):
        async def get(self, request: Request, silence_id: str) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            try:
                silence = worker.silences.get(silence_id)
            except UnknownSilenceError as exc:
                return self.json({"error": str(exc)}, status=404)
            return self.json(silence.to_dict(worker.clock()))

        async def delete(self, request: Request, silence_id: str) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            try:
                worker.silences.expire(silence_id, worker.clock())
            except UnknownSilenceError as exc:
                return self.json({"error": str(exc)}, status=404)
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json(await publish(silence_id))
