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

from engine.config import Config
from engine.runtime.app import build_worker
from engine.runtime.channels import build_routes
from engine.runtime.kafka_clients import check_access
from engine.sinks import RedisMirror, redis_client

__all__ = ["TLS_SHUTDOWN_TIMEOUT_SECONDS", "run_worker"]

#: Longest the closing handshake of a TLS connection may take before the socket is closed anyway.
TLS_SHUTDOWN_TIMEOUT_SECONDS = 2.0


class _Loop(uvloop.Loop):
    """uvloop, with a short TLS shutdown (:data:`TLS_SHUTDOWN_TIMEOUT_SECONDS`).

    Closing a TLS connection waits for the peer's ``close_notify``. Under uvloop (0.23), an
    aiokafka client stopped over ``SASL_SSL`` on Apache Kafka 4.2 sometimes waited uvloop's
    whole default of 30 s for it (the standard asyncio loop never did, in the same test): a
    worker reading its saved notifier state on each assignment stalled 30 s. Bounding the wait
    makes such a close cost at most this long; nothing is lost, the connection is done.
    """

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("ssl") and kwargs.get("ssl_shutdown_timeout") is None:
            kwargs["ssl_shutdown_timeout"] = TLS_SHUTDOWN_TIMEOUT_SECONDS
        return await super().create_connection(*args, **kwargs)


class _LoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Makes :class:`_Loop` loops, for the worker's loop and for the thread Faust runs its
    consumer in."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return _Loop()


def _mirror(cfg: Config) -> RedisMirror | None:
    rc = cfg.redis
    if not rc.enabled:
        return None
    return RedisMirror(
        redis_client(rc),
        prefix=rc.key_prefix,
        hot_types=rc.hot_types,
        retention_seconds=rc.retention_seconds,
        retry_after_seconds=rc.retry_after_seconds,
        clock=time.time,
        target=rc.shown_url,
    )


def run_worker(cfg: Config, *, log_level: str = "info") -> None:
    """Run a detection worker in the foreground until it is stopped (SIGTERM/SIGINT).

    Faust's worker exits the process when it stops.

    Raises
    ------
    engine.runtime.kafka_clients.KafkaAccessError
        Before anything starts, when the brokers refuse the credentials or TLS fails.
    """
    asyncio.set_event_loop_policy(_LoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(check_access(cfg.kafka))
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
