"""Fakes shared by the channel tests: local HTTP services, a fake clock, alert builders.

The fake services are real aiohttp servers on 127.0.0.1 (free ports) that record every request and
answer from a script, so channels are tested through their real HTTP stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from engine.model.alert import Alert, AlertStatus, Severity, fingerprint


@dataclass(frozen=True)
class Reply:
    """How a fake service answers one request.

    ``echo`` appends the request's path, query and body to the reply body (to prove that quoted
    response bodies are redacted). ``delay`` holds the answer back (to provoke client timeouts).
    """

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo: bool = False


@dataclass(frozen=True)
class Received:
    """One request a fake service got."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeService:
    """A real HTTP server on 127.0.0.1 that answers from a script and records requests."""

    def __init__(self, default: Reply) -> None:
        self.default = default
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self._release = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, then with the default."""
        self.replies.extend(replies)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        got = Received(
            request.method, request.path, request.query_string, dict(request.headers), body
        )
        async with self._arrived:
            self.received.append(got)
            self._arrived.notify_all()
        reply = self.replies.pop(0) if self.replies else self.default
        if reply.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), reply.delay)
        text = reply.body
        if reply.echo:
            text += f" {request.path_qs} {body.decode(errors='replace')}"
        return web.Response(status=reply.status, text=text, headers=reply.headers)

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], within_seconds: float
    ) -> list[Received]:
        """Wait until ``predicate(received)`` holds; fail the test after ``within_seconds``."""
        async with self._arrived:
            try:
                await asyncio.wait_for(
                    self._arrived.wait_for(lambda: predicate(self.received)), within_seconds
                )
            except TimeoutError:
                pytest.fail(f"not met within {within_seconds}s; received: {self.received}")
        return self.received

    async def start(self) -> FakeService:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: it would log request paths, which hold the secrets under test.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


class FakeClock:
    """Wall-clock seconds that only move when something sleeps; records the sleeps."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make_alert(
    *,
    status: AlertStatus = AlertStatus.FIRING,
    severity: Severity = Severity.WARNING,
    series: str = "latency_ms",
    labels: dict[str, str] | None = None,
    detector: str = "zscore",
    value: float = 950.0,
    expected: float = 120.0,
    score: float = 8.5,
    started_at: float = 1_700_000_000.0,
    ended_at: float | None = None,
    summary: str | None = None,
    repeat: int = 0,
    annotations: dict[str, str] | None = None,
) -> Alert:
    labels = {"service": "api"} if labels is None else labels
    if status is AlertStatus.RESOLVED and ended_at is None:
        ended_at = started_at + 600.0
    return Alert(
        fingerprint=fingerprint(series, labels, detector),
        status=status,
        severity=severity,
        series=series,
        labels=labels,
        detector=detector,
        value=value,
        expected=expected,
        score=score,
        started_at=started_at,
        ended_at=ended_at,
        summary=summary if summary is not None else f"{series} is {value} (expected {expected})",
        repeat=repeat,
        annotations=annotations or {},
    )
