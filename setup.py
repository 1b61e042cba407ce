"""Build hook: compiles the detector modules named in ``detectors/compiled.py`` with mypyc.

Everything else about the package is in pyproject.toml. ``make`` runs ``python setup.py build_ext
--inplace`` in the project's venv (which has mypy); a wheel built with mypy in its build
environment is compiled too. Where mypy or a C compiler is missing (an isolated build, a slim
image), or ``KESTREL_COMPILE=0`` is set, the package builds as pure Python: the same code,
slower.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _compiled_sources() -> list[str]:
    names = runpy.run_path(str(HERE / "detectors" / "compiled.py"))["COMPILED"]
    return [name.replace(".", "/") + ".py" for name in names]


# mypyc's type check: the detectors package only (what it imports from elsewhere is Any), without
# the project's strict config (mypy --strict checks these modules in `make typecheck`). Following
# the imports into every dependency (numpy, pydantic, Rich via engine) makes mypyc's uncached
# check take minutes; the compiled code needs only the detectors' own types.
_MYPY_OPTIONS = ["--config-file=", "--follow-imports=skip", "--ignore-missing-imports"]


def _extensions() -> list[Any]:
    if os.environ.get("KESTREL_COMPILE", "1") == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        print(f"kestrel: building pure Python ({exc}); see setup.py", file=sys.stderr)
        return []
    old = Path.cwd()
    os.chdir(HERE)  # mypyc names the modules by their paths relative to the project
    try:
        checked = sorted(str(path.relative_to(HERE)) for path in HERE.glob("detectors/*.py"))
        return list(
            mypycify(
                _MYPY_OPTIONS + checked,
                only_compile_paths=_compiled_sources(),
                opt_level="3",
                group_name="detectors.native",  # its shared library: detectors/native__mypyc
            )
        )
    except SystemExit as exc:  # mypyc exits when the type check fails
        print(f"kestrel: building pure Python (mypyc: {exc})", file=sys.stderr)
        return []
    finally:
        os.chdir(old)


class OptionalBuildExt(build_ext):
    """``build_ext`` that falls back to pure Python when the C compiler fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # a missing or failing compiler: no extension at all
            outputs = set(self.get_outputs())
            outputs.update(*self.get_output_mapping().items())  # in-place copies too
            for output in outputs:
                Path(output).unlink(missing_ok=True)
            print(f"kestrel: building pure Python (C build failed: {exc})", file=sys.stderr)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
