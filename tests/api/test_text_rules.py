"""The OpenAPI document's text patterns say what the domain's rules say.

Each pattern of ``starter.api.text_rules`` is matched with Python's ``re`` (which
reads them as ECMA-262 does) against what the domain itself makes of the same text:
any text Hypothesis draws (any code point, combining marks, blanks of every kind),
and the forms callers send. Where ``text_rules`` says a pattern is stricter than the
domain (a composition, a character NFKC turns into several digits), the test says so
too: the pattern never admits what the domain refuses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.airalo import REQUEST_ID_LENGTH, FutureOrderCancellationRequest
from domain.common import clean_identifier
from domain.rebilly import REBILLY_ID_PATTERN
from domain.stn import normalize_phone_number
from starter.api import text_rules

EXAMPLES = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
#: Text of every kind: any code point but surrogates, and the blanks the rules trim.
BLANKS = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2007\u200a\u2028\u202f\u3000"
texts = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(BLANKS)), max_size=12)


def accepts(rule: Callable[[str], object], text: str) -> bool:
    try:
        rule(text)
    except (ValueError, ValidationError):
        return False
    return True


def rebilly_id(text: str) -> None:
    cleaned = clean_identifier(text) or ""
    if not re.fullmatch(REBILLY_ID_PATTERN, cleaned):
        raise ValueError("not Rebilly's alphabet")


def airalo_request_id(text: str) -> None:
    FutureOrderCancellationRequest.model_validate({"requestIds": [text]})


def composes(text: str) -> bool:
    """NFKC of the whole differs from NFKC of each character: a composition."""
    whole = unicodedata.normalize("NFKC", text)
    return whole != "".join(unicodedata.normalize("NFKC", char) for char in text)


def matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


@EXAMPLES
@given(texts)
def test_identifier_pattern_is_the_domains_rule(text: str) -> None:
    assert matches(text_rules.identifier_pattern(), text) == accepts(clean_identifier, text)


@EXAMPLES
@given(texts | st.text(st.sampled_from("aZ09_-.~@\uff20\uff0d\uff46"), min_size=1, max_size=8))
def test_rebilly_id_pattern_never_admits_what_the_domain_refuses(text: str) -> None:
    admitted = matches(text_rules.rebilly_id_pattern(), text)
    if admitted:
        assert accepts(rebilly_id, text)
    elif not composes(text):
        assert not accepts(rebilly_id, text)


@EXAMPLES
@given(st.text(st.characters(codec="utf-8"), min_size=24, max_size=26) | texts)
def test_airalo_request_id_pattern_is_the_domains_rule(text: str) -> None:
    pattern = text_rules.airalo_request_id_pattern(REQUEST_ID_LENGTH)
    assert matches(pattern, text) == accepts(airalo_request_id, text)


FULL_WIDTH = str.maketrans(
    "0123456789+-", "".join(chr(0xFF10 + digit) for digit in range(10)) + "\uff0b\uff0d"
)
phones = st.builds(
    lambda prefix, dash, digits, pad, wide: (f"{pad}{prefix}6{dash}{digits}{pad}").translate(
        FULL_WIDTH if wide else {}
    ),
    st.sampled_from(["0", "+31", "0031", "1", "+32"]),
    st.sampled_from(["", "-", " - ", "--"]),
    st.text(st.sampled_from("0123456789 "), min_size=6, max_size=11),
    st.sampled_from(["", " ", "\u3000", "\t"]),
    st.booleans(),
)


@EXAMPLES
@given(phones | texts)
def test_dutch_mobile_pattern_never_admits_what_the_domain_refuses(text: str) -> None:
    admitted = matches(text_rules.dutch_mobile_pattern(), text)
    if admitted:
        assert accepts(normalize_phone_number, text)
    elif all(len(unicodedata.normalize("NFKC", char)) <= 1 for char in text):
        assert not accepts(normalize_phone_number, text)  # one digit per character


@pytest.mark.parametrize(
    ("text", "admitted"),
    [
        ("SUB-1", True),
        (" \u3000SUB-1\t", True),  # trimmed, ideographic space included
        ("\x1c SUB", True),  # Python trims U+001C; ECMA's \s would not
        ("a\u00a0b", True),  # an inner no-break space becomes a space
        ("\uff33\uff35\uff22\uff0d\uff11", True),  # full width folds to ASCII
        ("a\tb", False),  # a control character inside
        ("\u00a0", False),  # blank once trimmed
        ("", False),
        ("a\u200bb", False),  # a format character (zero width space)
        ("\U000e0001a", False),  # a tag character
    ],
)
def test_identifier_examples(text: str, admitted: bool) -> None:
    assert matches(text_rules.identifier_pattern(), text) is admitted
    assert accepts(clean_identifier, text) is admitted
