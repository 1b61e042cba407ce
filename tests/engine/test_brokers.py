"""The local brokers: Apache Kafka from Maven Central's jars (one node or three) and Tansu.

What the two brokers do differently and Kestrel relies on is pinned here, so that a change of
either shows up as a failing test rather than as a flaky worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from engine.devtools import apache_kafka
from engine.devtools.apache_kafka import ApacheKafka, is_fetched, kafka_home, kafka_version
from engine.devtools.broker import Broker, BrokerError, EmbeddedBroker, wait_for_port
from tests.testkit import REPO, run, topic_configs

# -- the jar cache and the set-up messages (no service needed) ----------------------------------


def test_the_kafka_version_is_pinned_once_in_the_pom() -> None:
    assert re.fullmatch(r"4\.\d+\.\d+", kafka_version())
    pom = apache_kafka.POM.read_text()
    assert pom.count(kafka_version()) == 1  # the property; every artifact refers to it


def test_the_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KESTREL_KAFKA_HOME", str(tmp_path))
    assert kafka_home() == tmp_path
    monkeypatch.delenv("KESTREL_KAFKA_HOME")
    assert kafka_home() == Path.home() / ".cache" / "kestrel" / f"kafka-{kafka_version()}"


def test_a_complete_cache_is_not_fetched_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert not is_fetched(tmp_path)
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / ".complete").write_text("a digest of another pom\n")
    assert not is_fetched(tmp_path)  # fetched for another POM: stale
    (lib / ".complete").write_text(apache_kafka._pom_digest() + "\n")
    assert is_fetched(tmp_path)
    monkeypatch.setattr(apache_kafka.shutil, "which", lambda name: None)  # no Maven at all
    assert apache_kafka.fetch(tmp_path) == lib


def test_missing_jars_fail_saying_how_to_fetch_them(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match=r"make kafka"):
        ApacheKafka(home=tmp_path / "empty", directory=tmp_path / "data").start()


def test_a_missing_maven_fails_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(apache_kafka.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match=r"apt-get install -y maven"):
        apache_kafka.fetch(tmp_path)


def test_a_missing_java_fails_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(apache_kafka.shutil, "which", lambda name: None)
    with pytest.raises(BrokerError, match=r"Java 17 or newer.*apt-get install -y openjdk-17"):
        apache_kafka.java_binary()


# -- what the brokers answer -------------------------------------------------------------------


async def _end_offset_after_one_batch(bootstrap: str, topic: str, n: int) -> tuple[int, int]:
    """Send ``n`` records in one batch; return (ListOffsets latest, records fetched)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=500)
    await producer.start()
    try:
        sent = [await producer.send(topic, b"v", key=b"k%d" % i, partition=0) for i in range(n)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        fetched: list[Any] = []
        deadline = time.monotonic() + 10
        while len(fetched) < n and time.monotonic() < deadline:
            for records in (await consumer.getmany(tp, timeout_ms=200)).values():
                fetched.extend(records)
        return end, len(fetched)
    finally:
        await consumer.stop()


def test_the_end_offset_counts_every_record(each_broker: Broker, unique: str) -> None:
    """Apache Kafka's end offset is the log end; Tansu 0.6's stops at the last batch's start.

    Tansu answers ListOffsets (latest) with the base offset of the last record batch plus one.
    Faust's table recovery reads a changelog partition up to that offset and then declares the
    table recovered, so the rest of that batch (a checkpoint writes several states in one batch)
    never reaches the table: engine/runtime/ingest.py completes the table itself. When this test
    fails on Tansu, Tansu was fixed.
    """
    end, fetched = run(_end_offset_after_one_batch(each_broker.bootstrap, f"end-{unique}", 5))
    assert fetched == 5
    assert end == (1 if isinstance(each_broker, EmbeddedBroker) else 5)


# -- three nodes: one may go down and come back -----------------------------------------------


async def _isr_until(
    admin: AIOKafkaAdminClient, topic: str, wanted: set[int], timeout: float = 30
) -> dict[int, set[int]]:
    """Each partition's in-sync replicas, once all equal ``wanted`` (or at the timeout)."""
    isr: dict[int, set[int]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # the admin client asks a random node, perhaps the one that is down
            (description,) = await admin.describe_topics([topic])
        except KafkaError:
            await asyncio.sleep(0.3)
            continue
        isr = {p["partition"]: set(p["isr"]) for p in description["partitions"]}
        if isr and all(nodes == wanted for nodes in isr.values()):
            break
        await asyncio.sleep(0.3)
    return isr


async def _round_trip(cluster: ApacheKafka, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    await admin.start()
    producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    await producer.start()
    try:
        await admin.create_topics([NewTopic(topic, 3, 3)])
        configs = await topic_configs(cluster.bootstrap, [topic])
        assert configs[topic]["min.insync.replicas"] == "2"
        assert await _isr_until(admin, topic, {1, 2, 3}) == {p: {1, 2, 3} for p in range(3)}
        for i in range(30):
            await producer.send_and_wait(topic, b"before-%d" % i, key=b"%d" % i)

        cluster.stop_node(2, kill=True)  # a crash: no controlled shutdown
        for i in range(30):  # acks=all: two in-sync replicas of three still take writes
            await producer.send_and_wait(topic, b"during-%d" % i, key=b"%d" % i)
        assert await _isr_until(admin, topic, {1, 3}) == {p: {1, 3} for p in range(3)}

        cluster.start_node(2)  # it catches up and is back in every ISR
        assert await _isr_until(admin, topic, {1, 2, 3}) == {p: {1, 2, 3} for p in range(3)}
    finally:
        await producer.stop()
        await admin.close()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=f"127.0.0.1:{cluster.node(2).port}",  # the node that came back
        group_id=f"{topic}-reader",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < 60 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    sent = [b"%s-%d" % (phase, i) for phase in (b"before", b"during") for i in range(30)]
    assert sorted(values) == sorted(sent)


@pytest.mark.integration
def test_three_nodes_keep_taking_writes_while_one_is_down(tmp_path: Path, unique: str) -> None:
    cluster = ApacheKafka(nodes=3, directory=tmp_path / "cluster")
    try:
        cluster.start()
    except BrokerError as exc:
        pytest.fail(str(exc))
    processes = [n.process for n in cluster.members]
    try:
        assert len(cluster.bootstrap.split(",")) == 3
        assert cluster.url.count("kafka://") == 3
        run(_round_trip(cluster, f"replicated-{unique}"))
    finally:
        cluster.stop()
    assert all(p is not None and p.poll() is not None for p in processes)


# -- `kestrel broker` --------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("engine", "stop"),
    [
        ("apache", signal.SIGINT),
        ("tansu", signal.SIGINT),
        # SIGTERM (kill, systemd, docker stop) used to end the command alone, the broker running on.
        ("apache", signal.SIGTERM),
        ("tansu", signal.SIGTERM),
    ],
)
def test_the_broker_command_serves_until_interrupted(engine: str, stop: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "broker", "--engine", engine, "--port", "0"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As in a terminal: a test run started in the background (`make test &`) ignores
        # SIGINT, and a child would inherit that and never see the Ctrl-C below.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        with ThreadPoolExecutor(1) as pool:
            line = pool.submit(proc.stdout.readline).result(timeout=90)
        match = re.search(r" on 127\.0\.0\.1:(\d+)", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        port = int(match.group(1))
        expected = "Apache Kafka" if engine == "apache" else "embedded broker"
        assert expected in line
        assert apache_kafka._alive_brokers(f"127.0.0.1:{port}", timeout=10)  # it answers
    finally:
        proc.send_signal(stop)  # Ctrl-C, or kill
        code = proc.wait(60)
    print(f"{engine}: exit code {code} after {stop.name}")
    assert code == 128 + stop
    assert not wait_for_port("127.0.0.1", port, 0.5)  # the broker stopped with the command
