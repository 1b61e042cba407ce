"""The cold store's speed: rows/s of the store alone, and the worker's detection with it on/off.

    python bench/cold_store.py [--rows 200000] [--batch 5000] [--postgres-url URL]
                               [--events 100000] [--broker tansu|apache] [--skip-worker]
                               [--writers 2] [--repeat 1]

1. The store alone: ``--rows`` cold event rows written in transactions of ``--batch`` rows into
   PostgreSQL (a private server started with initdb/pg_ctl from Debian's postgresql package,
   unless ``--postgres-url`` names one; that private server runs with fsync off, as the tests
   run it: a durable server on a real disk is slower), once with one writer and once with
   ``--writers`` (``[cold_store] writers``: batches written at once, each over its own
   connection, as the consumer has them; each into a fresh database; ``--repeat`` runs of
   each, in turn, with their minimum, median and maximum), and into SQLite
   (a file in a temporary directory). Then the same rows again (a replay: every row a duplicate).
   Also the cost of making the rows from Kafka records (decoding included), which the consumer
   pays in its thread, and the CPU time per new row of this process and of the PostgreSQL
   server's backends (figures a loaded machine changes less than rows/s).
2. The worker: ``--events`` single-event log messages (70 % of a cold type) are published, then
   a worker with the cold store off, and one with it on (SQLite, the default), each consume
   them all (each its own consumer groups: the same events every run); events/s of detection
   from the worker's /metrics, as bench/throughput.py measures. ``--rounds`` pairs, in turn
   off-on and on-off (the machine's load drifts); the medians are compared.

Prints figures; asserts nothing (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from throughput import (  # noqa: E402
    BenchWorker,
    _publish,
    consumed_events,
    cpu_seconds,
    running_broker,
    worker_config,
)

from engine.config import ColdStoreSettings, Config  # noqa: E402
from engine.devtools.broker import free_port  # noqa: E402
from engine.formats import build_decoder  # noqa: E402
from engine.runtime.cold_store import rows_of  # noqa: E402
from engine.sinks.cold_store import EventRow, Written, open_store  # noqa: E402

COLD = ("task_created", "task_completed", "tool_executed", "llm_completion", "cost_tracking")
HOT = ("thought", "stream_delta")
T0 = 1_780_000_000.0


def _events(n: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(n):
        etype = rng.choice(COLD) if rng.random() < 0.7 else rng.choice(HOT)
        doc = {
            "timestamp": T0 + i / 100,
            "level": "INFO",
            "service": f"svc-{i % 20}",
            "type": etype,
            "message": f"{etype} for task {rng.randint(1000, 9999)}",
            "session_id": f"s-{rng.randint(1, 500)}",
            "user_id": f"u-{rng.randint(1, 100)}",
            "trace_id": f"{rng.getrandbits(64):016x}",
            "context": {"attempt": 1, "model": "gpt-large"},
            "performance_data": {"operation": "tool_call", "duration_ms": rng.gauss(120, 10)},
        }
        out.append(orjson.dumps(doc))
    return out


def _records(values: list[bytes]) -> dict[object, list[object]]:
    from aiokafka import TopicPartition

    tp = TopicPartition("logs", 0)
    return {
        tp: [
            SimpleNamespace(offset=i, value=v, timestamp=int(T0 * 1000))
            for i, v in enumerate(values)
        ]
    }


def _rows(values: list[bytes]) -> tuple[list[EventRow], float]:
    cfg = Config()
    decoders = {spec.topic: build_decoder(spec) for spec in cfg.inputs() if spec.kind == "log"}
    records = _records(values)  # (the consumer gets these from aiokafka: not timed)
    started = time.perf_counter()
    rows, _ = rows_of(
        records,  # type: ignore[arg-type]
        source="bench",
        decoders=decoders,
        alerts_topic=None,
        cold_types=frozenset(COLD),
        max_message_bytes=1 << 20,
        max_future_seconds=1e12,
    )
    return rows, time.perf_counter() - started


def _store_rate(
    url: str, rows: list[EventRow], batch: int, writers: int = 1
) -> tuple[float, float, str]:
    """Rows/s of new rows, then of the same rows again (all duplicates), and the CPU time per
    new row of this process and of the PostgreSQL server's backends (what a loaded machine
    hides). Batches are submitted as the consumer submits them: up to ``writers`` written at
    once and one more waiting, each waited for in order."""
    store = open_store(url, writers=writers)
    store.migrate()
    for _ in range(writers):  # connected, partition made
        store.write(rows[:1], [])
    rates, cpu = [], ""
    for _ in range(2):
        backends = _backends(url)
        client, server = cpu_seconds(os.getpid()), sum(map(cpu_seconds, backends))
        started = time.perf_counter()
        in_flight: deque[Future[Written]] = deque()
        for i in range(1, len(rows), batch):
            in_flight.append(store.submit(rows[i : i + batch], []))
            while in_flight and (in_flight[0].done() or len(in_flight) > writers):
                in_flight.popleft().result()
        for future in in_flight:
            future.result()
        rates.append((len(rows) - 1) / (time.perf_counter() - started))
        if not cpu:
            per = 1e6 / (len(rows) - 1)
            cpu = f"CPU per new row: client {(cpu_seconds(os.getpid()) - client) * per:.1f} µs"
            if backends:
                server = sum(map(cpu_seconds, backends)) - server
                cpu += f", server backends {server * per:.1f} µs"
    store.close()
    return rates[0], rates[1], cpu


def _backends(url: str) -> list[int]:
    """The process ids of the server's backends of ``url``'s database (none for SQLite)."""
    if not url.startswith("postgres"):
        return []
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


@contextmanager
def _postgres(url: str | None) -> Iterator[Callable[[str], str] | None]:
    """A maker of fresh databases on a private server (``None`` when ``url`` names one)."""
    if url:
        yield None
        return
    from tests.testkit import PostgresServer  # initdb + pg_ctl, as the tests do

    server = PostgresServer()
    server.start()
    try:
        yield server.create_database
    finally:
        server.remove()


def _detection_rate(
    broker: object, tmp: Path, label: str, topic_run: str, n: int, on: bool
) -> float:
    port = free_port()
    cfg = tmp / f"{label}.toml"
    text = worker_config(broker, topic_run, port).replace(  # type: ignore[arg-type]
        f'app_id = "bench-{topic_run}"', f'app_id = "bench-{label}-{os.getpid()}"'
    )
    store = f'url = "sqlite:///{tmp}/{label}.db"\n' if on else ""
    cfg.write_text(text + f"\n[cold_store]\nenabled = {str(on).lower()}\n{store}")
    worker = BenchWorker(cfg, port, tmp / f"{label}.log")
    topic = f"logs-{topic_run}"
    try:
        first_t = None
        empty_t = time.monotonic()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            got = consumed_events(port, topic)
            now = time.monotonic()
            if got == 0:
                empty_t = now
            elif first_t is None:
                first_t = empty_t
            if got >= n:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{label}: only {got} of {n} events consumed")
        assert first_t is not None
        return n / max(now - first_t, 1e-9)
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--postgres-url")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--broker", default="tansu", choices=["tansu", "apache"])
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs of worker runs")
    parser.add_argument("--skip-worker", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of the store alone per writer setting"
    )
    parser.add_argument(
        "--writers",
        type=int,
        default=ColdStoreSettings().writers,
        help="PostgreSQL connections a batch is written over (also measured with 1)",
    )
    args = parser.parse_args()

    rng = random.Random(7)
    values = _events(int(args.rows / 0.7) + 1000, rng)
    rows, took = _rows(values)
    rows = rows[: args.rows]
    print(f"rows from records (decode + row): {len(values) / took:,.0f} records/s, "
          f"{len(rows):,} cold rows")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kestrel-bench-cold-") as tmp:
        with _postgres(args.postgres_url) as database:
            # A fresh database per run (a given one: only --writers, its rows would be stored).
            settings = sorted({1, args.writers}) if database else [args.writers]
            rates: dict[int, list[float]] = {w: [] for w in settings}
            for run in range(args.repeat if database else 1):
                for writers in settings if run % 2 == 0 else settings[::-1]:  # (load drifts)
                    url = database(f"bench{writers}_{run}") if database else args.postgres_url
                    new, dup, cpu = _store_rate(url, rows, args.batch, writers)
                    rates[writers].append(new)
                    print(f"postgresql, {writers} writer(s): {new:,.0f} rows/s new, {dup:,.0f} "
                          f"rows/s replayed (duplicates), batches of {args.batch}; {cpu}; load "
                          f"average {os.getloadavg()[0]:.2f}")  # fmt: skip
            for writers, got in rates.items():
                if len(got) > 1:
                    print(f"postgresql, {writers} writer(s), {len(got)} runs: new rows/s min "
                          f"{min(got):,.0f}, median {statistics.median(got):,.0f}, max "
                          f"{max(got):,.0f}")  # fmt: skip
        new, dup, cpu = _store_rate(f"sqlite:///{tmp}/bench.db", rows, args.batch)
        print(f"sqlite: {new:,.0f} rows/s new, {dup:,.0f} rows/s replayed (duplicates); {cpu}")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        if args.skip_worker:
            return
        tmp_path = Path(tmp)
        with running_broker(args.broker, tmp_path) as broker:
            run = f"cold{os.getpid()}"
            messages = [
                (f"svc-{i % 20}".encode(), v) for i, v in enumerate(_events(args.events, rng))
            ]
            asyncio.run(_publish(broker.bootstrap, f"logs-{run}", messages))
            off, on = [], []
            for r in range(args.rounds):
                for store_on in (False, True) if r % 2 == 0 else (True, False):  # ABBA order
                    label = f"{'on' if store_on else 'off'}{r}"
                    rate = _detection_rate(broker, tmp_path, label, run, args.events, store_on)
                    (on if store_on else off).append(rate)
                print(f"round {r + 1}: detection {off[-1]:,.0f} events/s store off, "
                      f"{on[-1]:,.0f} events/s store on")  # fmt: skip
            mid_off, mid_on = statistics.median(off), statistics.median(on)
            print(f"detection (median of {args.rounds}): store off {mid_off:,.0f} events/s, "
                  f"store on {mid_on:,.0f} events/s ({mid_on / mid_off - 1:+.1%}); "
                  f"{args.events:,} single-event log messages, {args.broker}")  # fmt: skip


if __name__ == "__main__":
    main()
