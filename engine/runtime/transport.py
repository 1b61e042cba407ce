"""Faust's aiokafka transport with a configurable fetch wait.

Faust hard-codes ``fetch_max_wait_ms=1500`` for worker consumers, which adds up to 1.5 s of latency
whenever a partition is quiet. Kestrel bounds it (default 50 ms) through the app attribute
``fetch_max_wait_ms`` of :class:`KestrelApp`.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["KestrelApp", "Transport"]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when the consumer starts and builds its fetcher.
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms", 1500))
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport, with :class:`_Consumer`."""

    Consumer = _Consumer


class KestrelApp(faust.App):
    """``faust.App`` with Kestrel's transport (bounded fetch wait)."""

    fetch_max_wait_ms: int = 50

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
