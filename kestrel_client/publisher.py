"""The publisher: a background thread that sends records to Kafka, or spools them when it can't.

Callers never wait for Kafka. :meth:`Publisher.publish` appends the encoded record to an
in-memory queue and returns; a daemon thread runs its own asyncio loop with its own aiokafka
producer (whether the application is synchronous or runs its own loop), takes the queue in
batches (``batch_size`` records, or what came within ``linger_seconds``) and sends them.

While Kafka is unreachable (it cannot connect, or a batch is not acknowledged within
``send_timeout_seconds``) each batch goes to the :class:`~kestrel_client.spool.Spool`, and the
thread tries to reconnect every ``retry_seconds``. Once connected it replays the spool, oldest
first, before anything newer (new records are appended to the spool while it is not empty, so
the order is kept). Delivery is at least once: a batch whose acknowledgement was lost is
spooled and sent again. A queue that reaches ``max_queue`` records (a thread that cannot keep
up) spools in the caller's thread rather than grow or block (those records may then be replayed
before older ones still in memory: the one case where the order is not kept). Records are lost
only when the spool exceeds its bound (counted in ``dropped``) or the process is killed with
records still in memory (:meth:`Publisher.close` spools what it could not send).

Why aiokafka in a thread: it is already Kestrel's client (no new dependency, the same SASL and
TLS options as the worker's ``[kafka]``), and a loop of its own means a synchronous
application needs no loop and an asyncio one never has its loop slowed by the producer.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import dataclasses
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kestrel_client.records import encode, key_of
from kestrel_client.spool import Spool

__all__ = ["Publisher", "PublisherStats", "pack"]

log = logging.getLogger("kestrel_client")


def pack(
    batch: list[tuple[bytes | None, bytes]], records: int, max_bytes: int
) -> list[tuple[bytes | None, bytes]]:
    """Kafka messages for a batch of encoded records: those of one key, in order, joined into
    JSON arrays of at most ``records`` records and about ``max_bytes`` (a record larger than
    that travels alone, as it is). Keys are on partitions of their own, so only the order within
    a key matters.

    >>> pack([(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"a", b"4")], 2, 1000)
    [(b'a', b'[1,3]'), (b'a', b'4'), (b'b', b'2')]
    """
    if records <= 1:
        return list(batch)
    by_key: dict[bytes | None, list[bytes]] = {}
    for key, value in batch:
        by_key.setdefault(key, []).append(value)
    out: list[tuple[bytes | None, bytes]] = []
    for key, values in by_key.items():
        chunk: list[bytes] = []
        size = 0
        for value in values:
            if chunk and (len(chunk) >= records or size + len(value) + 1 > max_bytes):
                out.append((key, _array(chunk)))
                chunk, size = [], 0
            chunk.append(value)
            size += len(value) + 1
        out.append((key, _array(chunk)))
    return out


def _array(values: list[bytes]) -> bytes:
    return values[0] if len(values) == 1 else b"[" + b",".join(values) + b"]"


@dataclasses.dataclass(frozen=True, slots=True)
class PublisherStats:
    """Counts since the publisher started (records, not messages).

    Attributes
    ----------
    published
        Records handed to :meth:`Publisher.publish`.
    sent
        Records Kafka acknowledged (the replayed ones included).
    spooled
        Records written to the fallback files.
    replayed
        Spooled records Kafka has since acknowledged.
    dropped
        Spooled records deleted unsent because the spool was full.
    send_errors
        Batches that failed (then spooled) and connection attempts that failed.
    queued, spool_pending
        Records waiting now: in memory, and in the spool files.
    connected
        Whether the producer is connected now.
    """

    published: int
    sent: int
    spooled: int
    replayed: int
    dropped: int
    send_errors: int
    queued: int
    spool_pending: int
    connected: bool


class Publisher:
    """Publishes records to one Kafka topic from a background thread, spooling while it can't.

    Parameters
    ----------
    bootstrap
        ``host:port[,host:port...]`` of the brokers.
    topic
        The topic Kestrel reads log events from (``[topics] logs``; ``logs`` by default).
    spool_dir
        Directory of the fallback files (default: ``$TMPDIR/kestrel-client-<topic>``). One
        publisher at a time owns it (another raises ``RuntimeError``): give each process of a
        host its own, stable across restarts, so records an earlier run left are replayed.
    linger_seconds, batch_size
        A batch is sent when it has ``batch_size`` records or ``linger_seconds`` after its first.
    max_queue
        Records held in memory at most; beyond, :meth:`publish` spools in the caller's thread.
    spool_file_bytes, spool_files
        The spool's bound: files of about ``spool_file_bytes``, at most ``spool_files`` of them.
    records_per_message, message_bytes
        Records of one key sent together as one message holding a JSON array (Kestrel reads
        arrays; one Kafka message per record costs several times more), of at most this many
        records and about this many bytes (below the worker's ``max_message_bytes``, 1 MiB by
        default). ``records_per_message=1``: one message per record.
    retry_seconds
        Seconds between connection attempts while Kafka is unreachable.
    send_timeout_seconds
        A batch not acknowledged within this long is spooled and the producer reconnects.
    producer_options
        More ``AIOKafkaProducer`` options (e.g. ``security_protocol``, ``sasl_mechanism``).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str = "logs",
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        linger_seconds: float = 0.05,
        batch_size: int = 500,
        max_queue: int = 10_000,
        spool_file_bytes: int = 16 * 1024 * 1024,
        spool_files: int = 8,
        records_per_message: int = 100,
        message_bytes: int = 256 * 1024,
        retry_seconds: float = 5.0,
        send_timeout_seconds: float = 10.0,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        if spool_dir is None:
            spool_dir = Path(tempfile.gettempdir()) / f"kestrel-client-{topic}"
        self.spool = Spool(spool_dir, spool_file_bytes, spool_files)
        self.linger_seconds = linger_seconds
        self.batch_size = batch_size
        self.max_queue = max_queue
        self.retry_seconds = retry_seconds
        self.records_per_message = max(1, records_per_message)
        self.message_bytes = message_bytes
        self.send_timeout_seconds = send_timeout_seconds
        self.producer_options = dict(producer_options or {})
        self._queue: collections.deque[tuple[bytes | None, bytes]] = collections.deque()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("published", "sent", "spooled", "replayed", "dropped", "send_errors"), 0
        )
        self._in_flight = 0
        self._connected = False
        self._closing = threading.Event()
        self._closed = False
        self._wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._thread = threading.Thread(target=self._run, name="kestrel-publisher", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)  # records still in memory reach Kafka or the spool

    # -- the caller's side --------------------------------------------------------------------

    def publish(self, record: Mapping[str, Any]) -> None:
        """Queue one record (a log event in Kestrel's schema, see :func:`log_record`)."""
        value = encode(record)
        service = record.get("service")
        key = service.encode() if isinstance(service, str) and service else None
        self.publish_encoded(value, key)

    def publish_encoded(self, value: bytes, key: bytes | None) -> None:
        """Queue one already-encoded record (one line of JSON) with its Kafka key. Never blocks
        on Kafka."""
        with self._lock:
            self._counts["published"] += 1
            if len(self._queue) < self.max_queue and not self._closing.is_set():
                self._queue.append((key, value))
                return
        self._spool([value])  # the thread cannot keep up (or is closing): straight to disk

    @property
    def stats(self) -> PublisherStats:
        """The counts now."""
        with self._lock:
            counts = dict(self._counts)
            queued = len(self._queue) + self._in_flight
        return PublisherStats(
            **counts, queued=queued, spool_pending=self.spool.pending(), connected=self._connected
        )

    def flush(self, timeout: float = 10.0, *, while_down: bool = True) -> bool:
        """Wait until every record published so far is on the broker; at most ``timeout``
        seconds. Whether all of them are.

        With ``while_down=False`` it returns as soon as nothing is left in memory while Kafka
        is unreachable (the records are then in the spool): for shutdown, which should not wait
        for a broker that is down.
        """
        deadline = time.monotonic() + timeout
        self._nudge()
        while True:
            with self._lock:
                busy = bool(self._queue) or self._in_flight > 0
            pending = self.spool.pending()
            if not busy and (pending == 0 or not (while_down or self._connected)):
                return pending == 0
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(0.02)

    def close(self, timeout: float = 10.0) -> bool:
        """Flush (at most ``timeout`` seconds; not waiting for a broker that is down), then stop
        the thread; what is still unsent stays in the spool for the next process (the next
        publisher on the same ``spool_dir`` replays it). Whether everything reached the broker.

        Called at interpreter exit if not before (at most 5 s then); a second call does nothing.
        """
        with self._lock:
            if self._closed:
                return self.spool.pending() == 0 and not self._queue
            self._closed = True
        atexit.unregister(self._close_at_exit)
        delivered = self.flush(timeout, while_down=False)
        self._closing.set()
        self._nudge()
        self._thread.join(timeout + self.send_timeout_seconds + 5)
        with self._lock:
            rest = [value for _, value in self._queue]
            self._queue.clear()
        if rest:
            self._spool(rest)
        self.spool.close()
        return delivered and not rest and self.spool.pending() == 0

    def _nudge(self) -> None:
        """Wake the thread now (it would otherwise wait out ``linger_seconds``)."""
        if self._wake is not None:
            loop, wake = self._wake
            with contextlib.suppress(RuntimeError):  # (its loop has closed)
                loop.call_soon_threadsafe(wake.set)

    def _close_at_exit(self) -> None:
        self.close(5.0)

    def _spool(self, values: list[bytes]) -> None:
        try:
            dropped = self.spool.append(values)
        except OSError as exc:  # a full or read-only disk: counted, never raised to the caller
            dropped = len(values)
            log.error("kestrel_client: cannot write the spool (%s); records dropped", exc)
        with self._lock:
            self._counts["spooled"] += len(values)
            self._counts["dropped"] += dropped
        if dropped:
            log.warning("kestrel_client: spool full, %d oldest record(s) dropped", dropped)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # (a bug): the queue then fills and callers spool themselves
            log.exception("kestrel_client: the publisher thread failed")

    def _take(self) -> list[tuple[bytes | None, bytes]]:
        with self._lock:
            n = min(len(self._queue), self.batch_size)
            batch = [self._queue.popleft() for _ in range(n)]
            self._in_flight = n
            return batch

    async def _main(self) -> None:
        wake = asyncio.Event()  # set by flush and close: no waiting out the linger
        self._wake = (asyncio.get_running_loop(), wake)
        producer: Any = None
        next_attempt = 0.0
        try:
            while True:
                closing = self._closing.is_set()
                if producer is None and not closing and time.monotonic() >= next_attempt:
                    producer = await self._connect()
                    next_attempt = time.monotonic() + self.retry_seconds
                if (
                    producer is not None
                    and self.spool.pending()
                    and not await self._replay(producer)
                ):
                    await self._disconnect(producer)
                    producer = None
                batch = self._take()
                if batch:
                    if producer is None or self.spool.pending():
                        self._spool([value for _, value in batch])
                    elif not await self._send(producer, batch):
                        self._spool([value for _, value in batch])
                        await self._disconnect(producer)
                        producer = None
                        next_attempt = time.monotonic() + self.retry_seconds
                    with self._lock:
                        self._in_flight = 0
                if closing:
                    return
                if not self._queue:  # (else the time sending took was the linger)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self.linger_seconds)
                    wake.clear()
        finally:
            if producer is not None:
                await self._disconnect(producer)

    async def _connect(self) -> Any:
        from aiokafka import AIOKafkaProducer

        options = {
            "acks": "all",
            "linger_ms": 0,  # (the publisher batches itself, then waits for the whole batch)
            "request_timeout_ms": int(self.send_timeout_seconds * 1000),
            **self.producer_options,
        }
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, **options)
        try:
            await asyncio.wait_for(producer.start(), self.send_timeout_seconds)
        except Exception as exc:  # (aiokafka's errors, timeouts, OSError: all mean "not now")
            self._count("send_errors")
            log.debug("kestrel_client: cannot connect to %s: %s", self.bootstrap, exc)
            await self._disconnect(producer)
            return None
        self._connected = True
        return producer

    async def _disconnect(self, producer: Any) -> None:
        self._connected = False
        try:
            await asyncio.wait_for(producer.stop(), 5)
        except Exception as exc:  # a producer that cannot reach the broker may not stop cleanly
            log.debug("kestrel_client: producer stop: %s", exc)

    async def _send(self, producer: Any, batch: list[tuple[bytes | None, bytes]]) -> bool:
        async def send_all() -> None:
            futures = [
                await producer.send(self.topic, value, key=key)
                for key, value in pack(batch, self.records_per_message, self.message_bytes)
            ]
            await asyncio.gather(*futures)

        try:
            await asyncio.wait_for(send_all(), self.send_timeout_seconds)
        except Exception as exc:
            self._count("send_errors")
            log.warning(
                "kestrel_client: sending to %s failed (%s: %s); spooling",
                self.topic,
                type(exc).__name__,
                exc,
            )
            return False
        self._count("sent", len(batch))
        return True

    async def _replay(self, producer: Any) -> bool:
        """Send the spool, oldest first, until it is empty or Kafka fails again."""
        while True:
            lines = self.spool.read(self.batch_size)
            if not lines:
                return True
            if not await self._send(producer, [(key_of(line), line) for line in lines]):
                return False
            self.spool.commit(len(lines))
            self._count("replayed", len(lines))

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n
