"""Sinks: the Redis mirror (hot events and alerts), the input dead-letter topic, and the cold
store (:mod:`engine.sinks.cold_store`, filled by a consumer of its own).

See :mod:`engine.sinks.base` for the lifecycle every sink follows.
"""

from engine.sinks.base import Backpressure, Sink, SinkBatch
from engine.sinks.dead_letters import DeadLetterSink
from engine.sinks.redis_mirror import RedisMirror, redis_client

__all__ = ["Backpressure", "DeadLetterSink", "RedisMirror", "Sink", "SinkBatch", "redis_client"]
