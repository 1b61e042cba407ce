"""The live views on one live worker (Apache Kafka, Redis): the read-only API, the CLI commands
that read it (``kestrel alerts``, ``explain``, ``tail``), ``kestrel top`` (Textual's pilot) and
the dashboard in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``).

The worker is fed a scenario in which ``cpu{host=a}`` jumps and stays high (an alert firing
now) and ``mem{host=a}`` spikes and recovers (fired, then resolved), plus hot log events and a
few malformed messages. With ``KESTREL_SAVE_SCREENSHOTS=1`` the dashboard and ``kestrel top``
screenshots are also written to ``docs/`` (for the README).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from engine.cli import main
from engine.cli.api_client import ApiClient, fmt_time
from engine.devtools.broker import Broker
from tests.testkit import REPO, WorkerProcess, producer, run, write_config

TOKEN = "views-test-token"
T0 = 1_779_999_960.0
STEP = 10.0
CPU, MEM = "cpu{host=a}", "mem{host=a}"
SAVE_TO_DOCS = os.environ.get("KESTREL_SAVE_SCREENSHOTS") == "1"


def _metric(name: str, value: float, i: int) -> bytes:
    return orjson.dumps(
        {"name": name, "value": value, "timestamp": T0 + i * STEP, "labels": {"host": "a"}}
    )


def _hot(i: int, level: str, session: str) -> bytes:
    return orjson.dumps(
        {
            "timestamp": T0 + i,
            "level": level,
            "service": "svc-hot",
            "type": "thought",
            "message": f"thinking step {i}",
            "session_id": session,
        }
    )


async def _publish(bootstrap: str, unique: str) -> None:
    rng = random.Random(5)
    metrics = f"metrics-{unique}"
    async with producer(bootstrap) as p:
        for i in range(140):
            cpu = 500.0 if i >= 130 else rng.gauss(50, 1)  # jumps and stays high: firing now
            mem = 400.0 if 100 <= i < 105 else rng.gauss(200, 2)  # a spike, then normal again
            await p.send(metrics, _metric("cpu", cpu, i), key=b"cpu")
            await p.send(metrics, _metric("mem", mem, i), key=b"mem")
        await p.send(metrics, b"{not json", key=b"bad")
        await p.send(metrics, b'{"value": 1, "timestamp": 1}', key=b"bad")
        await _publish_hot(p, unique, 0)


async def _publish_hot(p: Any, unique: str, first: int) -> None:
    for k in range(first, first + 6):
        level = "WARNING" if k % 3 == 0 else "INFO"
        await p.send(f"logs-{unique}", _hot(k, level, f"s-{k % 2}"), key=b"svc-hot")


@pytest.fixture(scope="module")
def live(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    unique = f"v{random.randrange(1 << 30):x}"
    tmp = tmp_path_factory.mktemp("views")
    cfg = tmp / "kestrel.toml"
    extra = f"""
[api]
token = "{TOKEN}"

