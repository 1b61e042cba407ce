"""Alertmanager's API v2 at the worker, so ``amtool`` and Alertmanager clients work with Kestrel.

- ``GET /api/v2/silences[?filter=<matcher>...]``: the silences, filtered as Alertmanager does;
- ``POST /api/v2/silences``: create, or update (with ``id``), a silence; ``{"silenceID": id}``;
- ``GET /api/v2/silence/{id}``; ``DELETE /api/v2/silence/{id}``: read, or expire, one silence;
- ``GET /api/v2/alerts[?filter=...&receiver=...&active=&silenced=&inhibited=]``: the firing
  alerts the notifier holds, in Alertmanager's form (503 on a worker that is not the notifier:
  the alerts topic has one partition, so one worker holds them, as one Alertmanager would);
- ``GET /api/v2/status``: cluster, config, version and uptime, as ``amtool`` reads them.

The same rules as the older ``/silences`` paths (which stay): every call needs
``Authorization: Bearer <api.token>`` (401 without it, 403 when no token is configured); a
change is written to the silences topic, from which every worker applies it. Matchers are
Alertmanager's (``=``, ``!=``, ``=~``, ``!~``), read by :mod:`engine.notify.matchers`.
"""

from __future__ import annotations

import platform
from typing import Any

import orjson
from faust.web import Request, Response, View

from alert_channels.formatting import alert_annotations
from engine import __version__
from engine.model.times import rfc3339
from engine.notify import UnknownSilenceError
from engine.notify.api_v2 import AlertQuery, alert_views, parse_filter, silence_matches_filter
from engine.runtime.api_auth import refusal
from engine.runtime.worker import Worker

__all__ = ["register_alertmanager_api"]

PREFIX = "/api/v2"


def register_alertmanager_api(worker: Worker) -> None:
    """Add Alertmanager's API v2 paths to ``worker.app``."""
    app, cfg = worker.app, worker.config
    token = cfg.api.token.get_secret_value() if cfg.api.token is not None else None

    def denied(view: View, request: Request) -> Response | None:
        refused = refusal(token, request)
        return None if refused is None else view.json(refused[0], status=refused[1])

    def params(request: Request) -> dict[str, list[str]]:
        query: Any = request.query
        return {name: list(query.getall(name)) for name in set(query.keys())}

    async def publish(silence_id: str) -> None:
        silence = worker.silences.get(silence_id)
        await worker.topics.silences.send(
            key=silence_id.encode(), value=orjson.dumps(silence.to_state())
        )

    def add_silence_views(many: str, one: str, legacy: bool) -> None:
        """The silence views at ``many`` (list, create) and ``one`` (read, expire)."""

        @app.page(many)
        class SilencesView(View):
            async def get(self, request: Request) -> Response:
                refusal = denied(self, request)
                if refusal is not None:
                    return refusal
                try:
                    filters = parse_filter(params(request).get("filter", []))
                except ValueError as exc:
                    return self.json({"error": str(exc)}, status=400)
                now = worker.clock()
                return self.json(
                    [
                        s.to_dict(now)
                        for s in worker.silences.list_all(now)
                        if silence_matches_filter(s, filters)
                    ]
                )

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

        @app.page(one)
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
                await publish(silence_id)
                if legacy:  # the older paths answer with the expired silence
                    return self.json(worker.silences.get(silence_id).to_dict(worker.clock()))
                return self.bytes(b"", status=200)

    add_silence_views(f"{PREFIX}/silences", PREFIX + "/silence/{silence_id}", legacy=False)
    add_silence_views("/silences", "/silences/{silence_id}", legacy=True)

    @app.page(f"{PREFIX}/alerts")
    class AlertsView(View):
        async def get(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            try:
                query = AlertQuery.from_params(params(request))
            except ValueError as exc:
                return self.json({"error": str(exc)}, status=400)
            dispatcher = worker.notifier.dispatcher
            if dispatcher is None:
                return self.json(
                    {
                        "error": "this worker is not the active notifier; ask the worker whose "
                        '/health says "notifier": true'
                    },
                    status=503,
                )
            now = worker.clock()
            views = alert_views(
                dispatcher.groups(),
                silenced_by=lambda labels: worker.silences.is_silenced(labels, now),
                inhibited_by=dispatcher.inhibitor.inhibited_by,
                annotations=alert_annotations,
                query=query,
                now=now,
            )
            return self.json(views)

    @app.page(f"{PREFIX}/status")
    class StatusView(View):
        async def get(self, request: Request) -> Response:
            refusal = denied(self, request)
            if refusal is not None:
                return refusal
            started = worker.started_at or worker.clock()
            return self.json(
                {
                    "cluster": {"name": cfg.kafka.app_id, "status": "ready", "peers": []},
                    "config": {
                        "original": "# Kestrel is configured in TOML (see the worker's config "
                        "file); routes, silences and inhibit rules live there.\n"
                    },
                    "versionInfo": {
                        "version": __version__,
                        "revision": "",
                        "branch": "",
                        "buildUser": "kestrel",
                        "buildDate": "",
                        "goVersion": f"python{platform.python_version()}",
                    },
                    "uptime": rfc3339(started),
                }
            )
