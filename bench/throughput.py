"""Worker throughput and publish-to-alert latency, measured in one run (embedded broker by default).

    python bench/throughput.py [--events 200000] [--batch 100] [--probes 500] [--scale-out 2]
                               [--scale-events 2000000] [--scale-rounds 3]
                               [--broker tansu|apache]
                               [--parts single,batched,scaleout,latency]
                               [--load-rate EVENTS_PER_S] [--load-series 1000]
                               [--commit-interval SECONDS]

1. Single-event messages: N metric samples (1,000 series) are published first, then a worker
   starts and the time from its first consumed event to its last is measured (from /metrics).
2. Batched messages: the same N samples in JSON-array messages of ``--batch`` events.
2b. Scale-out: ``--scale-events`` single-event messages through one worker, then through
   ``--scale-out`` workers in one group, each time published once every worker holds
   partitions (the workers stopped meanwhile) and timed from the end of the publishing over
   the window in which every worker is consuming; the ratio of the two rates.
   ``--scale-rounds`` rounds (3) of the pair, and the median ratio: on a shared 2-core
   machine one round's ratio moved from 1.30x to 1.64x between identical runs.
3. Latency: with a worker caught up, probe series are warmed up and then sent one anomalous
   point each; the time from that publish to the alert record on the alerts topic is measured,
   once on an idle worker and once while ``--load-series`` other series (1,000) arrive at half
   the highest single-event rate of one worker measured in steps 1 and 2b (``--load-rate``
   sets another; published by a child process, which shares the machine too). Many series at
   a low rate each (say 100,000 series at 20,000 events/s: a point every 5 s each, as scraped
   metrics arrive) make about one state checkpoint per event, which the default load (100
   points a second each) hides. Under load, measure on Apache Kafka (``--broker apache``):
   Tansu's fetches slow down as its partitions grow (``bench/broker_fetch.py``), so there the
   figure is mostly the broker's.

Steps 1, 2 and 2b also print the CPU the workers and the broker used over the timed window, in
cores (CPU seconds per second, from ``/proc``), and the workers' CPU time per event: on a
shared machine that is steadier than events/s, and it shows how much of the two cores the
broker leaves to the workers (the ceiling of the scale-out ratio when they share one machine).

Prints figures and ratios; asserts nothing (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import operator
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.devtools.apache_kafka import ApacheKafka  # noqa: E402
from engine.devtools.broker import Broker, EmbeddedBroker, free_port, wait_for_port  # noqa: E402

T0 = 1_700_000_000.0


def worker_config(broker: Broker, run: str, port: int, commit_interval: float = 0.0) -> str:
    """A worker's config on ``broker``: topics ``metrics-<run>`` etc., web port ``port``; with
    ``commit_interval`` (seconds), its commit interval and checkpoint timer."""
    every = ""
    if commit_interval:
        every = f"commit_interval_seconds = {commit_interval}\n"
        every += f"checkpoint_interval_seconds = {commit_interval}\n"
    return f"""
