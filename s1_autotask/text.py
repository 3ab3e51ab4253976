"""Make attacker-influenced text safe to print: one line, no controls, bounded.

Threat names, paths, command lines and host names come from the attacked machine. Any
of them may carry terminal escapes, bidi overrides that disguise a file name, line
breaks that forge a ticket section, or megabytes of padding. Everything printed into a
ticket, a log line or an error message goes through ``clean``.

Autotask is a .NET service: its length limits count UTF-16 code units, so an emoji
counts twice. ``utf16_len`` measures the way Autotask does.
"""

from __future__ import annotations

import re
import unicodedata

# Categories that must not reach a ticket: controls, formatting (bidi overrides that
# can disguise a file name), surrogates that are not valid UTF-8, private use,
# unassigned code points, and line or paragraph separators that would break a line.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Terminal escape sequences: dropping only the ESC would leave "[31m" behind.
_ANSI_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)"
)


def clean(value: object, limit: int = 300) -> str:
    """Make one value safe to print on one line, at most ``limit`` UTF-16 units."""
    if value is None:
        return ""
    text = _ANSI_ESCAPE.sub(" ", str(value)[: limit * 4])
    kept = (
        " " if unicodedata.category(ch) in _DROPPED_CATEGORIES else ch for ch in text
    )
    single_line = " ".join("".join(kept).split())
    if utf16_len(single_line) <= limit:
        return single_line
    return clip_utf16(single_line, limit - 1).rstrip() + "…"


def quoted(value: object, limit: int = 80) -> str:
    """``clean`` in quotes, for naming a value inside a sentence."""
    return repr(clean(value, limit))


def utf16_len(text: str) -> int:
    """Length as .NET counts it: characters outside the BMP count twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def clip_utf16(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that is at most ``limit`` UTF-16 units."""
    if utf16_len(text) <= limit:
        return text
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return text[:index]
    return text
