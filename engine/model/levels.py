"""Log levels: one table of names, their aliases and their numeric severity.

Numbers follow Python's ``logging`` (DEBUG 10 ... CRITICAL 50) with syslog's extra levels slotted
in. Input formats decide which spellings they accept (see :mod:`engine.formats.kestrel_json`);
detectors compare levels by number.

>>> canonical_level("warn"), canonical_level("Fatal"), canonical_level("verbose")
('WARNING', 'CRITICAL', None)
>>> level_number("ERROR") > level_number("warning")
True
"""

from __future__ import annotations

from typing import Final

__all__ = ["ERROR_LEVELS", "LEVEL_NUMBERS", "canonical_level", "level_number"]

#: Canonical level names and their numeric severity.
LEVEL_NUMBERS: Final = {
    "TRACE": 5,
    "DEBUG": 10,
    "INFO": 20,
    "NOTICE": 25,
    "WARNING": 30,
    "ERROR": 40,
    "CRITICAL": 50,
    "ALERT": 55,
    "EMERGENCY": 60,
}

#: Other spellings of canonical levels (upper case).
ALIASES: Final = {
    "WARN": "WARNING",
    "ERR": "ERROR",
    "CRIT": "CRITICAL",
    "FATAL": "CRITICAL",
    "EMERG": "EMERGENCY",
}

#: Levels that count as errors in ``log.error_ratio``.
ERROR_LEVELS: Final = frozenset({"ERROR", "CRITICAL", "ALERT", "EMERGENCY"})


def canonical_level(name: str) -> str | None:
    """The canonical name of ``name`` (any case, surrounding blanks ignored), or ``None``."""
    upper = name.strip().upper()
    if upper in LEVEL_NUMBERS:
        return upper
    return ALIASES.get(upper)


def level_number(name: str) -> int:
    """Numeric severity of a level name (any spelling); an unknown name counts as INFO (20)."""
    canonical = canonical_level(name)
    return LEVEL_NUMBERS[canonical] if canonical is not None else LEVEL_NUMBERS["INFO"]