[kafka]
broker = "{broker.url}"
app_id = "bench-{run}"
partitions = 4
session_timeout_seconds = 6
[topics]
logs = "logs-{run}"
metrics = "metrics-{run}"
alerts = "alerts-{run}"
dlq = "dlq-{run}"
[redis]
enabled = false
[worker]
web_port = {port}
{every}[[overrides]]
# Latency probes: a simple detector that fires on the first anomalous point.
match = "probe*"
use = ["zscore"]
detectors.zscore.fire_after = 1
detectors.zscore.warmup = 20
"""


@contextmanager
def running_broker(engine: str, tmp: Path) -> Iterator[Broker]:
    """A bench's broker: ``tansu`` (embedded, memory only) or ``apache`` (Kafka 4.x, in ``tmp``).

    Tansu serves fetches poorly past a few hundred thousand messages a partition (seen in a
    30-minute soak: no record returned at offset 376,243 of a 446,000-message partition), so
    long runs want ``apache``.
    """
    if engine == "apache":
        kafka = ApacheKafka(directory=tmp / "kafka", heap_mb=1024).start()
        try:
            yield kafka
        finally:
            kafka.stop()
    else:
        with EmbeddedBroker(log_path=tmp / "tansu.log").running() as tansu:
            yield tansu


def _samples(n: int, rng: random.Random) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        series = i % 1000
        doc = {
            "name": f"load_{series}",
            "value": rng.gauss(100, 5),
            "timestamp": T0 + i // 1000,
            "labels": {"host": "h"},
        }
        out.append((f"load_{series}".encode(), orjson.dumps(doc)))
    return out


async def _create_topic(bootstrap: str, topic: str) -> None:
    """Create ``topic`` with 4 partitions (as the workers' config expects) if it is missing."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


async def _placement(producer: AIOKafkaProducer, topic: str) -> Callable[[bytes], int]:
    """Where the producer's default partitioner puts a key in ``topic``, remembered per key (it
    hashes in Python, a few us a key)."""
    from aiokafka.partitioner import DefaultPartitioner

    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    known: dict[bytes, int] = {}

    def place(key: bytes) -> int:
        partition = known.get(key)
        if partition is None:
            partition = known[key] = partitioner(key, partitions, partitions)
        return partition

    return place


def _record_batches(
    producer: AIOKafkaProducer, messages: Iterable[tuple[int, bytes, bytes]]
) -> list[tuple[int, BatchBuilder]]:
    """``messages`` (partition, key, value) appended to record batches of ``producer`` (up to
    its ``max_batch_size``), one open batch per partition: ``(partition, batch)`` in the order
    they were opened, so sending them in turn keeps each partition's order.

    A ``send`` per message costs a future and the accumulator's path each: it held one process
    to about 57,000 messages/s, and 1,000,000 messages took 10-20 s to publish.
    """
    batches: list[tuple[int, BatchBuilder]] = []
    open_batches: dict[int, BatchBuilder] = {}
    for partition, key, value in messages:
        batch = open_batches.get(partition)
        if batch is None or batch.append(key=key, value=value, timestamp=None) is None:
            batch = open_batches[partition] = producer.create_batch()
            batches.append((partition, batch))
            batch.append(key=key, value=value, timestamp=None)
    return batches


async def _publish(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes, bytes]],
    gate: Callable[[], None] | None = None,
) -> None:
    """Publish ``messages`` (key, value) to ``topic``, keyed as the default partitioner places
    them, in record batches of up to 1 MiB (:func:`_record_batches`) all built before the first
    is sent; with ``gate``, once it returns. Sending 1,000,000 messages then takes about a
    second (5-6 s with the building), so workers already waiting are not paced by it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1 << 20)
    await producer.start()
    try:
        place = await _placement(producer, topic)
        batches = _record_batches(producer, ((place(k), k, v) for k, v in messages))
        if gate is not None:
            await asyncio.to_thread(gate)
        for partition, batch in batches:
            await producer.send_batch(batch, topic, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def _wait_assigned(procs: list[BenchWorker], timeout: float = 120.0) -> None:
    """Wait until every worker is ready and holds input partitions, twice in a row 0.5 s
    apart (the group has settled)."""
    deadline = time.monotonic() + timeout
    settled = 0
    while settled < 2:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not all join their group with partitions")
        ready = True
        for w in procs:
            try:
                health = _http().get(f"http://127.0.0.1:{w.port}/health").json()
            except (httpx.HTTPError, ValueError):
                health = {}
            ready = ready and health.get("status") == "ok" and bool(health.get("partitions"))
        settled = settled + 1 if ready else 0
        time.sleep(0.5)


@functools.cache
def _http() -> httpx.Client:
    """One client for every scrape: ``httpx.get`` builds a client (and an SSL context) per
    call, which cost this process a third of a core when it polled two workers every 50 ms."""
    return httpx.Client(timeout=5)


def scrape(port: int, topic: str) -> tuple[float, float]:
    """``kestrel_events_consumed_total`` of ``topic`` and ``kestrel_last_batch_timestamp_seconds``
    (0.0 when absent) on the worker serving ``port``: two lines of its /metrics, found without
    parsing the rest."""
    text = _http().get(f"http://127.0.0.1:{port}/metrics").text
    consumed = re.search(
        rf'^kestrel_events_consumed_total\{{topic="{re.escape(topic)}"\}} (\S+)$', text, re.M
    )
    last = re.search(r"^kestrel_last_batch_timestamp_seconds (\S+)$", text, re.M)
    return (
        float(consumed.group(1)) if consumed else 0.0,
        float(last.group(1)) if last else 0.0,
    )


def consumed_events(port: int, topic: str) -> float:
    """``kestrel_events_consumed_total`` of ``topic`` on the worker serving ``port``."""
    return scrape(port, topic)[0]


class BenchWorker:
    """A ``kestrel worker`` process (log level warning), started and serving HTTP (with
    ``wait=False``, started: call :meth:`wait_serving`)."""

    def __init__(self, cfg: Path, port: int, log: Path, wait: bool = True) -> None:
        self.port = port
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "worker",
                "--config",
                str(cfg),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        if wait:
            self.wait_serving()

    def wait_serving(self) -> None:
        """Wait until the worker serves HTTP (at most 60 s)."""
        if not wait_for_port("127.0.0.1", self.port, 60):
            raise RuntimeError(f"worker did not start, see {self.log}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def assigned_partitions(port: int) -> int:
    """How many partitions the worker serving ``port`` holds (0 until it has joined)."""
    try:
        return len(_http().get(f"http://127.0.0.1:{port}/health").json()["partitions"])
    except (httpx.HTTPError, ValueError, KeyError):
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``; ``nan`` for a
    process not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ShortWindow(RuntimeError):
    """A gated run whose timed window was too short to measure (under 1 s)."""


@dataclass(frozen=True)
class Throughput:
    """A timed run: events/s, and CPU seconds per second of the window, per role."""

    rate: float
    worker_cpu: float  # all workers together (1.0 = one core busy)
    broker_cpu: float

    def cpu_note(self) -> str:
        """The CPU figures as printed, with the worker's CPU time per event."""
        per_event = self.worker_cpu / self.rate * 1e6 if self.rate else 0.0
        return (
            f"CPU: workers {self.worker_cpu:.2f} cores, broker {self.broker_cpu:.2f} cores; "
            f"{per_event:.1f} us of worker CPU per event"
        )