[series]
metric_detectors = ["zscore"]
"""
    port = write_config(cfg, broker, unique, redis_url, extra)
    worker = WorkerProcess(cfg, port, tmp / "worker.log").start()
    worker.wait_ready()
    started = time.monotonic()
    run(_publish(broker.bootstrap, unique))
    url = f"http://127.0.0.1:{port}"
    info = {"unique": unique, "worker": worker, "url": url, "broker": broker, "cfg": cfg}
    # Wait for the scenario's alerts: cpu firing now, mem fired and resolved.
    deadline = time.monotonic() + 90
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = httpx.get(f"{url}/api/v1/alerts", headers=_auth(), timeout=5).json()
        firing = {a["series_id"] for a in doc["firing"]}
        resolved = {a["series_id"] for a in doc["recent"] if a["status"] == "resolved"}
        if CPU in firing and MEM in resolved:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the scenario's alerts did not come: {doc}; log:\n{worker.log()}")
    print(f"alerts of the scenario seen after {time.monotonic() - started:.1f}s")
    yield info
    worker.stop()
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(f"kestrel-test-{unique}:*"))
    if keys:
        r.delete(*keys)


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _get(live: dict[str, Any], path: str, **params: Any) -> Any:
    r = httpx.get(f"{live['url']}{path}", headers=_auth(), params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


# -- the API ---------------------------------------------------------------------------------


def test_the_api_needs_the_token_and_the_page_holds_no_data(live: dict[str, Any]) -> None:
    for path in ("/api/v1/alerts", "/api/v1/series", f"/api/v1/series/{CPU}", "/api/v1/stats"):
        assert httpx.get(live["url"] + path, timeout=5).status_code == 401, path
        wrong = httpx.get(live["url"] + path, headers=_auth("nope"), timeout=5)
        assert wrong.status_code == 401, path
        assert wrong.json() == {"error": "missing or wrong bearer token"}
    assert httpx.get(live["url"] + "/api/v1/tail", timeout=5).status_code == 401
    page = httpx.get(live["url"] + "/dashboard", timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/api/v1/alerts" in page.text
    assert CPU not in page.text  # the page is a shell: data comes from the API, with the token


def test_alerts_firing_now_and_recent_transitions(live: dict[str, Any]) -> None:
    doc = _get(live, "/api/v1/alerts", limit=20)
    print(orjson.dumps(doc["firing"], option=orjson.OPT_INDENT_2).decode())
    (cpu,) = [a for a in doc["firing"] if a["series_id"] == CPU]
    assert cpu["status"] == "firing"
    assert cpu["labels"] == {"host": "a"}
    assert cpu["severity"] == "warning"
    assert cpu["detector"] == "zscore"
    assert cpu["value"] == 500.0
    assert 45.0 < cpu["expected"] < 55.0
    assert cpu["started_at"] == T0 + 132 * STEP  # the third point of the jump (fire_after=3)
    assert "500 vs expected" in cpu["reason"]
    assert MEM not in {a["series_id"] for a in doc["firing"]}
    statuses = [(a["series_id"], a["status"]) for a in doc["recent"]]
    assert (MEM, "resolved") in statuses and (MEM, "firing") in statuses
    assert doc["transitions"] >= 3
    assert (
        httpx.get(
            live["url"] + "/api/v1/alerts", headers=_auth(), params={"limit": "x"}, timeout=5
        ).status_code
        == 400
    )


def test_series_list_and_explain(live: dict[str, Any]) -> None:
    doc = _get(live, "/api/v1/series")
    ids = [s["series"] for s in doc["series"]]
    print(ids)
    assert ids[0] == CPU  # firing first
    assert MEM in ids and "log.events{service=svc-hot}" in ids
    assert [s["series"] for s in _get(live, "/api/v1/series", match="mem")["series"]] == [MEM]
    assert len(_get(live, "/api/v1/series", limit=1)["series"]) == 1

    cpu = _get(live, f"/api/v1/series/{CPU}")
    print(orjson.dumps(cpu, option=orjson.OPT_INDENT_2).decode())
    (det,) = cpu["detectors"]
    assert det["kind"] == "zscore"
    assert det["params"]["threshold"] == 4.0 and det["params"]["fire_after"] == 3
    assert det["state"]["warm"] is True
    low, high = det["state"]["band"]
    assert low < 50.0 < high < 500.0
    assert det["firing"] is True
    assert det["last_alert"]["started_at"] == T0 + 132 * STEP
    assert "above its threshold 4" in det["last_alert"]["reason"]
    assert "for 3 points in a row" in det["last_alert"]["reason"]

    missing = httpx.get(f"{live['url']}/api/v1/series/nosuch", headers=_auth(), timeout=5)
    assert missing.status_code == 404


def test_asking_about_a_series_records_its_next_points(live: dict[str, Any]) -> None:
    assert _get(live, f"/api/v1/series/{MEM}")["detectors"][0]["recent"] == []  # tapped now

    async def more() -> None:
        async with producer(live["broker"].bootstrap) as p:
            for i in range(140, 150):
                await p.send(f"metrics-{live['unique']}", _metric("mem", 200.0, i), key=b"mem")

    run(more())
    deadline, recent = time.monotonic() + 45, []
    while time.monotonic() < deadline and len(recent) < 10:
        recent = _get(live, f"/api/v1/series/{MEM}")["detectors"][0]["recent"]
        time.sleep(0.3)
    print(recent[-2:])
    assert [p["ts"] for p in recent] == [T0 + i * STEP for i in range(140, 150)]
    assert all(p["value"] == 200.0 and p["low"] < 200.0 < p["high"] for p in recent)


def test_stats_read_the_workers_counters(live: dict[str, Any]) -> None:
    first = _get(live, "/api/v1/stats")
    time.sleep(1.0)
    doc = _get(live, "/api/v1/stats")
    print(doc)
    assert doc["events_total"] >= 2 * 140 + 6
    assert doc["invalid_total"] >= 2
    assert doc["alerts"]["firing"] >= 2 and doc["alerts"]["resolved"] >= 1
    assert set(doc["deliveries"]) >= {"ok", "retried", "dead_lettered"} or doc["deliveries"] == {}
    assert doc["series"]["metric"] >= 2
    assert doc["redis_up"] is True
    assert doc["lag_seconds"] >= 0.0
    assert doc["events_per_second"] is not None and doc["events_per_second"] >= 0.0
    assert first["events_total"] <= doc["events_total"]


def test_tail_streams_hot_events_filtered(live: dict[str, Any]) -> None:
    def tail(**params: Any) -> list[dict[str, Any]]:
        got = []
        with httpx.stream(
            "GET",
            f"{live['url']}/api/v1/tail",
            headers=_auth(),
            params={"since_seconds": 3600, **params},
            timeout=httpx.Timeout(30.0),
        ) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(orjson.loads(line[6:]))
        return got

    events = tail(service="svc-hot", limit=6)
    print(events[:2])
    assert len(events) == 6
    assert all(e["service"] == "svc-hot" and e["type"] == "thought" for e in events)
    assert events[0]["event"]["message"] == "thinking step 0"
    warnings = tail(level="warning", limit=2)
    assert [e["event"]["message"] for e in warnings] == ["thinking step 0", "thinking step 3"]
    assert {e["level"] for e in warnings} == {"WARNING"}
    sessions = tail(session="s-1", type="thought", limit=3)
    assert [e["event"]["session_id"] for e in sessions] == ["s-1"] * 3


def test_tail_waits_for_new_events(live: dict[str, Any]) -> None:
    """From now on, through idle seconds (longer than Redis's call timeout) to the next event."""
    got: list[dict[str, Any]] = []

    def listen() -> None:
        with httpx.stream(
            "GET",
            f"{live['url']}/api/v1/tail",
            headers=_auth(),
            params={"service": "svc-hot", "limit": 1},
            timeout=httpx.Timeout(60.0),
        ) as r:
            for line in r.iter_lines():
                if line.startswith(("data: ", "event: ")):
                    got.append({"line": line})

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(3.0)  # idle: no new hot event for 3 s
    assert got == []
    run(_send_hot(live, first=20))
    listener.join(60)
    print(got)
    assert not listener.is_alive()
    assert got[0] == {"line": "event: log"}
    assert orjson.loads(got[1]["line"][6:])["event"]["message"] == "thinking step 20"


# -- the CLI ---------------------------------------------------------------------------------


def _cli(live: dict[str, Any], *argv: str) -> list[str]:
    return [*argv, "--url", live["url"], "--token", TOKEN]


def test_kestrel_alerts(live: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_cli(live, "alerts")) == 0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(out)
    assert "FIRING (1)" in out
    assert f"WARNING  {CPU}  zscore  value 500" in out
    assert "RECENT TRANSITIONS" in out and f"resolved           {MEM}" in out
    assert main(_cli(live, "alerts", "--json")) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert [a["series_id"] for a in doc["firing"]] == [CPU]
    # The token from the config file, the address too.
    assert main(["alerts", "--config", str(live["cfg"])]) == 0
    assert "FIRING (1)" in capsys.readouterr().out
    assert main(["alerts", "--url", live["url"], "--token", "wrong"]) == 1
    assert "HTTP 401: missing or wrong bearer token" in capsys.readouterr().err


def test_kestrel_explain(live: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_cli(live, "explain", CPU)) == 0
    out = capsys.readouterr().out
    with capsys.disabled():
        print(out)
    assert out.startswith(f"{CPU}  (metric series")
    assert "detector zscore  FIRING" in out
    assert "warm-up: 30 of 30 points, done" in out
    assert "alerts when the score exceeds 4.0" in out
    assert f"last fired at {fmt_time(T0 + 132 * STEP)}: zscore scored" in out
    assert main(_cli(live, "explain", CPU, "--json")) == 0
    assert orjson.loads(capsys.readouterr().out)["series"] == CPU
    assert main(_cli(live, "explain", "cpu{host=zz}")) == 1
    err = capsys.readouterr().err
    assert "HTTP 404" in err and f"look alike: {CPU}" in err


def test_kestrel_tail(live: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    argv = _cli(live, "tail", "--service", "svc-hot", "--session", "s-0", "--since", "3600")
    assert main([*argv, "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    with capsys.disabled():
        print(lines)
    assert len(lines) == 2
    assert "svc-hot  thought  s-0  thinking step 0" in lines[0]
    assert main([*argv, "-n", "1", "--json", "--level", "WARNING"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert orjson.loads(line)["event"]["message"] == "thinking step 0"


# -- kestrel top (Textual's pilot) -----------------------------------------------------------


async def test_kestrel_top_shows_the_firing_alert_and_counters(
    live: dict[str, Any], tmp_path: Path
) -> None:
    from textual.widgets import DataTable, Static

    from engine.cli.top_app import TopApp

    client = ApiClient(live["url"], TOKEN)
    app = TopApp(client, interval_seconds=0.5)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            deadline = time.monotonic() + 30
            while app.refreshes < 2 and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert app.error is None and app.refreshes >= 2
            firing = app.query_one("#firing", DataTable)
            rows = [firing.get_row_at(i) for i in range(firing.row_count)]
            print(rows)
            assert [r[1] for r in rows] == [CPU]
            assert rows[0][0] == "WARNING" and rows[0][3] == "500"
            recent = app.query_one("#recent", DataTable)
            statuses = {
                (recent.get_row_at(i)[2], recent.get_row_at(i)[1]) for i in range(recent.row_count)
            }
            assert (MEM, "resolved") in statuses
            stats = str(app.query_one("#stats", Static).render())
            print(stats)
            assert "input dead letters 2" in stats and "redis up" in stats
            shot = app.save_screenshot("kestrel-top.svg", str(tmp_path))
            assert os.path.getsize(shot) > 1000  # noqa: ASYNC240  (a test, a small file)
            if SAVE_TO_DOCS:
                shutil.copy(shot, REPO / "docs" / "kestrel-top.svg")
    finally:
        client.close()


async def test_kestrel_top_says_when_the_worker_is_unreachable(closed_port: int) -> None:
    from textual.widgets import Static

    from engine.cli.top_app import TopApp

    client = ApiClient(f"http://127.0.0.1:{closed_port}", TOKEN, timeout_seconds=2)
    app = TopApp(client, interval_seconds=0.5)
    try:
        async with app.run_test() as pilot:
            deadline = time.monotonic() + 20
            while app.error is None and time.monotonic() < deadline:
                await pilot.pause(0.2)
            assert app.error is not None and "ConnectError" in app.error
            assert "ConnectError" in str(app.query_one("#status", Static).render())
            assert app.refreshes == 0
    finally:
        client.close()


# -- the dashboard in headless Chromium --------------------------------------------------------


def _chromium() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail(
            "the dashboard test needs Debian's chromium and chromium-driver: "
            "apt-get install chromium chromium-driver (or `make setup`)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1250"):
        options.add_argument(arg)
    options.add_argument("--disable-dev-shm-usage")
    return webdriver.Chrome(service=Service(driver), options=options)


def test_dashboard_in_chromium_shows_the_firing_alert(live: dict[str, Any], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _chromium()
    try:
        browser.get(f"{live['url']}/dashboard#token={TOKEN}")
        wait = WebDriverWait(browser, 60, poll_frequency=0.3)
        firing = wait.until(
            lambda b: (
                b.find_element(By.ID, "firing")
                if CPU in b.find_element(By.ID, "firing").text
                else None
            )
        )
        text = firing.text
        print(text)
        assert "WARNING" in text and "zscore" in text and "500" in text
        assert "#token" not in browser.current_url  # the token left the address bar
        # Hot events arrive in the live tail (fresh ones, sent now the page listens).
        run(_send_hot(live))
        _until(browser, lambda b: "thinking step 10" in b.find_element(By.ID, "tail").text)
        recent = browser.find_element(By.ID, "recent").text
        assert "resolved" in recent and MEM in recent
        stats = browser.find_element(By.ID, "stats").text
        print(stats)
        assert "input dead letters" in stats and "events consumed" in stats
        # The firing series is picked: its chart and the reason it fired.
        wait.until(lambda b: "above its threshold 4" in b.find_element(By.ID, "why").text)
        # Points are recorded from the first ask on; a few more draw the chart with markers.
        run(_send_cpu(live))
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#chart svg circle.marker")) >= 8)
        assert CPU in browser.find_element(By.ID, "firing").text  # still firing
        time.sleep(0.5)
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        print(f"screenshot: {shot} ({shot.stat().st_size} bytes)")
        assert shot.stat().st_size > 10_000
        if SAVE_TO_DOCS:
            shutil.copy(shot, REPO / "docs" / "dashboard.png")
    finally:
        browser.quit()


def _until(browser: Any, check: Any, timeout: float = 60.0) -> Any:
    """Wait for ``check(browser)``; on timeout, fail showing what the page shows."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.3).until(check)
    except TimeoutException:
        body = browser.execute_script("return document.body.innerText")
        pytest.fail(f"the page did not show what was expected in {timeout}s; it shows:\n{body}")


async def _send_hot(live: dict[str, Any], first: int = 9) -> None:
    async with producer(live["broker"].bootstrap) as p:
        await _publish_hot(p, live["unique"], first)


async def _send_cpu(live: dict[str, Any]) -> None:
    # 8 more points of the jump: 18 outliers in a row, fewer than the 20 after which zscore
    # learns a level shift, so the alert stays open (the screenshot shows it firing).
    rng = random.Random(9)
    async with producer(live["broker"].bootstrap) as p:
        for i in range(150, 158):
            value = 500.0 + rng.gauss(0, 3)
            await p.send(f"metrics-{live['unique']}", _metric("cpu", value, i), key=b"cpu")
