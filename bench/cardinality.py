"""Memory under a label explosion: a worker's pipeline fed N new series, with the series limit.

    python bench/cardinality.py [--series 100000,1000000] [--limit 50000] [--cache 10000]
                                [--unlimited 100000] [--detector adaptive]

Each run is a fresh process. It feeds N metric samples, each of a new series (a ``user`` label
with a new value every sample: the label explosion of issue 9), through the worker's decoder
and :class:`~engine.core.pipeline.Pipeline` the way the worker does: the pipeline's cache holds
``--cache`` states (``worker.max_series``); evicted states go to a dict standing for the
changelog table, which a worker keeps in memory too and which counts toward the limit
(``worker.max_tracked_series`` = ``--limit``); changed states are checkpointed every 5,000
samples, and the pipeline ticks once a second of the feed's own time. Every tenth of the run it
prints the process's RSS, the states tracked (in memory + in the table) and the events of
series left untracked. For comparison, ``--unlimited`` runs the same feed with no effective
limit (only 100k by default: a million unlimited series would take many GB). Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # before bench/ (this script's folder), which has a detectors.py

from memory import rss_bytes  # noqa: E402  (bench/memory.py, found in this script's folder)

T0 = 1_700_000_000.0
CHECKPOINT_EVERY = 5_000


def _child(n: int, limit: int, cache: int, detector: str) -> None:
    import orjson

    from engine.config import parse_config
    from engine.core.pipeline import Pipeline, StateWrite
    from engine.core.series_limit import SeriesLimit
    from engine.formats import DecodeContext, KestrelJsonDecoder
    from engine.model.alert import Alert

    cfg = parse_config(
        {
            "worker": {"max_series": cache, "max_tracked_series": limit},
            "series": {"metric_detectors": [detector], "pattern_detectors": []},
        },
        "bench",
        {},
    )
    table: dict[bytes, bytes] = {}

    def write(writes: list[StateWrite]) -> None:  # as engine/runtime/ingest.py does
        for w in writes:
            if w.resident:
                table.pop(w.key, None)
            else:
                table[w.key] = w.value

    series_limit = SeriesLimit.for_config(cfg, stored=lambda: len(table))
    pipeline = Pipeline(cfg, loader=lambda key: table.pop(key, None), series_limit=series_limit)
    decoder = KestrelJsonDecoder("metric")
    context = DecodeContext("metrics")
    out: list[Alert] = []
    self_alerts: list[Alert] = []
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    label = f"limit {limit:,}" if limit <= n else "no limit"
    print(f"{n:,} new series, {label}, cache {cache:,}, {detector}: RSS {before / 2**20:.0f} MiB")
    columns = ("fed", 10), ("RSS MiB", 8), ("growth", 8), ("in memory", 10), ("in table", 9)
    print(" ".join(f"{c:>{w}}" for c, w in columns), f"{'untracked':>10}")
    step = max(1, n // 10)
    for i in range(n):
        ts = T0 + i / 1000.0  # a thousand samples a second of event time
        message = orjson.dumps(
            {
                "name": "signups",
                "value": float(i % 7),
                "timestamp": ts,
                "labels": {"user": f"user-{i}", "region": f"r{i % 7}"},
            }
        )
        for sample in decoder(message, context).events:
            pipeline.metric(sample, i % 4, out)  # type: ignore[arg-type]
        if (i + 1) % CHECKPOINT_EVERY == 0:
            write(pipeline.checkpoint())
        if i % 1000 == 999:
            self_alerts += pipeline.tick(ts)
        if (i + 1) % step == 0:
            write(pipeline.checkpoint())  # so that every evicted state is in the table
            gc.collect()
            rss = rss_bytes()
            in_memory = sum(pipeline.series_counts().values())
            print(
                f"{i + 1:>10,} {rss / 2**20:>8.0f} {(rss - before) / 2**20:>+8.0f} "
                f"{in_memory:>10,} {len(table):>9,} {series_limit.total:>10,}",
                flush=True,
            )
    seconds = time.perf_counter() - started
    after = rss_bytes()
    tracked = sum(pipeline.series_counts().values()) + len(table)
    print(
        f"  -> {(after - before) / 2**20:+.0f} MiB for {tracked:,} tracked series "
        f"({(after - before) / max(tracked, 1):,.0f} bytes each), {series_limit.total:,} events "
        f"untracked; {n / seconds:,.0f} samples/s; self-alerts: "
        f"{[(a.series, a.status.value, a.value) for a in self_alerts][:3]}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default="100000,1000000", help="new series fed, per run")
    ap.add_argument("--limit", type=int, default=50_000, help="worker.max_tracked_series")
    ap.add_argument("--cache", type=int, default=10_000, help="worker.max_series")
    ap.add_argument("--unlimited", default="100000", help="runs without a limit, for comparison")
    ap.add_argument("--detector", default="adaptive", help="the metric detector")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        n, limit, cache = (int(x) for x in args.child[:3])
        _child(n, limit, cache, args.child[3])
        return
    runs = [(int(n), args.limit) for n in args.series.split(",") if n]
    runs += [(int(n), int(n) + 1) for n in args.unlimited.split(",") if n]
    for n, limit in runs:
        cmd = [sys.executable, __file__, "--child", str(n), str(limit), str(args.cache)]
        subprocess.run([*cmd, args.detector], check=False, timeout=3600)
        print(flush=True)


if __name__ == "__main__":
    main()