def broker_pids(broker: Broker) -> list[int]:
    """The broker's processes (one per node of an Apache Kafka cluster)."""
    members = getattr(broker, "members", None)
    procs = [m.process for m in members] if members else [getattr(broker, "process", None)]
    return [p.pid for p in procs if p is not None]


def _throughput(
    broker: Broker,
    tmp: Path,
    label: str,
    messages: list[tuple[bytes, bytes]],
    n_events: int,
    workers: int = 1,
    gated: bool = False,
) -> Throughput:
    """Events/s of ``workers`` processes in one group over ``messages``, and the CPU the
    workers and the broker used meanwhile (cores: CPU seconds per second).

    The workers' /metrics are polled every 50 ms until they consume, then every 0.2 s (a scrape
    costs the worker too). Unless ``gated``, one worker reads messages published before it
    starts: timed from the last poll that saw nothing consumed (so the figure errs low, by up
    to 50 ms) to the wall-clock time the worker says it judged its last batch. Several workers,
    or a ``gated`` run, are started on an empty topic and the messages are published
    (:func:`_publish`) once every worker holds partitions: started together, one
    could otherwise join seconds after another (on Apache Kafka one joined after the other
    had read 1,000,000 events; Faust's first assignment of a new group gives one member every
    partition). The workers are stopped (``SIGSTOP``, a couple of seconds: less than the
    session timeout) while the messages are published, so that the publishing does not pace
    them: consuming meanwhile, two workers were left 0.2-0.5 s of 2,000,000 events. The rate
    is then taken over the window in which every worker is consuming and the publishing is
    done, up to the first poll where one has consumed all it will (for one worker, the time it
    judged its last batch; at least 1 s).
    """
    gated = gated or workers > 1
    run = f"{label}{os.getpid()}"
    topic = f"metrics-{run}"
    if gated:
        asyncio.run(_create_topic(broker.bootstrap, topic))
    else:
        asyncio.run(_publish(broker.bootstrap, topic, messages))
    procs = []
    for i in range(workers):
        port = free_port()
        cfg = tmp / f"{label}-{i}.toml"
        cfg.write_text(worker_config(broker, run, port))
        # Started together, so they join the group together (one generation, no rebalance
        # while the first has the whole topic to itself).
        procs.append(BenchWorker(cfg, port, tmp / f"{label}-{i}.log", wait=False))

    def gate() -> None:
        for w in procs:
            w.wait_serving()
        if gated:
            _wait_assigned(procs)
            for w in procs:  # until the publishing is done (see above)
                w.proc.send_signal(signal.SIGSTOP)

    published = 0.0
    try:
        if gated:
            try:
                asyncio.run(_publish(broker.bootstrap, topic, messages, gate))
            finally:
                for w in procs:
                    w.proc.send_signal(signal.SIGCONT)
            published = time.time()
        else:
            gate()
    except BaseException:
        for w in procs:
            w.stop()
        raise
    pids, brokers = [w.proc.pid for w in procs], broker_pids(broker)

    def cpu() -> tuple[float, float]:
        return sum(map(cpu_seconds, pids)), sum(map(cpu_seconds, brokers))

    try:
        # (wall-clock time, events consumed by each worker, CPU of the workers and the broker)
        polls: list[tuple[float, list[float], tuple[float, float]]] = []
        deadline = time.monotonic() + 600
        last_batch = 0.0
        while time.monotonic() < deadline:
            scraped = [scrape(w.port, topic) for w in procs]
            counts = [consumed for consumed, _ in scraped]
            polls.append((time.time(), counts, cpu()))
            if sum(counts) >= n_events:
                last_batch = max(last for _, last in scraped)
                break
            time.sleep(0.2 if any(counts) else 0.05)
        else:
            raise RuntimeError(f"{label}: only {sum(counts)} of {n_events} events consumed")
    finally:
        for w in procs:
            w.stop()
    if not gated:
        start = max((i for i, (_, counts, _) in enumerate(polls) if counts[0] == 0), default=0)
        end = len(polls) - 1
    else:
        finals = polls[-1][1]
        side_by_side = next(
            (i for i, (t, counts, _) in enumerate(polls) if all(counts) and t >= published), None
        )
        if side_by_side is None:  # one worker had every partition until the events ran out
            raise RuntimeError(
                f"{label}: the workers never consumed side by side (events each: "
                f"{', '.join(f'{n:,.0f}' for n in finals)})"
            )
        start = side_by_side
        end = next(
            i for i, (_, counts, _) in enumerate(polls) if any(map(operator.eq, counts, finals))
        )
    (t0, n0, cpu0), (t1, n1, cpu1) = polls[start], polls[end]
    if workers == 1 and last_batch > t0:
        t1 = last_batch  # the CPU read at the last poll: the worker idled since it
    window = t1 - t0
    if gated and window < 1.0:
        raise ShortWindow(
            f"{label}: the workers consumed side by side for only {window:.2f} s; "
            "publish more events (--scale-events)"
        )
    return Throughput(
        (sum(n1) - sum(n0)) / window,
        (cpu1[0] - cpu0[0]) / window,
        (cpu1[1] - cpu0[1]) / window,
    )


