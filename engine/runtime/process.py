"""Running a worker process: logging, event loop, clients, channels and sinks, then Faust."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import httpx
import uvloop
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from engine.config import Config
from engine.runtime.app import build_worker
from engine.runtime.channels import build_routes
from engine.sinks import RedisMirror

__all__ = ["run_worker"]


def _mirror(cfg: Config) -> RedisMirror | None:
    rc = cfg.redis
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
        clock=time.time,
    )


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
        mirror=_mirror(cfg),
    )

    @worker.app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def close_clients(sender: Any, **kwargs: Any) -> None:
        # Connected after the notifier's own hook: its last deliveries are done by now.
        await http.aclose()
        for sink in worker.sinks:
            await sink.close()

    level = getattr(logging, log_level.upper())
    fw = faust.Worker(worker.app, loglevel=level, loop=loop, quiet=True)
    for noisy in ("faust", "mode", "aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    fw.execute_from_commandline()
