"""Sinks: the Redis mirror (hot events and alerts) and the input dead-letter topic.

See :mod:`engine.sinks.base` for the lifecycle every sink follows.
"""

from engine.sinks.base import Backpressure, Sink, SinkBatch
from engine.sinks.dead_letters import DeadLetterSink
from engine.sinks.redis_mirror import RedisMirror, redis_client

__all__ = ["Backpressure", "DeadLetterSink", "RedisMirror", "Sink", "SinkBatch", "redis_client"]
