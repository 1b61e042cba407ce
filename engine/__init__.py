"""Kestrel's engine: the domain model, input formats, decisions, sinks, runtime and commands.

See ARCHITECTURE.md for the layers and the direction of imports.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kestrel")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
