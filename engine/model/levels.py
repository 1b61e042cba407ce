"""Log levels: one table of names, their aliases and their numeric severity.

Numbers follow Python's ``logging`` (DEBUG 10 ... CRITICAL 50) with syslog's extra levels slotted
in. Input formats decide which spellings they accept (see :mod:`engine.formats.kestrel_json`);
detectors compare levels by number.

>>> canonical_level("warn"), canonical_level("Fatal"), canonical_level("verbose")
('WARNING', 'CRITICAL', None)
>>> level_number("ERROR") > level_number("warning")
True
>>> canonical_level("err"), canonical_level("notice"), canonical_level("emerg")
('ERROR', 'NOTICE', 'EMERGENCY')
>>> otel_level(17), otel_level(3), otel_level(0)
('ERROR', 'TRACE', None)
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ALIASES",
    "ERROR_LEVELS",
    "LEVEL_NUMBERS",
    "LEVEL_SPELLINGS",
    "canonical_level",
    "level_number",
    "otel_level",
]

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
    "PANIC": "EMERGENCY",  # syslog's deprecated name of emerg
    "INFORMATION": "INFO",
    "INFORMATIONAL": "INFO",  # syslog's and .NET's long form
    "DBG": "DEBUG",
    "SEVERE": "ERROR",  # java.util.logging
}

#: Every accepted spelling, lower case (input formats check membership before canonicalising).
LEVEL_SPELLINGS: Final = frozenset(name.lower() for name in (*LEVEL_NUMBERS, *ALIASES))

#: OpenTelemetry's SeverityNumber ranges (1-4 TRACE ... 21-24 FATAL), by first number.
_OTEL_RANGES: Final = ((21, "CRITICAL"), (17, "ERROR"), (13, "WARNING"), (9, "INFO"), (5, "DEBUG"))

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


def otel_level(severity_number: int) -> str | None:
    """The canonical level of an OpenTelemetry ``SeverityNumber`` (1-24), or ``None`` for 0
    (unspecified) or a number out of range."""
    if not 1 <= severity_number <= 24:
        return None
    for first, name in _OTEL_RANGES:
        if severity_number >= first:
            return name
    return "TRACE"
