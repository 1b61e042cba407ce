"""A real Alertmanager round trip: AlertmanagerChannel -> Alertmanager -> webhook receiver.

Runs Debian's ``prometheus-alertmanager`` binary on free loopback ports with a config whose only
receiver is a local test server. A missing binary fails the test (it does not skip) and says how to
install it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from alert_channels.alertmanager import AlertmanagerChannel, alertmanager_alerts
from alert_channels.webhook import webhook_payload
from engine.model.alert import Alert, AlertStatus
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeService, Received, Reply

pytestmark = pytest.mark.integration  # starts real services itself

BINARIES = ("prometheus-alertmanager", "alertmanager")
STARTUP_SECONDS = 15.0
DELIVERY_SECONDS = 30.0


def _binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "the Alertmanager binary is missing: install it with "
        "`apt-get install -y prometheus-alertmanager` (or `make setup`)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_alertmanager(
    tmp_path: Path, receiver_url: str, client: httpx.AsyncClient
) -> AsyncIterator[str]:
    """Start Alertmanager routing everything to ``receiver_url``; yields its base URL."""
    binary = _binary()
    port = _free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: kestrel-test
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: kestrel-test
    webhook_configs:
      - url: {receiver_url}
        send_resolved: true
"""
    )
    log_path = tmp_path / "alertmanager.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if proc.returncode is not None:
                pytest.fail(f"alertmanager exited with {proc.returncode}:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/-/ready", timeout=1.0)).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"alertmanager not ready in {STARTUP_SECONDS}s:\n{log_path.read_text()}"
                )
            await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def _has(status: str, alertname: str) -> Callable[[list[Received]], bool]:
    def check(received: list[Received]) -> bool:
        for request in received:
            body: dict[str, Any] = request.json()
            for alert in body["alerts"]:
                if alert["status"] == status and alert["labels"].get("alertname") == alertname:
                    return True
        return False

    return check


async def test_alertmanager_round_trip(
    tmp_path: Path,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
) -> None:
    receiver = await fake_service(Reply(200))
    series = f"roundtrip_{int(time.time())}"
    async with running_alertmanager(tmp_path, f"{receiver.url}/hook", client) as base:
        channel = AlertmanagerChannel("am", base, client=client, resend_interval_seconds=60.0)
        started = time.time() - 5.0
        firing = make_alert(series=series, started_at=started)
        await channel.send(Notification.single(firing, "am"))

        received = await receiver.wait_for(_has("firing", series), DELIVERY_SECONDS)
        body = received[-1].json()
        [am_alert] = body["alerts"]
        # What Alertmanager forwards is what we posted ...
        [posted] = alertmanager_alerts(
            Notification.single(firing, "am"), now=time.time(), resend_timeout_seconds=240.0
        )
        assert am_alert["labels"] == posted["labels"]
        assert am_alert["annotations"] == posted["annotations"]
        assert am_alert["startsAt"].startswith(posted["startsAt"][:19])
        # ... and its webhook has exactly the shape our WebhookChannel sends.
        ours = webhook_payload(Notification.single(firing, "kestrel-test"))
        assert set(body) == set(ours)
        assert set(am_alert) == set(ours["alerts"][0])
        assert body["version"] == ours["version"] == "4"
        assert body["status"] == "firing"
        assert body["groupLabels"] == {"alertname": series}
        assert len(am_alert["fingerprint"]) == 16

        resolved = make_alert(
            series=series, started_at=started, status=AlertStatus.RESOLVED, ended_at=time.time()
        )
        await channel.send(Notification.single(resolved, "am"))
        received = await receiver.wait_for(_has("resolved", series), DELIVERY_SECONDS)
        last = received[-1].json()
        assert last["status"] == "resolved"
        assert last["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
