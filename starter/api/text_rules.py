"""The domain's text rules as regular expressions over the text a caller sends.

The domain reads ids and phone numbers in one normal form: Unicode NFKC (full-width
letters and digits become ASCII ones), trimmed (``domain.common.clean_identifier``,
``domain.stn.normalize_phone_number``), and only then applies its rules (not blank,
no control characters, Rebilly's id alphabet, a Dutch mobile number). A JSON Schema
``pattern`` sees the text as sent, so each rule is stated here over the characters a
caller may send: a character class holds every character whose NFKC form passes the
rule, computed from Python's own ``unicodedata`` (the tables the domain uses, Unicode
{version}). What no per-character class can say is left out, so each pattern is at
most as lenient as the API: a sequence that only NFKC's composition turns into an
allowed character (``e`` + U+0301 → ``é`` in a Rebilly id), and a character NFKC
turns into several digits (``㉛`` → ``31`` in a phone number).

Patterns use ECMA-262 syntax that Python's ``re`` reads the same way: BMP characters
as ``\\uXXXX`` escapes, others as themselves (a validator should use the ``u`` flag,
as JSON Schema 2020-12 asks).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections.abc import Callable

from domain.rebilly import REBILLY_ID_PATTERN

__doc__ = (__doc__ or "").replace("{version}", unicodedata.unidata_version)

#: A character class's members, as inclusive code point ranges.
Ranges = tuple[tuple[int, int], ...]
#: What a rule asks of one character: the character as sent, and its NFKC form.
Member = Callable[[str, str], bool]

#: Never a member of any class here: unassigned, private use, surrogates.
_NEVER = frozenset({"Cn", "Co", "Cs"})
#: The characters a cleaned Rebilly id (and a churn's customer id) may hold.
_REBILLY_ID_CHAR = re.compile(REBILLY_ID_PATTERN.removeprefix("^").removesuffix("+$"))


@functools.cache
def _characters() -> tuple[tuple[int, str, str], ...]:
    """Every character that can be a member, with its NFKC form (computed once)."""
    return tuple(
        (code, char, unicodedata.normalize("NFKC", char))
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(char := chr(code)) not in _NEVER
    )


def _ranges(member: Member) -> Ranges:
    found: list[tuple[int, int]] = []
    for code, char, normal in _characters():
        if not member(char, normal):
            continue
        if found and found[-1][1] == code - 1:
            found[-1] = (found[-1][0], code)
        else:
            found.append((code, code))
    return tuple(found)


def _escaped(code: int) -> str:
    char = chr(code)
    if char.isascii() and (char.isalnum() or char in " !\"#%&',:;<=>@_`~"):
        return char
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return char


def character_class(member: Member) -> str:
    """``[...]`` matching exactly the characters ``member`` accepts."""
    parts = (
        _escaped(low) if low == high else f"{_escaped(low)}-{_escaped(high)}"
        for low, high in _ranges(member)
    )
    return "[" + "".join(parts) + "]"


# -- what one character may be ------------------------------------------------------------


def blank(char: str, normal: str) -> bool:
    """Whitespace once NFKC'd: trimmed at either end, removed inside a phone number."""
    return normal.isspace()


def printable(char: str, normal: str) -> bool:
    """NFKC'd, nothing but printable characters (an inner NBSP becomes a space)."""
    return all(part.isprintable() for part in normal)


def rebilly_id_char(char: str, normal: str) -> bool:
    """NFKC'd, nothing but letters, digits and ``_ - . ~ @`` (Rebilly's id alphabet)."""
    return bool(normal) and all(_REBILLY_ID_CHAR.fullmatch(part) for part in normal)


def printable_as_sent(char: str, normal: str) -> bool:
    """Printable as sent (Airalo's request ids are not normalised)."""
    return char.isprintable()


def digit(char: str, normal: str) -> bool:
    """One ASCII digit once NFKC'd."""
    return len(normal) == 1 and normal in "0123456789"


def becomes(target: str) -> Member:
    """Exactly the one character ``target`` once NFKC'd."""

    def member(char: str, normal: str) -> bool:
        return normal == target

    return member


# -- the patterns -------------------------------------------------------------------------


@functools.cache
def identifier_pattern() -> str:
    """``clean_identifier``: NFKC, trimmed, then not blank and no control character.

    Blank characters at either end, printable ones between, and not only blank ones:
    each class written once (a generator expands a class character by character).
    """
    gap = character_class(blank)
    return f"^(?!{gap}*$){gap}*{character_class(printable)}*{gap}*$"


@functools.cache
def rebilly_id_pattern() -> str:
    """An id cleaned like :func:`identifier_pattern`, then of Rebilly's id alphabet
    (``REBILLY_ID_PATTERN``: letters, digits and ``_ - . ~ @``)."""
    gap = character_class(blank)
    return f"^{gap}*{character_class(rebilly_id_char)}+{gap}*$"


@functools.cache
def airalo_request_id_pattern(length: int) -> str:
    """Exactly ``length`` printable characters (as sent), no space at either end."""
    return f"^(?! )(?![\\s\\S]* $){character_class(printable_as_sent)}{{{length}}}$"


@functools.cache
def dutch_mobile_pattern() -> str:
    """``normalize_phone_number``: NFKC, whitespace removed anywhere, then
    ``(+31|0031|0)6``, an optional ``-`` and eight digits."""
    gap = character_class(blank) + "*"

    def spelled(text: str) -> str:
        return gap.join(character_class(becomes(char)) for char in text)

    prefix = f"(?:{spelled('+31')}|{spelled('0031')}|{spelled('0')})"
    eight = f"(?:{character_class(digit)}{gap}){{8}}"
    return f"^{gap}{prefix}{gap}{spelled('6')}{gap}(?:{spelled('-')}{gap})?{eight}$"
