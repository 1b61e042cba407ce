"""Log template mining on the Loghub-2k samples: grouping accuracy, parsing accuracy, lines/s.

    python bench/loghub_eval.py [--engine kestrel|detector|drain3] [--repeat 5] [--out DIR]
                                [--baseline REV] [--similarity 0.5] [--depth 1]
                                [--loghub ../shared/loghub]

Feeds each data set's ``Content`` column, in file order, to the miner with its default settings
(the same for every data set), writes ``DIR/<engine>/<Name>_2k.csv`` (``LineId``, ``template_id``,
``template``: the final template of the line's group) and scores it with the data's own
``score.py`` (grouping accuracy GA, parsing accuracy PA). Lines/s is the best of ``--repeat`` runs
of the miner alone (masking, matching, learning; no file reading) on one core, so a loaded machine
lowers it less; it is a figure, not a pass mark.

With ``--baseline REV`` it also runs ``detectors/new_pattern.py`` as of that revision (e.g.
``ce7c426~1``, the detector before the new miner) and ends with the speed of ``detector`` (the
``new_pattern`` detector) and ``kestrel`` (the miner alone) over it, as measured in this run.

``drain3`` (``pip install drain3``; a bench-only package, Kestrel does not depend on it) runs with
its own defaults (no masking, similarity 0.4, depth 4), i.e. no per-data-set settings either.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors import new_pattern  # noqa: E402
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


def detector_runner(module: ModuleType) -> Runner:
    """A ``new_pattern`` module's detector, every line at level INFO (miner, rates and alerts)."""

    def run(messages: list[str]) -> tuple[list[str], list[str]]:
        det = module.NewPatternDetector(module.NewPatternParams())
        observe = det.observe
        ids = [observe(m, "INFO", float(i)).template_id for i, m in enumerate(messages)]
        final: dict[str, str] = det.templates
        return ids, [final.get(tid, "") for tid in ids]

    return run


def baseline_module(revision: str) -> ModuleType:
    """``detectors/new_pattern.py`` as of a git revision (e.g. the one before the new miner)."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{revision}:detectors/new_pattern.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = ModuleType("baseline_new_pattern")
    sys.modules[module.__name__] = module  # pydantic resolves the annotations through it
    exec(compile(source, f"{revision}:detectors/new_pattern.py", "exec"), module.__dict__)
    return module


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
    runners: dict[str, Runner], loghub: Path, out: Path, repeat: int
) -> dict[str, dict[str, tuple[float, float | None, float]]]:
    """Per engine, per data set: (GA, PA, lines per CPU second).

    The engines take turns on each data set (``repeat`` rounds), so a burst of load from other
    work on the machine hits them alike; the time is this process's CPU time, the fastest round.
    """
    score = _load_score(loghub)
    results: dict[str, dict[str, tuple[float, float | None, float]]] = {n: {} for n in runners}
    for truth in sorted(loghub.glob("*_2k.csv")):
        rows = score.read_rows(truth)
        messages = [r["Content"] for r in rows]
        best = dict.fromkeys(runners, float("inf"))
        outputs: dict[str, tuple[list[str], list[str]]] = {}
        for _ in range(repeat):
            for name, runner in runners.items():
                started = time.process_time()
                outputs[name] = runner(messages)
                best[name] = min(best[name], time.process_time() - started)
        for name, (ids, templates) in outputs.items():
            # The final template of each line's group (a group's template generalises).
            final = dict(zip(ids, templates, strict=True))
            (out / name).mkdir(parents=True, exist_ok=True)
            pred = out / name / truth.name
            with pred.open("w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["LineId", "template_id", "template"])
                for row, tid in zip(rows, ids, strict=True):
                    writer.writerow([row["LineId"], tid, final[tid]])
            scored = score.score_one(truth, pred)
            speed = len(rows) / max(best[name], 1e-9)
            results[name][truth.name.removesuffix("_2k.csv")] = (scored["GA"], scored["PA"], speed)
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the engines, print one table per engine and the mean."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--engine",
        action="append",
        choices=["kestrel", "detector", "drain3"],
        help="kestrel (the miner), detector (new_pattern), drain3; repeatable; default: all",
    )
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also run detectors/new_pattern.py of this git revision (e.g. 9b2f5d1)",
    )
    ap.add_argument("--loghub", type=Path, default=REPO.parent / "shared" / "loghub")
    ap.add_argument("--out", type=Path, help="where predictions go (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per data set; the fastest counts")
    ap.add_argument("--similarity", type=float, help="override the miner's similarity")
    ap.add_argument("--depth", type=int, help="override the miner's routing depth")
    args = ap.parse_args(argv)
    chosen = args.engine or ["kestrel", "detector", "drain3"]
    runners: dict[str, Runner] = {}
    if "kestrel" in chosen:
        runners["kestrel"] = kestrel_runner(args.similarity, args.depth)
    if "detector" in chosen:
        runners["detector"] = detector_runner(new_pattern)
    if args.baseline:
        runners[f"detector@{args.baseline}"] = detector_runner(baseline_module(args.baseline))
    if "drain3" in chosen:
        try:
            runners["drain3"] = drain3_runner()
        except ImportError:
            print("drain3 is not installed (pip install drain3): skipping it", file=sys.stderr)
    speeds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for name, results in evaluate(runners, args.loghub, out, args.repeat).items():
            print(f"{name}:")
            print(f"  {'data set':12s} {'GA':>7s} {'PA':>7s} {'lines/s':>10s}")
            for ds, (ga, pa, speed) in results.items():
                pa_text = "-" if pa is None else f"{pa:.4f}"
                print(f"  {ds:12s} {ga:7.4f} {pa_text:>7s} {speed:10,.0f}")
            n = len(results)
            mean_ga = sum(r[0] for r in results.values()) / n
            pas = [r[1] for r in results.values() if r[1] is not None]
            mean_pa = sum(pas) / len(pas) if pas else float("nan")
            # Overall lines/s: all lines over the summed times (each set has 2,000 lines).
            total = n / sum(1 / r[2] for r in results.values())
            speeds[name] = total
            print(f"  {'mean':12s} {mean_ga:7.4f} {mean_pa:7.4f} {total:10,.0f}")
    baseline = f"detector@{args.baseline}" if args.baseline else None
    if baseline in speeds:
        # Measured in this run, engines taking turns: the claim "n x as fast" is checkable here.
        print(f"speed against {baseline} (mean lines/s, this run):")
        for name in ("detector", "kestrel"):
            if name in speeds:
                print(f"  {name:12s} {speeds[name] / speeds[baseline]:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
