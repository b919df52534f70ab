"""The display-text rule of the manifest: one definition for the server's manifest model and the verifier.

Every human-readable label of a manifest (the election's, each contest's and each selection's ``name.ja`` and
``name.en``) is shown to voters on the booth, printed in the result PDF and in the verifier's report. A label
that carries terminal escapes, right-to-left overrides or zero-width characters can show one thing and be
another (``Candidate One`` and ``Candidate One\\u200b`` look the same; ``\\u202e`` reverses what follows), so
such text is refused rather than cleaned (``docs/events.md``, "Manifest text"):

1. it is a string of 1 to :data:`MAX_NAME_CHARS` code points, with no leading or trailing whitespace
   (the server strips both before it publishes the manifest);
2. no code point is a control (Unicode category ``Cc``: NUL, the C0 and C1 controls, DEL, ESC hence ANSI
   escapes, TAB and line feeds), a format character (``Cf``: bidi controls such as U+202E, zero-width
   space and joiners, the BOM, soft hyphen), a surrogate (``Cs``), a private-use code point (``Co``), a
   line or paragraph separator (``Zl``, ``Zp``) or one of the invisible fillers in :data:`INVISIBLE`;
3. after NFC normalisation it is not made only of whitespace (``Zs`` and the like) and variation selectors,
   i.e. it is not invisible.

Ideographic variation selectors (U+E0100..) stay allowed (Japanese names use them) but never count as
visible. Categories are those of the running Python's ``unicodedata`` (a newer Unicode version may classify a
newly assigned character; unassigned code points are not refused for that reason).
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["INVISIBLE", "MAX_NAME_CHARS", "TextRuleError", "check_display_text"]

#: the longest label, in code points (a candidate's name with its reading fits many times over)
MAX_NAME_CHARS: Final[int] = 200

#: categories refused anywhere in a label
_REFUSED: Final[dict[str, str]] = {
    "Cc": "a control character",
    "Cf": "an invisible format character",
    "Cs": "a surrogate code point",
    "Co": "a private-use character",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}

#: code points that are letters or marks by category but render as nothing (Hangul fillers, the combining
#: grapheme joiner, Khmer inherent vowels): refused like format characters
INVISIBLE: Final[frozenset[str]] = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u3164\uffa0")


def _is_selector(ch: str) -> bool:
    o = ord(ch)
    return 0xFE00 <= o <= 0xFE0F or 0xE0100 <= o <= 0xE01EF or 0x180B <= o <= 0x180D


class TextRuleError(ValueError):
    """A label breaks the display-text rule; ``str()`` says how, without echoing the offending text."""


def check_display_text(value: object, *, max_chars: int = MAX_NAME_CHARS) -> str:
    """Return ``value`` if it is an acceptable label (module docstring); raise :class:`TextRuleError`."""
    if not isinstance(value, str):
        raise TextRuleError("expected text")
    if not value:
        raise TextRuleError("is empty (or only whitespace)")
    if len(value) > max_chars:
        raise TextRuleError(f"is longer than {max_chars} characters ({len(value)})")
    for pos, ch in enumerate(value):
        cat = unicodedata.category(ch)
        what = _REFUSED.get(cat)
        if what is None and ch in INVISIBLE:
            what = "an invisible filler character"
        if what is not None:
            raise TextRuleError(f"contains {what} (U+{ord(ch):04X}) at position {pos + 1}")
    if all(
        ch.isspace() or unicodedata.category(ch) == "Zs" or _is_selector(ch)
        for ch in unicodedata.normalize("NFC", value)
    ):
        raise TextRuleError("is blank (only whitespace or invisible characters)")
    if value != value.strip():
        raise TextRuleError("has leading or trailing whitespace")
    return value
