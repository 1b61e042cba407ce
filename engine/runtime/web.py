"""The worker's HTTP endpoints: ``/metrics`` and ``/health``, and the APIs registered beside them.

- the silences API (at ``/silences`` and at Alertmanager's ``/api/v2/...`` paths, for amtool)
  and Alertmanager's alert and status views: :mod:`engine.runtime.alertmanager_api`;
- the read-only ``/api/v1`` of the live views and the ``/dashboard`` page:
  :mod:`engine.runtime.api`.

Every API call needs ``Authorization: Bearer <api.token>`` (:mod:`engine.runtime.api_auth`).
"""

from __future__ import annotations

from typing import Any

from faust.web import Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from engine.runtime.alertmanager_api import register_alertmanager_api
from engine.runtime.api import register_api
from engine.runtime.worker import Worker

__all__ = ["register_views"]


def register_views(worker: Worker) -> None:
    """Add the endpoints and the APIs to ``worker.app``."""
    register_alertmanager_api(worker)  # silences, alerts, status (also at /silences)
    register_api(worker)  # the read-only API and the dashboard
    app, cfg = worker.app, worker.config
    inputs = worker.input_topics

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
