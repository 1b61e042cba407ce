"""Kestrel against peer stream processors: one workload, one embedded broker, one run.

    python bench/peers.py [--events 200000] [--series 1000] [--rounds 1] [--only plain,kestrel]
    make bench-peers ARGS="--events 50000"   # builds .venv and .venv-peers first

The workload: ``--events`` metric samples over ``--series`` series (``load_<k>``), values
uniform in 100 +/- 10, with a spike of +/-300 injected at points 40, 80, 120, ... of every series
(the multiples of ``--spike-every`` from point 40 on: 4 per series, 2% of the points, with the
defaults).
It is published twice per round, each time to a fresh 4-partition topic of the embedded broker
(Tansu, :class:`engine.devtools.broker.EmbeddedBroker`), keyed by series: once as one JSON object
per message, once as JSON arrays of ``--batch`` events (a partition's events in order, so each
series stays in one partition and in order in both forms). Every contender then reads each topic
from the beginning, in its own process (a fresh consumer group each time):

``plain``
    aiokafka ``getmany`` + orjson + river, on uvloop: the practical limit of one Python process.
``bytewax``
    ``KafkaSource`` (``tail=False``) -> ``flat_map`` (decode) -> ``stateful_map`` keyed by series.
``quixstreams``
    ``Application`` + ``sdf.update`` with a dict of per-series state (not the RocksDB state store:
    a 100-event message holds events of 100 series, so per-message-key state cannot hold them).
``faust``
    A bare Faust agent, ``async for value in stream``, memory store, uvloop, 50 ms fetch wait
    (through Kestrel's ``KestrelApp``, which only makes Faust's hard-coded 1.5 s wait settable).
``kestrel``
    ``python -m engine.cli worker`` with a config override ``use = ["zscore"]`` for ``*``, its
    sinks off (the Redis mirror and the cold store, which keeps the alert history: each is work
    the peers do not do, and the store is a consumer group of its own that ``kestrel store`` can
    run in another process; ``bench/cold_store.py`` measures detection with it on and off).
    zscore keeps its default ``fire_after = 3``: an isolated spike is an anomalous point, counted
    in ``kestrel_anomalous_points_total``, and makes no alert.
``kestrel-alerts``
    The same, with ``fire_after = 1``: every anomalous point also fires an alert, which resolves
    5 normal points later. Each spike then costs two alert records that the worker writes to its
    alerts topic, reads back and routes through its notifier (in the same process): an alert
    storm of 2% of the events, work the peers do not do.
``kestrel-default``
    The same worker with its default detectors (other work than the peers': its alert count is
    shown, not compared); the table's last line gives its rate over ``kestrel``'s.

The per-event work of every contender but Kestrel is the same code (:class:`ZScore`): river
``stats.EWMean``/``stats.EWVar`` (fading factor 0.05); the first 30 points of a series are learned
and not scored; then ``z = (x - mean) / std`` is computed against the baseline *before* the point,
the point is anomalous when ``|z| > 4``, and an anomalous point is held out of the baseline. This
is what Kestrel's ``zscore`` detector does with its defaults (``learn_anomalies = false``; its
``relearn_after`` of 20 consecutive outliers and its std floor of ``0.01 * |mean|`` never come
into play on this data). Kestrel does more per event (validation, alert tracking, state
checkpoints, metrics): that is what is being compared.

Timing excludes start-up and the consumer-group join: each contender notes the clock when its
first message arrives (before decoding it) and when its last event has been scored, in its own
process, and reports ``events / (last - first)``. bytewax reads each partition with a consumer
of its own, and librdkafka can start one of them about 0.5 s after the others; so its clock
restarts at the first message of the last partition to start, and only the events scored from
then on count (for the others every partition starts with the group join, which is left out).
Kestrel is timed from its /metrics: ``kestrel_events_consumed_total`` is polled every 50 ms until
it shows events (the worker is idle, waiting for its group), and the clock starts at the last
reading that showed none (so the figure errs low by up to one polling interval); then every
0.5 s, until it shows all of them, and the clock stops at
``kestrel_last_batch_timestamp_seconds``, the wall-clock time the worker finished judging its
last batch. (Polling a busy worker 20 times a second took 2-4% of its profile.)

Proof of work: every contender counts its anomalous points and the counts are printed. The
expected count is computed here by running :class:`ZScore` over the workload in order; with this
workload it equals the number of injected spikes (the noise is bounded, so no natural point comes
near 4 sigma). ``kestrel`` reports ``kestrel_anomalous_points_total{detector="zscore"}``.
``kestrel-alerts`` reports ``kestrel_alerts_total{detector="zscore",status="firing"}``: with
``fire_after = 1`` an alert fires on the first anomalous point, and the default
``resolve_after`` of 5 resolves it before the next spike (``--spike-every`` must be more than
5), so every spike fires exactly one alert. A count that differs from the expected one is marked
``!`` in the table.

With 100-event messages and the default spike density, the alert storm is a large share of
``kestrel-alerts``' time; ``--spike-every 1000`` (no spike in a 200-point series) shows the
rate without anomalies, but then the anomaly counts prove nothing.

Figures are the median over ``--rounds`` rounds (the order of the contenders rotates from round
to round). A contender that does not finish within ``--timeout`` seconds is reported as a
timeout; one whose package is missing as not installed. bytewax and quixstreams run in
``--peers-python`` (by default ``.venv-peers/bin/python`` when it exists, which
``make bench-peers`` creates: they pin dependencies below Kestrel's dev venv's).

All the data is in the broker before a contender starts, so the fast contenders are bound by
their processing, not by fetching; at ``--events 50000`` the plain loop runs for under 0.1 s and
its figure is noisy. Prints figures and ratios; asserts nothing (the machines are shared and
noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from river import stats

REPO = Path(__file__).resolve().parent.parent

CONTENDERS = (
    "plain",
    "bytewax",
    "quixstreams",
    "faust",
    "kestrel",
    "kestrel-alerts",
    "kestrel-default",
)
#: Contenders doing other work than the reference loop: their anomaly counts are not compared.
OTHER_WORK = {"kestrel-default"}
PEER_PACKAGES = {"bytewax": "bytewax", "quixstreams": "quixstreams"}
LABELS = {
    "plain": "plain aiokafka getmany + orjson + river",
    "bytewax": "bytewax (KafkaSource + stateful_map)",
    "quixstreams": "quixstreams (Application, sdf.update)",
    "faust": "bare Faust agent (50 ms fetch wait)",
    "kestrel": "Kestrel worker, metrics -> zscore",
    "kestrel-alerts": "Kestrel worker, zscore, an alert per anomaly",
    "kestrel-default": "Kestrel worker, default detectors",
}

# The detector, shared by every contender but Kestrel (whose zscore defaults are the same).
FADING_FACTOR = 0.05
WARMUP = 30
THRESHOLD = 4.0

# The workload.
PARTITIONS = 4
T0 = 1_700_000_000.0
BASE, NOISE = 100.0, 10.0  # values uniform in BASE +/- NOISE (std ~5.8)
SPIKE = 300.0  # injected anomalies: BASE +/- SPIKE, about 50 sigma out
FIRST_SPIKE = 40  # no spike before this point of a series (the warm-up is 30 points)
SPIKE_EVERY = 40  # spikes at the multiples of --spike-every from there: 40, 80, 120, ...
SESSION_TIMEOUT_MS = 6000  # the embedded broker holds a group join for about half of it
FETCH_MAX_WAIT_MS = 50


class ZScore:
    """Per-series z-score against an exponentially weighted baseline; outliers held out."""

    __slots__ = ("mean", "seen", "var")

    def __init__(self) -> None:
        self.mean = stats.EWMean(FADING_FACTOR)
        self.var = stats.EWVar(FADING_FACTOR)
        self.seen = 0

    def update(self, x: float) -> bool:
        """Score ``x`` against the baseline before it; learn it unless anomalous."""
        if self.seen < WARMUP:
            self.seen += 1
            self.mean.update(x)
            self.var.update(x)
            return False
        var = self.var.get()
        std = math.sqrt(var) if var > 0.0 else 0.0
        z = (x - self.mean.get()) / std if std > 0.0 else 0.0
        if abs(z) > THRESHOLD:
            return True
        self.mean.update(x)
        self.var.update(x)
        return False


class Tally:
    """One contender's state: detectors by series, counts, and the first and last clock.

    The timed span runs from ``first`` to ``last``; ``before_first`` events were scored before it.
    """

    __slots__ = ("anomalies", "before_first", "detectors", "events", "expected", "first", "last")

    def __init__(self, expected: int) -> None:
        self.detectors: dict[str, ZScore] = {}
        self.expected = expected
        self.events = 0
        self.anomalies = 0
        self.first = 0.0
        self.last = 0.0
        self.before_first = 0

    def start(self) -> None:
        """Note the clock at the first message."""
        if not self.first:
            self.first = time.perf_counter()

    def restart(self) -> None:
        """Start the timed span again from now, counting only the events scored from now on."""
        self.first = time.perf_counter()
        self.before_first = self.events

    def event(self, name: str, value: float) -> bool:
        """Score one event; ``True`` when it is the last expected one."""
        detector = self.detectors.get(name)
        if detector is None:
            detector = self.detectors[name] = ZScore()
        anomalous = detector.update(value)
        if anomalous:
            self.anomalies += 1
        self.events += 1
        if self.events == self.expected:
            self.last = time.perf_counter()
            return True
        return False

    def message(self, raw: bytes) -> bool:
        """Decode one message (an event or a JSON array of events) and score its events;
        ``True`` when the last expected event was in it."""
        if not self.first:
            self.first = time.perf_counter()
        doc = orjson.loads(raw)
        done = False
        for ev in doc if isinstance(doc, list) else (doc,):
            done = self.event(ev["name"], float(ev["value"])) or done
        return done

    def result(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "timed_events": self.events - self.before_first,
            "anomalies": self.anomalies,
            "seconds": self.last - self.first if self.last else None,
        }


# -- the workload ------------------------------------------------------------------------------


@dataclass
class Workload:
    """The events, the two message forms, and the anomaly counts to expect."""

    events: int
    injected: int
    expected: int
    single: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    batched: list[tuple[int, bytes, bytes]] = field(default_factory=list)


def make_workload(
    n: int, series: int, batch: int, spike_every: int = SPIKE_EVERY, seed: int = 1
) -> Workload:
    """``n`` events over ``series`` series, as (partition, key, value) messages in both forms;
    a spike at the points of every series that are multiples of ``spike_every``, from
    ``FIRST_SPIKE`` on."""
    from aiokafka.partitioner import DefaultPartitioner

    rng = random.Random(seed)
    partitioner = DefaultPartitioner()
    parts = list(range(PARTITIONS))
    part_of = [partitioner(f"load_{k}".encode(), parts, parts) for k in range(series)]
    reference = Tally(n)
    injected = 0
    single: list[tuple[int, bytes, bytes]] = []
    by_part: list[list[tuple[bytes, bytes]]] = [[] for _ in parts]
    for i in range(n):
        k, j = i % series, i // series
        value = BASE + rng.uniform(-NOISE, NOISE)
        if j >= FIRST_SPIKE and j % spike_every == 0:
            value = BASE + SPIKE * (1 if (k + j // spike_every) % 2 else -1)
            injected += 1
        name = f"load_{k}"
        doc = orjson.dumps(
            {"name": name, "value": value, "timestamp": T0 + j, "labels": {"host": "h"}}
        )
        reference.event(name, value)
        key = name.encode()
        single.append((part_of[k], key, doc))
        by_part[part_of[k]].append((key, doc))
    batched: list[tuple[int, bytes, bytes]] = []
    for p, msgs in enumerate(by_part):
        for s in range(0, len(msgs), batch):
            chunk = msgs[s : s + batch]
            batched.append((p, chunk[0][0], b"[" + b",".join(v for _, v in chunk) + b"]"))
    return Workload(n, injected, reference.anomalies, single, batched)


async def _publish(
    bootstrap: str, topic: str, messages: Sequence[tuple[int, bytes, bytes]]
) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        for _ in range(100):
            if len(await producer.partitions_for(topic) or ()) == PARTITIONS:
                break
            await asyncio.sleep(0.1)
        for partition, key, value in messages:
            await producer.send(topic, value, key=key, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


# -- the contenders, each run in a child process (``--child NAME``) ----------------------------


def _child_plain(args: argparse.Namespace, tally: Tally) -> None:
    import uvloop
    from aiokafka import AIOKafkaConsumer

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            args.topic,
            bootstrap_servers=args.bootstrap,
            group_id=args.group,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=SESSION_TIMEOUT_MS // 5,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        try:
            done = False
            while not done:
                batches = await consumer.getmany(timeout_ms=1000)
                for msgs in batches.values():
                    for msg in msgs:
                        done = tally.message(msg.value) or done
        finally:
            await consumer.stop()

    uvloop.run(run())


def _child_bytewax(args: argparse.Namespace, tally: Tally) -> None:
    import bytewax.operators as op
    from bytewax.connectors.kafka import KafkaSource, KafkaSourceMessage
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.run import cli_main

    class _Count(StatelessSinkPartition[Any]):
        def write_batch(self, items: list[Any]) -> None:
            pass  # the anomalies are counted in the stateful step; this only ends the flow

        def close(self) -> None:
            pass

    class _Sink(DynamicSink[Any]):
        def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
            return _Count()

    # Each partition has a consumer of its own (no group), and librdkafka may hold a consumer's
    # first offset query for about 0.5 s (its debug log shows "offset-query" for 500 ms after the
    # reset to the beginning), so the partitions can start that far apart. Timing restarts when
    # the last partition starts, to leave start-up out as for the others.
    started: set[int] = set()

    def decode(msg: KafkaSourceMessage[bytes | None, bytes | None]) -> Iterable[tuple[str, float]]:
        tally.start()
        if len(started) < PARTITIONS and msg.partition not in started:
            started.add(msg.partition)
            if len(started) == PARTITIONS:
                tally.restart()
        assert msg.value is not None
        doc = orjson.loads(msg.value)
        return [
            (ev["name"], float(ev["value"])) for ev in (doc if isinstance(doc, list) else (doc,))
        ]

    def score(state: ZScore | None, value: float) -> tuple[ZScore, bool]:
        if state is None:
            state = ZScore()
        anomalous = state.update(value)
        if anomalous:
            tally.anomalies += 1
        tally.events += 1
        if tally.events == tally.expected:
            tally.last = time.perf_counter()
        return state, anomalous

    flow = Dataflow("peers")
    source = KafkaSource(
        [args.bootstrap],
        [args.topic],
        tail=False,  # stop at the end of every partition
        add_config={"fetch.wait.max.ms": str(FETCH_MAX_WAIT_MS)},
    )
    msgs = op.input("in", flow, source)
    keyed = op.flat_map("decode", msgs, decode)
    flags = op.stateful_map("zscore", keyed, score)
    anomalies = op.filter("anomalous", flags, lambda kv: kv[1])
    op.output("out", anomalies, _Sink())
    cli_main(flow, workers_per_process=1)


def _child_quixstreams(args: argparse.Namespace, tally: Tally) -> None:
    from quixstreams import Application

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        consumer_extra_config={
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": SESSION_TIMEOUT_MS // 5,
            "fetch.wait.max.ms": FETCH_MAX_WAIT_MS,
        },
        # The embedded broker has no idempotent producer (quixstreams asks for one by default).
        producer_extra_config={"enable.idempotence": False},
        use_changelog_topics=False,  # no state store used; and the broker does not compact
        state_dir=args.workdir,
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(topic)

    def work(value: bytes) -> None:
        if tally.message(value):
            app.stop()

    sdf = sdf.update(work)
    app.run()


def _child_faust(args: argparse.Namespace, tally: Tally) -> None:
    import logging

    import faust
    import uvloop

    sys.path.insert(0, str(REPO))
    from engine.runtime.transport import KestrelApp

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    session = SESSION_TIMEOUT_MS / 1000
    app = KestrelApp(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        topic_partitions=PARTITIONS,
        broker_session_timeout=session,
        broker_heartbeat_interval=session / 5,
        broker_rebalance_timeout=max(session, 10.0),
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        web_enabled=False,
        autodiscover=False,
        datadir=args.workdir,
    )
    app.fetch_max_wait_ms = FETCH_MAX_WAIT_MS
    topic = app.topic(
        args.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )

    @app.agent(topic)
    async def score(stream: Any) -> None:
        async for value in stream:
            if tally.message(value):
                _write_result(args.result, tally.result())
                os.kill(os.getpid(), signal.SIGTERM)  # the worker stops cleanly on SIGTERM

    worker = faust.Worker(app, loglevel=logging.WARNING, loop=loop, quiet=True)
    worker.execute_from_commandline()


CHILDREN: dict[str, Callable[[argparse.Namespace, Tally], None]] = {
    "plain": _child_plain,
    "bytewax": _child_bytewax,
    "quixstreams": _child_quixstreams,
    "faust": _child_faust,
}


def _write_result(path: str, result: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    Path(tmp).write_bytes(orjson.dumps(result))
    os.replace(tmp, path)  # the parent sees the whole file or none


def run_child(args: argparse.Namespace) -> None:
    """The ``--child NAME`` mode: run one contender over ``--topic`` and write its result."""
    tally = Tally(args.events)
    CHILDREN[args.child](args, tally)
    if not Path(args.result).exists():
        _write_result(args.result, tally.result())


# -- the parent: broker, rounds, table ---------------------------------------------------------


@dataclass
class Outcome:
    """One contender's run over one topic: a rate and an anomaly count, or what went wrong."""

    rate: float | None = None
    anomalies: int | None = None
    problem: str | None = None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _log_tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])[-300:]


