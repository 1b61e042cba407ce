"""Running a worker process: logging, event loop, clients, channels and sinks, then Faust.

**Bounded shutdown.** On SIGTERM (or SIGINT) Faust stops the worker: Kestrel's hooks write the
changed series states and the notifier's state, and Faust flushes its producer and commits. With
the broker gone those flushes wait for it for ever, and the process used to hang until SIGKILL.
So the first signal arms a :class:`ShutdownWatchdog`: if the process has not exited
``worker.shutdown_timeout_seconds`` later, it logs what it was doing and exits with status 1.
What was saved before is saved; what was not is consumed again from the last committed offsets
by the next owner of the partitions (at least once).

**Garbage collection.** Once start-up has built the app, :func:`settle_gc` freezes what exists
(about 135,000 objects: modules, config, Faust's app) so that full collections no longer walk
it, and raises the first generation's threshold: with CPython's default of 700 a fetched batch
set off several collections, and each full one walked the whole heap (0.2 s each, about 10 % of
a busy worker's CPU, measured with ``gc.callbacks``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

import faust
import httpx
import uvloop
from prometheus_client import CollectorRegistry

from engine.config import Config
from engine.runtime.app import build_worker
from engine.runtime.channels import build_routes
from engine.runtime.kafka_clients import check_access
from engine.sinks import RedisMirror, redis_client

__all__ = [
    "GC_THRESHOLDS",
    "TLS_SHUTDOWN_TIMEOUT_SECONDS",
    "ShutdownWatchdog",
    "run_worker",
    "settle_gc",
]

log = logging.getLogger("kestrel.worker")

#: The worker's collector thresholds (CPython's default: 700, 10, 10): generation 0 is collected
#: after this many more tracked objects were allocated than freed.
GC_THRESHOLDS = (10_000, 10, 10)

#: The exit status of a shutdown the watchdog cut short.
FORCED_EXIT_STATUS = 1


def _exit_now(status: int) -> NoReturn:
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # no more waiting: the event loop may be stuck in a flush


class ShutdownWatchdog:
    """Ends the process if a shutdown takes longer than ``timeout_seconds`` once armed.

    It runs in a thread of its own, so a blocked event loop cannot hold it up. ``exit`` is
    called with :data:`FORCED_EXIT_STATUS` (injected in tests; by default it flushes the logs
    and calls :func:`os._exit`).

    >>> exits = []
    >>> watchdog = ShutdownWatchdog(0.01, exit=exits.append)
    >>> watchdog.arm(); watchdog.arm()  # (only the first arming counts)
    >>> watchdog.join(5.0); exits
    [1]
    """

    def __init__(
        self, timeout_seconds: float, *, exit: Callable[[int], object] = _exit_now
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self._exit = exit
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def arm(self) -> None:
        """Start the countdown (once; later calls do nothing)."""
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.timeout_seconds, self._expire)
            self._timer.daemon = True  # a shutdown that finishes in time is not held up
            self._timer.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the countdown's thread (for tests)."""
        if self._timer is not None:
            self._timer.join(timeout)

    def _expire(self) -> None:
        log.error(
            "shutdown did not finish within %.1f s (worker.shutdown_timeout_seconds), probably "
            "waiting for the broker; exiting now: what was not saved is consumed again from the "
            "last committed offsets",
            self.timeout_seconds,
        )
        self._exit(FORCED_EXIT_STATUS)


class _Worker(faust.Worker):
    """Faust's worker, whose shutdown a :class:`ShutdownWatchdog` bounds."""

    def __init__(self, *args: Any, watchdog: ShutdownWatchdog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watchdog = watchdog

    def _schedule_shutdown(self, signum: signal.Signals) -> None:
        # mode's handler of SIGTERM and SIGINT: the shutdown starts now.
        self.watchdog.arm()
        super()._schedule_shutdown(signum)

    def stop_and_shutdown(self) -> None:
        # Also reached when the worker stops without a signal (a crash).
        self.watchdog.arm()
        super().stop_and_shutdown()


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
    """Makes :class:`_Loop` loops: the worker's loop, which its Kafka consumer shares (see
    :mod:`engine.runtime.transport`), and any other a library makes."""

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
        # Faust runs these hooks in no set order: the notifier's last deliveries (and its saved
        # state) come before the HTTP client closes (deactivating twice does nothing).
        await worker.notifier.deactivate()
        await http.aclose()
        for sink in worker.sinks:
            await sink.close()

    level = getattr(logging, log_level.upper())
    watchdog = ShutdownWatchdog(cfg.worker.shutdown_timeout_seconds)
    fw = _Worker(worker.app, loglevel=level, loop=loop, quiet=True, watchdog=watchdog)
    for noisy in ("faust", "mode", "aiokafka", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    settle_gc()
    fw.execute_from_commandline()


def settle_gc() -> None:
    """Collect once, freeze every object that survives (start-up's: they live as long as the
    process), and set :data:`GC_THRESHOLDS`.

    Frozen objects are still freed by reference counting; only cycles among them are no longer
    looked for, and start-up leaves none behind (the collection before the freeze took them).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
