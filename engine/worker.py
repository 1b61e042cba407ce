"""Running a worker process: logging, event loop, clients, channels, then Faust's worker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import faust
import httpx
import uvloop
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from engine.app import build_worker
from engine.channels import build_routes
from engine.config import Config
from engine.metrics import KestrelMetrics
from engine.mirror import RedisMirror

__all__ = ["run_worker"]


def _mirror_factory(cfg: Config) -> Callable[[KestrelMetrics], RedisMirror | None]:
    rc = cfg.redis

    def make(metrics: KestrelMetrics) -> RedisMirror | None:
        if not rc.enabled:
            return None
        client = Redis.from_url(
            rc.url.get_secret_value(),
            socket_timeout=rc.timeout_seconds,
            socket_connect_timeout=rc.timeout_seconds,
        )
        return RedisMirror(
            client,
            prefix=rc.key_prefix,
            hot_types=rc.hot_types,
            retention_seconds=rc.retention_seconds,
            retry_after_seconds=rc.retry_after_seconds,
            metrics=metrics,
            clock=time.time,
        )

    return make


def run_worker(cfg: Config, *, log_level: str = "info") -> None:
    """Run a detection worker in the foreground until it is stopped (SIGTERM/SIGINT).

    Faust's worker exits the process when it stops.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    http = httpx.AsyncClient()
    worker = build_worker(
        cfg,
        registry=CollectorRegistry(),
        routes=build_routes(cfg, http),
        mirror_factory=_mirror_factory(cfg),
    )

    @worker.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_clients(sender: Any, **kwargs: Any) -> None:
        # Connected after the notifier's own hook: its last deliveries are done by now.
        await http.aclose()
        if worker.mirror is not None:
            await worker.mirror.close()

    level = getattr(logging, log_level.upper())
    fw = faust.Worker(worker.app, loglevel=level, loop=loop, quiet=True)
    for noisy in ("faust", "mode", "aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    fw.execute_from_commandline()