def _run_child(
    name: str,
    python: str,
    bootstrap: str,
    topic: str,
    events: int,
    workdir: Path,
    timeout: float,
) -> Outcome:
    result = workdir / "result.json"
    log = workdir / "log.txt"
    cmd = [python, str(Path(__file__).resolve()), "--child", name]
    cmd += ["--bootstrap", bootstrap, "--topic", topic, "--events", str(events)]
    cmd += ["--group", f"peers-{workdir.name}", "--result", str(result), "--workdir", str(workdir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while not result.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if result.exists():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)  # let it stop by itself (leave its group, close clients)
        elif proc.poll() is None:
            return Outcome(problem=f"timeout after {timeout:.0f}s")
    finally:
        _stop(proc)
    if not result.exists():
        return Outcome(problem=f"exited {proc.returncode}: {_log_tail(log)}")
    r = orjson.loads(result.read_bytes())
    if not r["seconds"]:
        return Outcome(problem=f"stopped after {r['events']} of {events} events")
    return Outcome(rate=r["timed_events"] / r["seconds"], anomalies=r["anomalies"])


def _kestrel_config(
    bootstrap: str, run: str, topic: str, port: int, data_dir: Path, name: str = "kestrel"
) -> str:
    """The worker's config for contender ``name`` (``kestrel``, ``kestrel-alerts`` or
    ``kestrel-default``)."""
    text = f"""
[kafka]
broker = "kafka://{bootstrap}"
app_id = "{run}"
partitions = {PARTITIONS}
session_timeout_seconds = {SESSION_TIMEOUT_MS / 1000}
fetch_max_wait_seconds = {FETCH_MAX_WAIT_MS / 1000}
[topics]
logs = "logs-{run}"
metrics = "{topic}"
alerts = "alerts-{run}"
dlq = "dlq-{run}"
alerts_dlq = "alerts-dlq-{run}"
silences = "silences-{run}"
[redis]
enabled = false
[cold_store]
enabled = false
[worker]
web_port = {port}
data_dir = "{data_dir}"
[[overrides]]
# Only zscore, as the peers do.
match = "*"
use = ["zscore"]
detectors.zscore.warmup = {WARMUP}
detectors.zscore.fading_factor = {FADING_FACTOR}
detectors.zscore.threshold = {THRESHOLD}
"""
    if name == "kestrel-alerts":
        # An alert fires on the first anomalous point (the spikes are 40 points apart; an alert
        # resolves after 5 normal ones), so alerts count anomalous points.
        text += "detectors.zscore.fire_after = 1\n"
    elif name == "kestrel-default":  # the default detectors, with their own settings
        text = text[: text.index("[[overrides]]")]
    return text


class _Counts(NamedTuple):
    """What a Kestrel worker's /metrics says of one run."""

    events: float  # consumed from the workload's topic
    fired: float  # alerts fired
    points: float  # anomalous points, every detector
    last: float  # wall-clock time its last input batch was judged


def _kestrel_counts(port: int, topic: str) -> _Counts:
    """The worker's :class:`_Counts` for ``topic``, from its /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    events = fired = points = last = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if family.name == "kestrel_last_batch_timestamp_seconds":
                last = s.value
            elif not s.name.endswith("_total"):
                continue
            elif family.name == "kestrel_events_consumed" and s.labels.get("topic") == topic:
                events = s.value
            elif family.name == "kestrel_alerts" and s.labels.get("status") == "firing":
                fired += s.value
            elif family.name == "kestrel_anomalous_points":
                points += s.value
    return _Counts(events, fired, points, last)


def _run_kestrel(
    bootstrap: str,
    topic: str,
    events: int,
    workdir: Path,
    timeout: float,
    profile: Path | None = None,
    name: str = "kestrel",
) -> Outcome:
    from engine.devtools.broker import free_port, wait_for_port

    port = free_port()
    cfg = workdir / "kestrel.toml"
    run = f"peers-{workdir.name}"
    cfg.write_text(_kestrel_config(bootstrap, run, topic, port, workdir, name))
    log = workdir / "log.txt"
    cmd = [sys.executable, "-m", "engine.cli", "worker", "--config", str(cfg)]
    if profile is not None:
        # py-spy samples the worker (100 Hz, native frames off) into a collapsed-stack file.
        profile.mkdir(parents=True, exist_ok=True)
        out_file = profile / f"kestrel-{workdir.name}.txt"
        cmd = [_py_spy(), "record", "--format", "raw", "--rate", "100", "-o", str(out_file), "--"]
        cmd += [sys.executable, "-m", "engine.cli", "worker", "--config", str(cfg)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--log-level", "warning"], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    try:
        if not wait_for_port("127.0.0.1", port, min(60.0, timeout)):
            return Outcome(problem=f"worker did not start: {_log_tail(log)}")
        # Timed from the last poll (every 50 ms, while the worker waits to join its group)
        # that saw nothing consumed, to the wall-clock time the worker says it judged its last
        # batch. Once the events flow it is polled only every 0.5 s: a scrape of /metrics costs
        # the worker a few ms, and polling it 20 times a second took 2-4% of its profile.
        first_t = None
        empty_t = time.time()
        n = last = 0.0
        while time.monotonic() < deadline and proc.poll() is None:
            counts = _kestrel_counts(port, topic)
            n, last = counts.events, counts.last
            if n == 0:
                empty_t = time.time()
            elif first_t is None:
                first_t = empty_t
            if n >= events:
                break
            time.sleep(0.05 if first_t is None else 0.5)
        else:
            if proc.poll() is not None:
                return Outcome(problem=f"worker exited {proc.returncode}: {_log_tail(log)}")
            return Outcome(problem=f"timeout after {timeout:.0f}s ({n:.0f} events)")
        assert first_t is not None
        rate = events / max(last - first_t, 1e-9)
        # Alerts are recorded just after their batch is counted: wait until the count settles.
        # ``kestrel`` shows its anomalous points; ``kestrel-alerts`` its alerts (one per
        # anomalous point), and ``kestrel-default`` its alerts (other work: shown, not compared).
        counted = "points" if name == "kestrel" else "fired"
        found = getattr(_kestrel_counts(port, topic), counted)
        settle = time.monotonic() + 5
        while time.monotonic() < settle:
            time.sleep(0.3)
            again = getattr(_kestrel_counts(port, topic), counted)
            if again == found:
                break
            found = again
        return Outcome(rate=rate, anomalies=int(found))
    finally:
        if profile is not None:
            # py-spy writes its file on SIGINT, then the worker is stopped as usual.
            proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            subprocess.run(["pkill", "-TERM", "-f", str(cfg)], check=False)
        _stop(proc)


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return found


def _has_package(python: str, package: str) -> bool:
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({package!r}) is None)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def _fmt_rate(outcomes: list[Outcome]) -> str:
    rates = [o.rate for o in outcomes if o.rate is not None]
    if rates:
        return f"{statistics.median(rates):,.0f}"
    problems = {(o.problem or "").split(" ", 1)[0] for o in outcomes}
    if problems == {"timeout"}:
        return "timeout"
    if problems == {"not"}:
        return "not installed"
    return "failed" if outcomes else "-"


def _median(outcomes: list[Outcome]) -> float | None:
    rates = [o.rate for o in outcomes if o.rate is not None]
    return statistics.median(rates) if rates else None


def _fmt_anomalies(outcomes: list[Outcome], expected: int) -> tuple[str, bool]:
    counts = sorted({o.anomalies for o in outcomes if o.anomalies is not None})
    if not counts:
        return "-", False
    wrong = any(c != expected for c in counts)
    return "/".join(f"{c:,}" for c in counts) + (" !" if wrong else ""), wrong


def print_table(
    names: Sequence[str],
    results: dict[str, dict[str, list[Outcome]]],
    expected: int,
    batch: int,
) -> None:
    """The table: events/s per message form, ratio to the plain loop, anomaly counts."""
    forms = ("single", "batched")
    header = (
        "contender",
        "single ev/s",
        "x plain",
        f"{batch}-event ev/s",
        "x plain",
        "anomalies single",
        "anomalies batched",
    )
    rows: list[tuple[str, ...]] = []
    marked: set[str] = set()
    base = {form: _median(results.get("plain", {}).get(form, [])) for form in forms}
    for name in names:
        cells = [LABELS[name]]
        for form in forms:
            outcomes = results[name][form]
            rate, ref = _median(outcomes), base[form]
            cells.append(_fmt_rate(outcomes))
            cells.append(f"{rate / ref:.2f}" if rate is not None and ref else "-")
        for form in forms:
            text, wrong = _fmt_anomalies(results[name][form], expected)
            if name in OTHER_WORK:
                text = text.rstrip(" !") + " alerts"
            elif wrong:
                marked.add(name)
            cells.append(text)
        rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        pairs = enumerate(zip(row, widths, strict=True))
        cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in pairs]
        print("  ".join(cells))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    ratios = []
    for form in forms:
        zscore = _median(results.get("kestrel", {}).get(form, []))
        default = _median(results.get("kestrel-default", {}).get(form, []))
        if zscore and default:
            ratios.append(f"{form} {default / zscore:.2f}")
    if ratios:
        print(f"Kestrel's default detectors / zscore: {', '.join(ratios)}")
    line = f"expected anomalies: {expected:,} (the injected spikes)"
    if marked:
        line += f"; '!' marks a count that differs: {', '.join(sorted(marked))}"
    print(line)
    problems = [
        f"  {name} ({form}, round {i + 1}): {o.problem}"
        for name in names
        for form in forms
        for i, o in enumerate(results[name][form])
        if o.problem
    ]
    if problems:
        print("problems:")
        print("\n".join(problems))


def _peers_python(arg: str | None) -> str:
    if arg:
        return arg
    candidate = REPO / ".venv-peers" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def run_bench(args: argparse.Namespace) -> None:
    """The parent: start the broker, publish each round's topics, run the contenders, print."""
    sys.path.insert(0, str(REPO))
    from engine.devtools.broker import EmbeddedBroker

    names = list(CONTENDERS)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in CONTENDERS]
        if unknown:
            raise SystemExit(f"--only: unknown contender(s) {unknown}; known: {CONTENDERS}")
        names = [n for n in CONTENDERS if n in wanted]
    peers_python = _peers_python(args.peers_python)
    pythons = {n: peers_python if n in PEER_PACKAGES else sys.executable for n in names}
    missing = {
        n for n in names if n in PEER_PACKAGES and not _has_package(pythons[n], PEER_PACKAGES[n])
    }
    t_start = time.monotonic()
    workload = make_workload(args.events, args.series, args.batch, args.spike_every)
    print(
        f"{args.events:,} events over {args.series:,} series, {PARTITIONS} partitions, "
        f"{workload.injected:,} injected spikes; single-event messages: {len(workload.single):,}, "
        f"{args.batch}-event messages: {len(workload.batched):,}; {args.rounds} round(s)",
        flush=True,
    )
    if workload.expected != workload.injected:
        print(f"note: the reference loop finds {workload.expected:,} anomalies", flush=True)
    if not workload.injected:
        print("note: no spike fits in the series, so the anomaly counts prove nothing", flush=True)
    for n in sorted(missing):
        print(f"{n}: not installed in {pythons[n]} (make bench-peers installs it)", flush=True)
    results: dict[str, dict[str, list[Outcome]]] = {n: {"single": [], "batched": []} for n in names}
    with (
        tempfile.TemporaryDirectory(prefix="kestrel-peers-") as d,
        EmbeddedBroker(log_path=Path(d) / "broker.log").running() as broker,
    ):
        tmp = Path(d)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for form in ("single", "batched"):
                topic = f"peers-{form}-{r}-{os.getpid()}"
                messages = workload.single if form == "single" else workload.batched
                asyncio.run(_publish(broker.bootstrap, topic, messages))
                for name in order:
                    if name in missing:
                        results[name][form].append(Outcome(problem="not installed"))
                        continue
                    workdir = tmp / f"{name}-{form}-{r}"
                    workdir.mkdir()
                    if name.startswith("kestrel"):
                        outcome = _run_kestrel(
                            broker.bootstrap,
                            topic,
                            args.events,
                            workdir,
                            args.timeout,
                            Path(args.profile) if args.profile else None,
                            name=name,
                        )
                    else:
                        outcome = _run_child(
                            name,
                            pythons[name],
                            broker.bootstrap,
                            topic,
                            args.events,
                            workdir,
                            args.timeout,
                        )
                    results[name][form].append(outcome)
                    shown = outcome.problem or f"{outcome.rate:,.0f} events/s"
                    if outcome.anomalies is not None:
                        shown += f", {outcome.anomalies:,} anomalies"
                    print(f"round {r + 1} {form:7} {name:15} {shown}", flush=True)
    print()
    print_table(names, results, workload.expected, args.batch)
    print(f"({time.monotonic() - t_start:.0f} s in all)")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="events in the workload")
    ap.add_argument("--series", type=int, default=1000, help="series the events are spread over")
    ap.add_argument("--batch", type=int, default=100, help="events per message in batched form")
    ap.add_argument("--rounds", type=int, default=1, help="rounds; the median is shown")
    ap.add_argument(
        "--spike-every",
        type=int,
        default=SPIKE_EVERY,
        help="spikes are injected at the points of each series that are multiples of this, from "
        f"point {FIRST_SPIKE} on (more than 5: each spike's alert resolves before the next)",
    )
    ap.add_argument("--only", help=f"comma-separated contenders among {','.join(CONTENDERS)}")
    ap.add_argument(
        "--timeout", type=float, default=300.0, help="seconds one contender may take on one topic"
    )
    ap.add_argument(
        "--profile",
        metavar="DIR",
        help="run the Kestrel worker under py-spy and write its collapsed stacks to DIR",
    )
    ap.add_argument(
        "--peers-python",
        help="the Python that has bytewax and quixstreams (default: .venv-peers/bin/python "
        "if it exists, else this one)",
    )
    for hidden in ("--child", "--bootstrap", "--topic", "--group", "--result", "--workdir"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_child(args)
    else:
        if args.events < 1 or args.series < 1 or args.batch < 1 or args.rounds < 1:
            raise SystemExit("--events, --series, --batch and --rounds must be at least 1")
        if args.spike_every <= 5:
            raise SystemExit("--spike-every must be more than 5 (zscore's resolve_after)")
        run_bench(args)


if __name__ == "__main__":
    main()
