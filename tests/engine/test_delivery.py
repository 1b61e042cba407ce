"""The notifier's saved state is read again while no broker answers (engine/runtime/delivery.py).

A broker that went away while the alerts partition was being assigned made ``read_last`` raise,
and the exception crashed the worker (seen once in ``test_faults_worker``'s SIGTERM test).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaTimeoutError

from engine.runtime.delivery import read_saved_state
from engine.runtime.kafka_clients import KafkaAccessError


def _reader(
    failures: list[Exception], state: bytes | None
) -> tuple[list[int], Callable[[], Awaitable[bytes | None]]]:
    calls: list[int] = []

    async def read() -> bytes | None:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return state

    return calls, read


def test_the_saved_state_is_read_again_until_a_broker_answers() -> None:
    failures: list[Exception] = [KafkaAccessError("no broker"), KafkaTimeoutError()]
    calls, read = _reader(failures, b'{"saved": 1}')
    found = asyncio.run(read_saved_state(read, lambda: True, first_delay=0.01))
    assert found == (True, b'{"saved": 1}')
    assert len(calls) == 3


def test_a_stopping_worker_stops_trying_and_activates_nothing() -> None:
    calls, read = _reader([KafkaAccessError("no broker")] * 5, b"never")
    tries = iter([True, False])
    found = asyncio.run(read_saved_state(read, lambda: next(tries), first_delay=0.01))
    assert found == (False, None)
    assert len(calls) == 2


def test_no_saved_state_is_a_state_found() -> None:
    calls, read = _reader([], None)
    assert asyncio.run(read_saved_state(read, lambda: False)) == (True, None)
    assert len(calls) == 1
