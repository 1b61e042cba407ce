"""Memory per tracked series: the worker's decision code holding N series, measured as RSS.

    python bench/memory.py [--series 100000,1000000] [--detectors zscore,adaptive]

Each (detector, N) runs in a fresh process: it decodes N metric samples of N distinct series
(two labels each, as the worker's ``kestrel_json`` decoder reads them) and feeds them to a
:class:`~engine.core.pipeline.Pipeline` configured to run that detector on metrics, three rounds
(so every series is past its first point), then checkpoints once, a chunk at a time as the
worker does (the writes are dropped, as the worker's table drops its copy of states still in
memory). It prints the process's resident
set size before, after filling and after the checkpoint, and the growth per series in bytes
(the checkpoint's transient writes can leave the allocator's heap larger). Asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rss_bytes(pid: int | str = "self") -> int:
    """The resident set size of process ``pid`` (this one by default), in bytes (Linux)."""
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child(kind: str, n: int) -> None:
    sys.path.insert(0, str(REPO))
    import random

    import orjson

    from engine.config import parse_config
    from engine.core.pipeline import Pipeline
    from engine.formats.kestrel_json import decode_message

    cfg = parse_config(
        {"series": {"metric_detectors": [kind]}, "worker": {"max_series": n + 1}}, "bench", {}
    )
    pipeline = Pipeline(cfg)
    rng = random.Random(1)
    out: list[object] = []
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    for round_ in range(3):
        for i in range(n):
            message = orjson.dumps(
                {
                    "name": f"llm_latency_ms_{i % 50}",
                    "value": rng.gauss(100.0, 5.0),
                    "timestamp": 1_700_000_000 + round_ * 10,
                    "labels": {"model": f"model-{i // 50}", "region": f"r{i % 7}"},
                }
            )
            for sample in decode_message(message, "metric").events:
                pipeline.metric(sample, 0, out)  # type: ignore[arg-type]
    gc.collect()
    filled = rss_bytes()
    for _chunk in pipeline.checkpoint_chunks():  # as the worker writes them: a chunk at a time
        pass
    gc.collect()
    after = rss_bytes()
    seconds = time.perf_counter() - started
    counts = pipeline.series_counts()
    print(
        f"{kind:>9} {n:>9,} series: RSS {before / 2**20:7.1f} -> {filled / 2**20:7.1f} MiB, "
        f"{(filled - before) / n:6.0f} bytes/series; after a checkpoint of them all "
        f"{(after - before) / n:6.0f} "
        f"(tracked {counts['metric']:,}; {3 * n / seconds:,.0f} samples/s while filling)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", default="100000,1000000")
    ap.add_argument("--detectors", default="zscore,adaptive")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return
    for kind in args.detectors.split(","):
        for n in (int(x) for x in args.series.split(",")):
            subprocess.run(
                [sys.executable, __file__, "--child", kind, str(n)], check=False, timeout=1800
            )


if __name__ == "__main__":
    main()
