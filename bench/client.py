"""What ``kestrel_client`` costs an application: per logging call, and end to end.

    python bench/client.py [--records 50000] [--bootstrap HOST:PORT] [--records-per-message 100]

Without ``--bootstrap`` it starts the embedded Tansu broker (``kestrel broker``'s). Three runs of
``--records`` structured-logger calls (one service, a small context):

* ``up``: the broker is up. ``us/call`` is the caller's time per ``log.info`` (encode and queue);
  ``records/s`` is until ``flush`` says the broker acknowledged them all;
* ``handler``: the same through ``logging`` and :class:`~kestrel_client.KestrelHandler` (the
  logging module's own cost included);
* ``down``: no broker listens: the caller's cost, and until everything is in the spool.

Prints a table; asserts nothing (the machine is shared and noisy: compare runs on one machine).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.devtools.broker import EmbeddedBroker, free_port  # noqa: E402
from kestrel_client import KestrelHandler, Publisher, StructuredLogger  # noqa: E402


def run(name: str, bootstrap: str, records: int, per_message: int) -> tuple[str, float, float, str]:
    """One run: (name, microseconds per call, records per second to the end, final stats)."""
    topic = f"bench-client-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(
        bootstrap,
        topic,
        spool_dir=tempfile.mkdtemp(),
        retry_seconds=60,
        max_queue=records + 1,
        records_per_message=per_message,
    )
    started = time.perf_counter()
    if name == "handler":
        logger = logging.getLogger(f"bench.{topic}")
        logger.addHandler(KestrelHandler(publisher, service="bench"))
        logger.propagate = False
        logger.setLevel(logging.INFO)
        for i in range(records):
            logger.info("request served", extra={"session_id": "s1", "n": i})
    else:
        log = StructuredLogger("bench", publisher)
        for i in range(records):
            log.info("request served", session_id="s1", n=i)
    calls = time.perf_counter() - started
    publisher.flush(300, while_down=False)
    total = time.perf_counter() - started
    stats = publisher.stats
    publisher.close(30)
    summary = f"sent={stats.sent} spooled={stats.spooled} dropped={stats.dropped}"
    return name, calls / records * 1e6, records / total, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--bootstrap", help="a running broker (default: start Tansu)")
    parser.add_argument(
        "--records-per-message", type=int, default=100, help="1: one Kafka message per record"
    )
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap
    try:
        rows = [
            run(name, bootstrap, args.records, args.records_per_message)
            for name in ("up", "handler")
        ]
    finally:
        if broker is not None:
            broker.stop()
    rows.append(run("down", f"127.0.0.1:{free_port()}", args.records, args.records_per_message))
    print(f"{'run':8} {'us/call':>8} {'records/s':>10}  outcome ({args.records} records)")
    for name, per_call, rate, summary in rows:
        print(f"{name:8} {per_call:8.1f} {rate:10.0f}  {summary}")


if __name__ == "__main__":
    main()
