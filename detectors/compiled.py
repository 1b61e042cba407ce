"""Which detector modules are compiled to C by mypyc, and whether this process runs them so.

The per-point code of the default metric detector is plain, typed Python; ``make`` (``python
setup.py build_ext --inplace``) and wheel builds that have mypy compile the modules in
:data:`COMPILED` with mypyc into extension modules next to their sources, which Python then
imports instead of the ``.py`` files. The code is the same; the compiled ``adaptive`` costs about
a third of the interpreted one per point (``python bench/detectors.py``). Without a C compiler
or mypy the build stays pure Python, and everything works the same, slower.

``setup.py`` reads :data:`COMPILED` from this file before the package can be built, so it imports
only the standard library at module level.

>>> "detectors.adaptive" in COMPILED
True
>>> extension_path("detectors.compiled") is None  # this module is never compiled
True
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["COMPILED", "compiled_modules", "extension_path", "stale_modules"]

#: The modules mypyc compiles, in dependency order. Their pydantic parameter models live in
#: modules of their own (``*_params``): mypyc compiles classes to fixed C layouts, which pydantic
#: models cannot have. Not ``hysteresis``: interpreted code (zscore) reads its attributes, which
#: costs 3x more on a compiled object; not ``zscore``: compiled, its state takes twice the memory.
COMPILED: Final = ("detectors.seasonal", "detectors.adaptive")

_EXTENSIONS: Final = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _is_extension(path: str | None) -> bool:
    return path is not None and path.endswith(_EXTENSIONS)


def compiled_modules() -> list[str]:
    """The modules of :data:`COMPILED` this process runs compiled (it imports them): empty for a
    pure-Python build. ``kestrel_build_info`` shows it."""
    return [
        name
        for name in COMPILED
        if _is_extension(getattr(importlib.import_module(name), "__file__", None))
    ]


def extension_path(name: str) -> Path | None:
    """The compiled extension of module ``name`` (of this package) if one is built, else ``None``.

    Python would import it rather than the source. Looks at the files only (imports nothing).
    """
    package, _, module = name.rpartition(".")
    if package != __package__:
        raise ValueError(f"{name}: not a module of {__package__}")
    spec = importlib.machinery.PathFinder.find_spec(module, [str(Path(__file__).parent)])
    origin = None if spec is None else spec.origin
    return Path(origin) if origin is not None and _is_extension(origin) else None


def stale_modules(names: Iterable[str] = COMPILED) -> list[str]:
    """The modules of ``names`` whose compiled extension is older than their source.

    Python imports the extension whatever the source says, so an edit to one of these modules
    does nothing until they are compiled again (``make``, or ``python setup.py build_ext
    --inplace``), or their extensions are deleted. Looks at the files only (imports nothing).
    """
    stale = []
    for name in names:
        extension = extension_path(name)
        if extension is None:
            continue
        source = extension.with_name(name.rpartition(".")[2] + ".py")
        if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
            stale.append(name)
    return stale


def main() -> int:
    """``python -m detectors.compiled``: exit 1, saying why, if a module is not compiled or stale.

    ``make`` compiles the modules when this fails.
    """
    missing = [name for name in COMPILED if extension_path(name) is None]
    stale = stale_modules()
    if missing:
        print(f"not compiled: {', '.join(missing)}", file=sys.stderr)
    if stale:
        print(f"compiled, but older than their sources: {', '.join(stale)}", file=sys.stderr)
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
