"""What ``[metrics] export_series`` costs: per event, and per scrape.

    python bench/series_export.py [--events 200000] [--series 1000] [--rounds 3]

The same samples (``--series`` series, values 100 +/- 10, in timestamp order) go through
:meth:`engine.core.pipeline.Pipeline.metric` with the default detectors, once with no series
exported and once with every series exported (``export_series = ["*"]``, the cap raised to
``--series``); then the exported gauges are rendered as Prometheus text once per round (a
scrape). Prints the best of ``--rounds`` rounds in CPU time (``time.process_time``). Asserts
nothing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest

from engine.config import parse_config
from engine.core.pipeline import Pipeline
from engine.model.alert import Alert
from engine.model.events import MetricSample
from engine.runtime.series_metrics import SeriesCollector


def _samples(events: int, series: int) -> list[MetricSample]:
    rng = random.Random(1)
    return [
        MetricSample(f"load_{i % series}", 100.0 + rng.uniform(-10, 10), 1.7e9 + i // series, {})
        for i in range(events)
    ]


def _run(samples: list[MetricSample], metrics: dict[str, object]) -> tuple[float, Pipeline]:
    pipeline = Pipeline(parse_config({"metrics": metrics}, "bench"))
    out: list[Alert] = []
    started = time.process_time()
    for s in samples:
        pipeline.metric(s, 0, out)
    return time.process_time() - started, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples = _samples(args.events, args.series)
    every = {"export_series": ["*"], "export_max_series": args.series}
    best: dict[str, float] = {}
    scrape = float("inf")
    size = 0
    for _ in range(args.rounds):
        for name, metrics in (("none exported", {}), ("all exported", every)):
            seconds, pipeline = _run(samples, metrics)
            best[name] = min(best.get(name, float("inf")), seconds)
            if name == "all exported":
                registry = CollectorRegistry()
                registry.register(SeriesCollector(pipeline.exported_views))
                started = time.process_time()
                text = generate_latest(registry)
                scrape = min(scrape, time.process_time() - started)
                size = len(text)
    for name, seconds in best.items():
        print(
            f"{name:>14}: {seconds / args.events * 1e6:6.2f} us/event "
            f"({args.events / seconds:,.0f}/s)"
        )
    print(
        f"scrape of {args.series} exported series: {scrape * 1e3:.1f} ms CPU, {size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
