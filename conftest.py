"""Project-wide pytest set-up: the detector modules mypyc compiles (:mod:`detectors.compiled`).

Python imports a compiled module's extension, not its source. So pytest must not collect the
doctests of those sources (the module it would import is the extension; their doctests run on
the pure sources in ``tests/detectors/test_compiled.py``), and an extension older than its source
would test code that is no longer there: the run stops and says how to rebuild.
"""

from __future__ import annotations

import pytest

from detectors.compiled import COMPILED, extension_path, stale_modules

collect_ignore = [
    name.replace(".", "/") + ".py" for name in COMPILED if extension_path(name) is not None
]


def pytest_configure(config: pytest.Config) -> None:
    stale = stale_modules()
    if stale:
        raise pytest.UsageError(
            f"compiled detector modules older than their sources: {', '.join(stale)}. "
            "Run `make` (or `.venv/bin/python setup.py build_ext --inplace --force`) to compile "
            "them again, or delete detectors/*.so to test pure Python."
        )
