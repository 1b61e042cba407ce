"""Log template mining on the Loghub-2k samples: grouping accuracy, parsing accuracy, lines/s.

    python bench/loghub_eval.py [--engine kestrel|drain3|both] [--repeat 5] [--out DIR]
                                [--similarity 0.5] [--depth 1] [--loghub ../shared/loghub]

Feeds each data set's ``Content`` column, in file order, to the miner with its default settings
(the same for every data set), writes ``DIR/<engine>/<Name>_2k.csv`` (``LineId``, ``template_id``,
``template``: the final template of the line's group) and scores it with the data's own
``score.py`` (grouping accuracy GA, parsing accuracy PA). Lines/s is the best of ``--repeat`` runs
of the miner alone (masking, matching, learning; no file reading) on one core, so a loaded machine
lowers it less; it is a figure, not a pass mark.

``drain3`` (``pip install drain3``; a bench-only package, Kestrel does not depend on it) runs with
its own defaults (no masking, similarity 0.4, depth 4), i.e. no per-data-set settings either.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.log_templates import TemplateMiner  # noqa: E402

#: A miner run: the messages in, each line's (group id, final template) out.
Runner = Callable[[list[str]], tuple[list[str], list[str]]]


def kestrel_runner(similarity: float | None, depth: int | None) -> Runner:
    """Kestrel's :class:`TemplateMiner` (defaults unless given)."""
    kwargs: dict[str, float | int] = {}
    if similarity is not None:
        kwargs["similarity"] = similarity
    if depth is not None:
        kwargs["depth"] = depth

    def run(messages: list[str]) -> tuple[list[str], list[str]]:
        miner = TemplateMiner(**kwargs)  # type: ignore[arg-type]
        add = miner.add
        found = [add(m)[0] for m in messages]
        return [t.id for t in found], [t.text for t in found]

    return run


def drain3_runner() -> Runner:
    """drain3's ``TemplateMiner`` with its default config (raises ImportError without drain3)."""
    import logging

    from drain3 import TemplateMiner as Drain3Miner  # type: ignore[import-not-found,unused-ignore]
    from drain3.template_miner_config import (  # type: ignore[import-not-found,unused-ignore]
        TemplateMinerConfig,
    )

    logging.getLogger("drain3").setLevel(logging.ERROR)

    def run(messages: list[str]) -> tuple[list[str], list[str]]:
        config = TemplateMinerConfig()
        config.profiling_enabled = False
        miner = Drain3Miner(config=config)
        add = miner.add_log_message
        clusters = [add(m)["cluster_id"] for m in messages]
        by_id = {c.cluster_id: c.get_template() for c in miner.drain.clusters}
        return [str(c) for c in clusters], [by_id[c] for c in clusters]

    return run


def _load_score(loghub: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("loghub_score", loghub / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no score.py in {loghub}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(
    runner: Runner, loghub: Path, out: Path, repeat: int
) -> dict[str, tuple[float, float | None, float]]:
    """Per data set: (GA, PA, lines/s)."""
    score = _load_score(loghub)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for truth in sorted(loghub.glob("*_2k.csv")):
        rows = score.read_rows(truth)
        messages = [r["Content"] for r in rows]
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            ids, templates = runner(messages)
            best = min(best, time.perf_counter() - started)
        # The final template of each line's group (a group's template generalises as it learns).
        final = dict(zip(ids, templates, strict=True))
        pred = out / truth.name
        with pred.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["LineId", "template_id", "template"])
            for row, tid in zip(rows, ids, strict=True):
                writer.writerow([row["LineId"], tid, final[tid]])
        scored = score.score_one(truth, pred)
        results[truth.name.removesuffix("_2k.csv")] = (scored["GA"], scored["PA"], len(rows) / best)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the engines, print one table per engine and the mean."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", choices=["kestrel", "drain3", "both"], default="both")
    ap.add_argument("--loghub", type=Path, default=REPO.parent / "shared" / "loghub")
    ap.add_argument("--out", type=Path, help="where predictions go (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per data set; the fastest counts")
    ap.add_argument("--similarity", type=float, help="override the miner's similarity")
    ap.add_argument("--depth", type=int, help="override the miner's routing depth")
    args = ap.parse_args(argv)
    engines: list[tuple[str, Runner]] = []
    if args.engine in ("kestrel", "both"):
        engines.append(("kestrel", kestrel_runner(args.similarity, args.depth)))
    if args.engine in ("drain3", "both"):
        try:
            engines.append(("drain3", drain3_runner()))
        except ImportError:
            print("drain3 is not installed (pip install drain3): skipping it", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for name, runner in engines:
            results = evaluate(runner, args.loghub, out / name, args.repeat)
            print(f"{name}:")
            print(f"  {'data set':12s} {'GA':>7s} {'PA':>7s} {'lines/s':>10s}")
            for ds, (ga, pa, speed) in results.items():
                pa_text = "-" if pa is None else f"{pa:.4f}"
                print(f"  {ds:12s} {ga:7.4f} {pa_text:>7s} {speed:10,.0f}")
            n = len(results)
            mean_ga = sum(r[0] for r in results.values()) / n
            pas = [r[1] for r in results.values() if r[1] is not None]
            mean_pa = sum(pas) / len(pas) if pas else float("nan")
            # Overall lines/s: all lines over the summed best times.
            total = n * 2000 / sum(2000 / r[2] for r in results.values())
            print(f"  {'mean':12s} {mean_ga:7.4f} {mean_pa:7.4f} {total:10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
