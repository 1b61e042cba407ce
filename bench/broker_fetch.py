"""A broker's own share of latency: fetch round trips of a plain consumer under a steady load.

    python bench/broker_fetch.py [--broker tansu|apache] [--rate 130000] [--seconds 40]

A child process publishes ``--rate`` single-event messages a second (the background load of
``bench/throughput.py``) while a plain aiokafka consumer (no group, ``fetch_max_wait_ms`` 50,
no work per record) reads them. Every 5 s it prints the fetches it made a second, the records
each brought, and the slowest ``getmany``. A broker that keeps up returns as fast as records
arrive; one whose fetches slow down as its partitions grow shows it here, with no Kestrel code
involved. Measured on a 2-core machine at 130,000 events/s: Tansu's fetches went from 53 to 16
a second over 35 s (2,300 then 8,000 records each, the slowest 71-114 ms after the first 5 s),
Apache Kafka's stayed at 136-146 a second (900-960 records: the load's 10 ms ticks; the slowest
30-39 ms). So latency under a sustained load is measured on Apache Kafka
(``bench/throughput.py --broker apache``).

Prints figures; asserts nothing (the machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent))

import throughput

WINDOW_SECONDS = 5.0


async def measure(broker: str, rate: float, seconds: float) -> None:
    """Print the fetch figures per 5 s window while ``rate`` events/s arrive for ``seconds``."""
    with (
        tempfile.TemporaryDirectory(prefix="kestrel-bench-") as d,
        throughput.running_broker(broker, Path(d)) as running,
    ):
        topic = "fetch-bench"
        await throughput._create_topic(running.bootstrap, topic)
        load = throughput._start_background(running.bootstrap, topic, rate, seconds + 5, 1000)
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=running.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            started = window = time.monotonic()
            fetches = records = 0
            slowest = 0.0
            while time.monotonic() - started < seconds:
                t0 = time.perf_counter()
                got = await consumer.getmany(timeout_ms=1000)
                slowest = max(slowest, time.perf_counter() - t0)
                fetches += 1
                records += sum(map(len, got.values()))
                now = time.monotonic()
                if now - window >= WINDOW_SECONDS:
                    span = now - window
                    print(
                        f"{broker} t={now - started:4.0f} s: {fetches / span:,.0f} fetches/s, "
                        f"{records / span:,.0f} records/s, {records / fetches:,.0f} records "
                        f"a fetch, slowest {slowest * 1000:.0f} ms",
                        flush=True,
                    )
                    window, fetches, records, slowest = now, 0, 0, 0.0
        finally:
            await consumer.stop()
            load.kill()
            load.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broker", choices=("tansu", "apache"), default="tansu")
    ap.add_argument("--rate", type=float, default=130_000, help="events/s of the load")
    ap.add_argument("--seconds", type=float, default=40.0, help="how long to measure")
    args = ap.parse_args()
    asyncio.run(measure(args.broker, args.rate, args.seconds))


if __name__ == "__main__":
    main()
