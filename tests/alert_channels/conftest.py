"""Fixtures for channel tests: real local HTTP services, alerts, a fake clock and an HTTP client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import alert_channel_fakes
import httpx
import pytest
from alert_channel_fakes import FakeClock, FakeService, Reply

from alert_channels.alert import Alert, AlertStatus
from alert_channels.base import Notification


@pytest.fixture
async def fake_service() -> AsyncIterator[Callable[..., Awaitable[FakeService]]]:
    """Start fake services: ``await fake_service(Reply(202))``; all stopped after the test."""
    started: list[FakeService] = []

    async def start(default: Reply | None = None) -> FakeService:
        service = await FakeService(default or Reply()).start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that ignores proxy settings of the environment."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    """Build an :class:`Alert` with sensible defaults; keyword arguments override them."""
    return alert_channel_fakes.make_alert


@pytest.fixture
def make_group() -> Callable[..., Notification]:
    """A grouped notification of ``n`` alerts of ``service=api`` (``statuses`` cycles per alert)."""

    def build(
        n: int,
        *,
        receiver: str = "test",
        statuses: tuple[AlertStatus, ...] = (AlertStatus.FIRING,),
        external_url: str | None = None,
        **alert_kwargs: Any,
    ) -> Notification:
        alerts = tuple(
            alert_channel_fakes.make_alert(
                labels={"service": "api", "instance": f"i-{i:04d}"},
                status=statuses[i % len(statuses)],
                **alert_kwargs,
            )
            for i in range(n)
        )
        return Notification(
            receiver=receiver,
            group_key='{}:{service="api"}',
            group_labels={"service": "api"},
            alerts=alerts,
            external_url=external_url,
        )

    return build
