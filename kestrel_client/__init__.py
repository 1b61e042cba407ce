"""kestrel_client: publish an application's logs to Kestrel (Kafka, Kestrel's log schema).

A :class:`KestrelHandler` for the :mod:`logging` module, a structured logger with session and
user context (:func:`get_logger`, :func:`bind`), a timing helper (:func:`timed`) that emits
``performance_data``, and a :class:`Publisher` underneath: batched sends from a background
thread, and a local JSONL spool with rotation while Kafka is unreachable, replayed in order
once it is back. It imports nothing from Kestrel's engine; it needs aiokafka and orjson.

Usage::

    import kestrel_client as kc

    publisher = kc.configure("kafka:9092", service="assistant")
    log = kc.get_logger()
    with kc.bind(session_id=session.id, user_id=user.id):
        log.info("task created", type="task_created", task=task.id)
        with kc.timed("llm_call", model="large"):
            answer = call_llm(prompt)
    publisher.close()
"""

from kestrel_client.logger import (
    KestrelHandler,
    StructuredLogger,
    Timed,
    bind,
    configure,
    current_context,
    get_logger,
    record_from_logging,
    timed,
)
from kestrel_client.publisher import Publisher, PublisherStats
from kestrel_client.records import encode, key_of, level_name, log_record
from kestrel_client.spool import Spool

__all__ = [
    "KestrelHandler",
    "Publisher",
    "PublisherStats",
    "Spool",
    "StructuredLogger",
    "Timed",
    "bind",
    "configure",
    "current_context",
    "encode",
    "get_logger",
    "key_of",
    "level_name",
    "log_record",
    "record_from_logging",
    "timed",
]
