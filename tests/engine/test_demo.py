"""``kestrel demo``, as a new user first runs it: on the embedded broker (Tansu), no set-up.

The worker tests run on Apache Kafka and on Tansu; this keeps the demo's own path (its broker,
worker, webhook receiver and simulated traffic) working on Tansu, in about 20 seconds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.testkit import REPO

pytestmark = pytest.mark.integration  # starts its own broker and worker

SUMMARY = re.compile(r"demo: events=(\d+) alerts_fired=(\d+) alerts_resolved=(\d+) dlq=(\d+)")


def test_the_demo_fires_resolves_and_dead_letters_on_the_embedded_broker() -> None:
    # 600x real time: 10 s of traffic is 100 simulated minutes, spike and error burst included.
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", "demo", "--duration", "20", "--speed", "600"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout + done.stderr
    assert out[0].startswith("demo: embedded broker on 127.0.0.1:"), out
    summary = SUMMARY.fullmatch(out[-1])
    assert summary, out
    events, fired, resolved, dlq = map(int, summary.groups())
    assert events > 10_000
    assert fired >= 4 and resolved >= 2, out  # spike, error burst, runaway agent, stuffing
    assert dlq == 3, out  # the three malformed messages
    assert any("FIRING   [warning] llm_latency_ms{model=gpt-large}" in line for line in out), out
    assert any(line.startswith("demo: dashboard at http://127.0.0.1:") for line in out), out
    # The behaviour incidents: a runaway agent burning money, a credential-stuffing burst.
    assert any(
        "FIRING" in line and "user.cost_usd{" in line and "user_id=u-7" in line for line in out
    ), out
    assert any(
        "FIRING" in line
        and "user.failures{" in line
        and "type=security_event" in line
        and "user_id=u-13" in line
        for line in out
    ), out
