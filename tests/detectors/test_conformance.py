"""The contract every registered detector must meet: :mod:`detectors.checks` over ``DETECTORS``.

A detector added to the registry is checked automatically, through the adapter of its input shape
(values, windows or messages). ``VARIANTS`` adds parameter sets checked besides the defaults.
"""

from __future__ import annotations

from typing import Any

import pytest

# Submodules, not the package: with tests/conftest.py on sys.path, ``import detectors`` can
# resolve to the namespace package tests/detectors (see the report on pytest's import mode).
from detectors.base import DetectorParams
from detectors.checks import Check, yield_checks
from detectors.registry import DETECTORS

#: Parameter sets checked besides the defaults.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "zscore": [{"baseline": "window"}, {"direction": "up"}],
    "error_spike": [{"statistic": "wald"}],
    "new_pattern": [{"min_level": "warning"}],
}

CHECKS = [
    pytest.param(check, id="-".join([kind, *map(str, overrides.values()), check.name]))
    for kind, cls in DETECTORS.items()
    for overrides in [{}, *VARIANTS.get(kind, [])]
    for check in yield_checks(cls, cls.params_type.model_validate(overrides))
]


@pytest.mark.parametrize("kind", list(DETECTORS))
def test_registered_under_its_own_kind(kind: str) -> None:
    cls = DETECTORS[kind]
    assert cls.kind == kind
    assert issubclass(cls.params_type, DetectorParams)


@pytest.mark.parametrize("check", CHECKS)
def test_conformance(check: Check) -> None:
    check()