async def _background(
    bootstrap: str, topic: str, rate: float, seconds: float, series: int = 1000
) -> int:
    """Publish ordinary samples of ``series`` other series, in turn, at ``rate`` events/s for
    ``seconds``: every 10 ms, the events due in record batches (:func:`_record_batches`).

    The load shares the machine with the worker it loads, so it is made cheaply: each message
    is three pieces of bytes put together (the series' name, a value from a pool of normal
    draws, the cycle's timestamp) and goes straight into its partition's record batch: 1.6-1.8
    us of the load's CPU per event in all (a dict built and encoded per event cost 3.6 us more;
    a list of the due messages and a partition lookup per message, 0.2-0.3 us more).
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    rng = random.Random(3)
    pool = [b'"value":' + orjson.dumps(rng.gauss(100, 5)) for _ in range(4096)]
    sent, started, tick = 0, time.monotonic(), 0.01
    try:
        place = await _placement(producer, topic)
        keys = [f"bg_{k}".encode() for k in range(series)]
        heads = [b'{"name":"' + key + b'",' for key in keys]
        partitions = [place(key) for key in keys]
        tail = b""

        def due(n: int) -> Iterator[tuple[int, bytes, bytes]]:
            nonlocal sent, tail
            for _ in range(n):
                k = sent % series
                if k == 0:  # a new cycle through the series: the timestamp advances
                    tail = b',"timestamp":' + orjson.dumps(T0 + sent // series) + b"}"
                yield partitions[k], keys[k], heads[k] + pool[sent & 4095] + tail
                sent += 1

        while time.monotonic() - started < seconds:
            n = int((time.monotonic() - started) * rate) - sent
            for partition, batch in _record_batches(producer, due(n)):
                await producer.send_batch(batch, topic, partition=partition)
            await asyncio.sleep(tick)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _background_child(bootstrap: str, topic: str, rate: float, seconds: float, series: int) -> None:
    """The background load's process (its own CPU, not the measuring loop's): prints the
    events it sent, the seconds it took and the CPU seconds it used."""
    started, cpu = time.monotonic(), time.process_time()
    sent = asyncio.run(_background(bootstrap, topic, rate, seconds, series))
    print(f"{sent} {time.monotonic() - started:.3f} {time.process_time() - cpu:.3f}", flush=True)


def _start_background(
    bootstrap: str, topic: str, rate: float, seconds: float, series: int
) -> subprocess.Popen[str]:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import throughput; "
        "throughput._background_child(sys.argv[2], sys.argv[3], float(sys.argv[4]), "
        "float(sys.argv[5]), int(sys.argv[6]))"
    )
    here = str(Path(__file__).resolve().parent)
    args = [sys.executable, "-c", code, here, bootstrap, topic]
    args += [str(rate), str(seconds), str(series)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


async def _latency(
    broker: Broker,
    tmp: Path,
    probes: int,
    background_rate: float = 0.0,
    load_series: int = 1000,
    commit_interval: float = 0.0,
) -> tuple[list[float], str]:
    """Publish-to-alert latencies (seconds) of ``probes`` probes, and a note on the load.

    The latency of a probe is the Kafka timestamp of its alert record (stamped by the worker's
    producer when it sends the alert) minus the wall-clock time just before the probe was
    published: the worker's delay, not this process's (its consumer only collects the alerts).
    The background load, if any, is published by a child process of its own. ``commit_interval``
    (seconds, if set) is the worker's commit interval and checkpoint timer.
    """
    run = f"lat{int(background_rate)}x{os.getpid()}"
    port = free_port()
    cfg = tmp / f"{run}.toml"
    cfg.write_text(worker_config(broker, run, port, commit_interval))
    worker = BenchWorker(cfg, port, tmp / f"{run}.log")
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
    consumer = AIOKafkaConsumer(
        f"alerts-{run}",
        bootstrap_servers=broker.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    await producer.start()
    load: subprocess.Popen[str] | None = None
    try:
        warm = []
        for k in range(probes):
            for i in range(25):
                doc = {
                    "name": f"probe_{k}",
                    "value": 9.0 + 2 * (i % 2),
                    "timestamp": T0 + i,
                }  # no false alarm
                warm.append((f"probe_{k}".encode(), orjson.dumps(doc)))
        for key, value in warm:
            await producer.send(f"metrics-{run}", value, key=key)
        await producer.flush()
        await asyncio.to_thread(_wait_consumed, port, f"metrics-{run}", len(warm))
        await consumer.start()
        await consumer.getmany(timeout_ms=500)
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        topic = f"metrics-{run}"
        # Long enough for the probes (about 20 a second) after 2 s for the load to settle.
        seconds = 2.0 + probes / 15.0 + 5.0
        if background_rate > 0:
            load = _start_background(broker.bootstrap, topic, background_rate, seconds, load_series)
            await asyncio.sleep(2.0)  # let the load settle
        consumed_before = consumed_events(port, topic)
        brokers = broker_pids(broker)
        cpu_before = cpu_seconds(worker.proc.pid), sum(map(cpu_seconds, brokers))
        started = time.monotonic()
        for k in range(probes):
            doc = {"name": f"probe_{k}", "value": 1000.0, "timestamp": T0 + 30}
            sent_at[f"probe_{k}"] = time.time()
            await producer.send_and_wait(topic, orjson.dumps(doc), key=f"probe_{k}".encode())
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        consumed = consumed_events(port, topic) - consumed_before
        worker_cpu = (cpu_seconds(worker.proc.pid) - cpu_before[0]) / elapsed
        broker_cpu = (sum(map(cpu_seconds, brokers)) - cpu_before[1]) / elapsed
        deadline = time.monotonic() + 60
        while len(latencies) < probes and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for msgs in batch.values():
                for m in msgs:
                    series = orjson.loads(m.value)["series"]
                    if series in sent_at:
                        latencies.append(m.timestamp / 1000.0 - sent_at.pop(series))
        if sent_at:
            raise RuntimeError(f"no alert for {len(sent_at)} probes, e.g. {next(iter(sent_at))}")
        note = (
            f"worker consumed {consumed / elapsed:,.0f} events/s while probed, on "
            f"{worker_cpu:.2f} cores; broker {broker_cpu:.2f} cores"
        )
        if load is not None:
            out, _ = load.communicate(timeout=seconds + 60)
            n, took, cpu = out.split()
            note += (
                f"; background published {int(n) / float(took):,.0f} events/s on "
                f"{float(cpu) / float(took):.2f} cores"
            )
        return latencies, note
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        await producer.stop()
        await consumer.stop()
        worker.stop()


def _wait_consumed(port: int, topic: str, n: int) -> None:
    deadline = time.monotonic() + 120
    while consumed_events(port, topic) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("warm-up events not consumed")
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--probes", type=int, default=500, help="latency probes (about 20 a second)")
    ap.add_argument(
        "--scale-out", type=int, default=2, metavar="N", help="workers for the scale-out round"
    )
    ap.add_argument(
        "--scale-events",
        type=int,
        default=2_000_000,
        help="events of the scale-out round (enough that every worker consumes a while at once)",
    )
    ap.add_argument(
        "--scale-rounds",
        type=int,
        default=3,
        help="scale-out rounds (one worker, then the group, each round); the median ratio",
    )
    ap.add_argument(
        "--parts",
        default="single,batched,scaleout,latency",
        help="which measurements to run (comma-separated)",
    )
    ap.add_argument(
        "--broker",
        choices=("tansu", "apache"),
        default="tansu",
        help="the embedded broker (default) or Apache Kafka 4.x (the jars make fetches)",
    )
    ap.add_argument(
        "--load-rate",
        type=float,
        help="events/s of the background load while probing (default: half the highest "
        "single-event rate of one worker measured in the run)",
    )
    ap.add_argument(
        "--load-series",
        type=int,
        default=1000,
        help="series the background load cycles through (each gets rate/N points a second)",
    )
    ap.add_argument(
        "--commit-interval",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="the latency worker's commit interval and checkpoint timer (default: the config's, "
        "2.8 and 5 s)",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    rng = random.Random(1)
    samples = _samples(args.events, rng)
    batched = []
    for i in range(0, len(samples), args.batch):
        chunk = samples[i : i + args.batch]
        batched.append((chunk[0][0], b"[" + b",".join(v for _, v in chunk) + b"]"))
    with (
        tempfile.TemporaryDirectory(prefix="kestrel-bench-") as d,
        running_broker(args.broker, Path(d)) as broker,
    ):
        tmp = Path(d)
        single = 0.0
        if "single" in parts or ("latency" in parts and args.load_rate is None):
            one = _throughput(broker, tmp, "single", samples, args.events)
            single = one.rate
            print(
                f"single-event messages: {single:,.0f} events/s ({args.events:,} events); "
                f"{one.cpu_note()}",
                flush=True,
            )
        if "batched" in parts:
            batch = _throughput(broker, tmp, "batched", batched, args.events)
            multi = batch.rate
            print(
                f"batched messages ({args.batch} events each): {multi:,.0f} events/s; "
                f"{batch.cpu_note()}",
                flush=True,
            )
            if single:
                print(f"batched / single: {multi / single:.1f}x", flush=True)
        if "scaleout" in parts and args.scale_out > 1:
            n = args.scale_out
            many_samples = _samples(args.scale_events, random.Random(2))
            ratios = []
            for r in range(1, args.scale_rounds + 1):
                # The baseline: one worker on the same workload (a run as long as the group's),
                # then the group, alternately, so a slow spell of the machine hits both. A round
                # whose window is too short is reported and left out of the median.
                try:
                    base = _throughput(
                        broker, tmp, f"scalebase{r}", many_samples, args.scale_events, gated=True
                    )
                    single = max(single, base.rate)
                    print(
                        f"round {r}: single-event messages, 1 worker, "
                        f"{args.scale_events:,} events: {base.rate:,.0f} events/s; "
                        f"{base.cpu_note()}",
                        flush=True,
                    )
                    out = _throughput(
                        broker, tmp, f"scaleout{r}", many_samples, args.scale_events, workers=n
                    )
                except ShortWindow as exc:
                    print(f"round {r}: left out: {exc}", flush=True)
                    continue
                ratios.append(out.rate / base.rate)
                print(
                    f"round {r}: single-event messages, {n} workers in one group: "
                    f"{out.rate:,.0f} events/s ({ratios[-1]:.2f}x one worker); {out.cpu_note()}",
                    flush=True,
                )
            if not ratios:
                raise SystemExit("scale-out: no round could be timed; raise --scale-events")
            print(
                f"scale-out, {n} workers / 1: median {statistics.median(ratios):.2f}x over "
                f"{len(ratios)} round(s) ({', '.join(f'{x:.2f}' for x in ratios)})",
                flush=True,
            )
        load_rate = args.load_rate if args.load_rate is not None else single / 2
        load = f"under a load of {load_rate:,.0f} events/s over {args.load_series:,} series"
        if args.load_rate is None:
            load += f" (half of {single:,.0f}, the highest one-worker rate above)"
        loads = (("idle worker", 0.0), (load, load_rate))
        for label, rate in loads if "latency" in parts else ():
            found, note = asyncio.run(
                _latency(broker, tmp, args.probes, rate, args.load_series, args.commit_interval)
            )
            lat = sorted(found)
            p50 = statistics.median(lat) * 1000
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000
            print(
                f"publish -> alert record, {label}: p50 {p50:.1f} ms, "
                f"p99 {p99:.1f} ms ({len(lat)} probes; {note})",
                flush=True,
            )


if __name__ == "__main__":
    main()
