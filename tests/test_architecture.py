"""The import direction of ARCHITECTURE.md, checked on the source (no imports are executed).

Layers, bottom first; a module may import Kestrel code from its own layer's package and from
lower layers only, and the packages of one layer do not import each other. Faust is imported by
``engine.runtime`` alone. Kestrel's modules form no import cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Bottom first. ``engine`` itself (its ``__init__``: the version) counts as the model layer.
#: ``kestrel_client`` (for applications, not the engine) sits below everything: it imports no
#: other Kestrel code.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kestrel_client",),
    ("engine.model", "engine"),
    ("detectors", "alert_channels", "engine.formats", "engine.notify"),
    ("engine.config",),
    ("engine.core",),
    ("engine.sinks",),
    ("engine.runtime",),
    ("engine.devtools",),
    ("engine.cli",),
)
OURS = ("engine", "detectors", "alert_channels", "kestrel_client")
#: Third-party packages only some layers may use.
RESTRICTED = {"faust": ("engine.runtime",), "mode": ("engine.runtime",)}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> Iterator[tuple[str, Path]]:
    for top in OURS:
        for path in sorted((REPO / top).rglob("*.py")):
            yield _module_name(path), path


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module ``module`` imports (at any depth, TYPE_CHECKING included), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            for alias in node.names:  # ``from engine.cli import worker`` imports a module
                yield f"{target}.{alias.name}", node.lineno


def _package(name: str) -> str | None:
    """The layer package holding module ``name`` (longest match), or ``None`` if not ours."""
    best = None
    for layer in LAYERS:
        for pkg in layer:
            if (name == pkg or name.startswith(pkg + ".")) and (
                best is None or len(pkg) > len(best)
            ):
                best = pkg
    return best


def _layer(pkg: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if pkg in layer)


def _known_modules() -> set[str]:
    return {name for name, _ in _sources()}


def test_every_module_belongs_to_a_layer() -> None:
    homeless = [name for name, _ in _sources() if _package(name) is None]
    assert homeless == []
    for name, _ in _sources():
        if name.startswith("engine."):
            assert _package(name) != "engine", f"{name}: put it in a layer package, not engine/"


def test_imports_run_down_the_layers_only() -> None:
    known = _known_modules()
    problems = []
    for module, path in _sources():
        src = _package(module)
        assert src is not None
        for target, line in _imports(module, path):
            if target not in known:
                continue  # third party, or a name imported from a module
            dst = _package(target)
            assert dst is not None
            where = f"{path.relative_to(REPO)}:{line}: {module} imports {target}"
            if _layer(dst) > _layer(src):
                problems.append(f"{where} (a higher layer)")
            elif (
                _layer(dst) == _layer(src)
                and dst != src
                and {src, dst} != {"engine", "engine.model"}
            ):
                problems.append(f"{where} (a sibling package of the same layer)")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("package", sorted(RESTRICTED))
def test_restricted_packages_stay_in_their_layer(package: str) -> None:
    allowed = RESTRICTED[package]
    users = sorted(
        f"{path.relative_to(REPO)}:{line}"
        for module, path in _sources()
        for target, line in _imports(module, path)
        if target.split(".")[0] == package and _package(module) not in allowed
    )
    assert users == [], f"{package} is for {allowed} only"


def test_no_import_cycles() -> None:
    known = _known_modules()
    graph = {
        module: {t for t, _ in _imports(module, path) if t in known and t != module}
        for module, path in _sources()
    }
    # A package's __init__ importing its own submodules is not a cycle worth reporting.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not t.startswith(module + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)


def test_the_check_can_fail(tmp_path: Path) -> None:
    """A model module importing the runtime is caught (the checker is not vacuous)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from engine.runtime.app import build_worker\n")
    targets = [t for t, _ in _imports("engine.model.bad", bad)]
    assert "engine.runtime.app" in targets
    assert _layer(_package("engine.runtime.app") or "") > _layer(_package("engine.model.bad") or "")
