"""The detector modules mypyc compiles (:mod:`detectors.compiled`): built, and the same as their
pure-Python sources.

The sources run pure from a copy of the package without extensions, in a subprocess: there the
compiled modules' doctests run (pytest imports the extensions, which have none), and the same
inputs must give the same verdicts and states as the compiled modules here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from detectors.compiled import COMPILED, compiled_modules, extension_path, stale_modules

REPO = Path(__file__).resolve().parents[2]

# Feeds adaptive (default settings and variants) and seasonal an input with everything their
# branches meet: a daily pattern with noise, spikes, a level shift, a slow drift, values that
# are not finite, a repeated timestamp, a gap; the state saved and restored half way. Prints
# every verdict and the final states as JSON (repr of floats: exact).
_DRIVE = r"""
import json, math, random
from detectors.adaptive import AdaptiveDetector
from detectors.adaptive_params import AdaptiveParams
from detectors.seasonal import SeasonalDetector
from detectors.seasonal_params import SeasonalParams

def series(seed):
    rng = random.Random(seed)
    ts, out = 1_700_000_000.0, []
    for i in range(3000):
        hour = (ts / 3600.0) % 24.0
        x = (80.0 if 9.0 <= hour < 17.0 else 20.0) + rng.gauss(0.0, 2.0)
        if i > 1500:
            x += 40.0  # level shift
        if i > 2200:
            x += (i - 2200) * 0.05  # drift
        if i % 337 == 0:
            x += 60.0 * rng.choice((-1.0, 1.0))
        if i % 501 == 0:
            x = rng.choice((math.nan, math.inf, -math.inf))
        out.append((x, ts))
        ts += 0.0 if i % 97 == 0 else (3600.0 * 5 if i == 2600 else 300.0)
    return out

def run(make, restore, points):
    det, verdicts = make(), []
    for i, (x, ts) in enumerate(points):
        if i == len(points) // 2:
            det = restore(json.loads(json.dumps(det.to_state())))
        v = det.update(x, ts)
        verdicts.append([repr(v.score), repr(v.expected), v.anomalous, v.firing, str(v.transition)])
    return {"verdicts": verdicts, "state": det.to_state()}

out = {}
variants = {
    "adaptive": AdaptiveParams(),
    "adaptive-window-3": AdaptiveParams(short_window=3, score_needs_raw=True, alert_sure_raw=0.0),
    "adaptive-fire-2": AdaptiveParams(fire_after=2, resolve_after=3, warmup=10),
}
for name, params in variants.items():
    out[name] = run(lambda: AdaptiveDetector(params),
                    lambda s: AdaptiveDetector.from_state(params, s), series(1))
    # The batch path: runs of 7 points through update_many, its notable verdicts by index.
    det, points, notable = AdaptiveDetector(params), series(1), []
    for start in range(0, len(points), 7):
        run_ = points[start : start + 7]
        for i, v in det.update_many([x for x, _ in run_], [ts for _, ts in run_]):
            notable.append([start + i, repr(v.score), v.anomalous, v.firing, str(v.transition)])
    out[name + "-runs"] = {"verdicts": notable, "state": det.to_state()}
seasonal = SeasonalParams()
out["seasonal"] = run(lambda: SeasonalDetector(seasonal),
                      lambda s: SeasonalDetector.from_state(seasonal, s), series(2))
from detectors.compiled import compiled_modules
out["compiled"] = compiled_modules()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def pure_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the ``detectors`` package (and the ``engine`` modules it imports) with no
    compiled extension in it."""
    root = tmp_path_factory.mktemp("pure")
    for package in ("detectors", "engine"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("*.so"))
    return root


def _python(code: str, path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=path,
        env={"PYTHONPATH": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_hot_modules_are_compiled() -> None:
    """``make`` compiles them; a pure build works but is slower, and this says so."""
    missing = [name for name in COMPILED if extension_path(name) is None]
    assert not missing, (
        f"{', '.join(missing)}: no compiled extension. Run `make` (it runs `python setup.py "
        "build_ext --inplace`, which needs mypy and a C compiler) to compile them."
    )
    import detectors.adaptive  # noqa: F401  (imported here for the check below)

    assert compiled_modules() == list(COMPILED)
    assert stale_modules() == []


def test_the_installed_package_loads_them_from_anywhere(tmp_path: Path) -> None:
    """As the ``kestrel`` command does: not from the project directory, not on its path (an
    editable install maps only the packages, so every compiled piece must be inside one)."""
    code = (
        "import json, sys; from detectors.compiled import compiled_modules; "
        "print(json.dumps([compiled_modules(), sys.path]))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    compiled, path = json.loads(done.stdout)
    assert str(REPO) not in path
    assert compiled == list(COMPILED)


def test_an_edited_source_makes_its_extension_stale() -> None:
    for name in COMPILED:
        extension = extension_path(name)
        assert extension is not None
        source = extension.with_name(name.rpartition(".")[2] + ".py")
        mtime = source.stat().st_mtime
        try:
            os.utime(source, (mtime, extension.stat().st_mtime + 10))
            assert stale_modules([name]) == [name]
        finally:
            os.utime(source, (mtime, mtime))
    assert stale_modules() == []


def test_compiled_and_pure_modules_give_the_same_verdicts_and_states(pure_tree: Path) -> None:
    compiled = json.loads(_python(_DRIVE, REPO))
    pure = json.loads(_python(_DRIVE, pure_tree))
    assert compiled.pop("compiled") == list(COMPILED)
    assert pure.pop("compiled") == []
    for name, run in compiled.items():
        transitions = [v[-1] for v in run["verdicts"] if v[-1] != "None"]
        assert transitions, f"{name}: the input fired no alert: it proves too little"
        assert run == pure[name], name


def test_the_doctests_of_the_compiled_modules_pass_on_their_sources(pure_tree: Path) -> None:
    code = (
        "import doctest, importlib, json\n"
        f"names = {list(COMPILED)!r}\n"
        "print(json.dumps({n: doctest.testmod(importlib.import_module(n))._asdict() "
        "for n in names}))"
    )
    results = json.loads(_python(code, pure_tree))
    assert sorted(results) == sorted(COMPILED)
    for name, result in results.items():
        assert result["attempted"] > 0 and result["failed"] == 0, (name, result)
