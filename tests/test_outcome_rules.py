"""The outcome events' pure rules: secrets, URLs, addresses refused in production,
subscriptions' matching and signing secrets (``domain/outcomes.py``)."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.common import InvalidRequest
from domain.outcomes import (
    MAX_URL_LENGTH,
    ROTATION_OVERLAP,
    SECRET_PATTERN,
    SUBSCRIBER_URL_PATTERN,
    OutcomeEventType,
    Subscription,
    address_refusal,
    parse_subscription_request,
    secret_problem,
    url_problem,
)


def whsec(size: int, *, padded: bool = True) -> str:
    encoded = base64.b64encode(os.urandom(size)).decode()
    return "whsec_" + (encoded if padded else encoded.rstrip("="))


@pytest.mark.parametrize(
    "secret",
    [whsec(24), whsec(32), whsec(64), whsec(25, padded=False)],
    ids=["24", "32", "64", "25-unpadded"],
)
def test_standard_webhooks_secrets_of_24_to_64_bytes_are_accepted(secret: str) -> None:
    assert secret_problem(secret) is None


@pytest.mark.parametrize(
    ("secret", "rule"),
    [
        (whsec(23), "24 to 64 bytes"),
        (whsec(65), "24 to 64 bytes"),
        (base64.b64encode(os.urandom(32)).decode(), "whsec_"),
        ("whsec_not base64!!", "base64"),
    ],
    ids=["23-bytes", "65-bytes", "no-prefix", "not-base64"],
)
def test_other_secrets_are_refused(secret: str, rule: str) -> None:
    problem = secret_problem(secret)
    assert problem is not None and rule in problem


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://crm.example.com/hooks/cancel", True),
        ("http://127.0.0.1:8099/subscriber/x", True),  # refused in production, by address
        ("ftp://example.com/x", False),
        ("https:///no-host", False),
        ("https://user:pw@example.com/", False),
        ("https://example.com:99999/", False),
        ("https://example.com/" + "a" * 2000, False),
    ],
)
def test_subscriber_urls(url: str, ok: bool) -> None:
    assert (url_problem(url) is None) == ok


# The API's document states these patterns (starter/api/contract.py), searched as JSON
# Schema searches a pattern: a text matches exactly when the domain takes it.
_URL_LIKE = st.one_of(
    st.from_regex(SUBSCRIBER_URL_PATTERN),
    st.text(max_size=40).map(lambda tail: "https://" + tail),
    st.text(max_size=40),
)
_SECRET_LIKE = st.one_of(
    st.from_regex(SECRET_PATTERN),
    st.builds(whsec, st.integers(0, 80), padded=st.booleans()),
    st.text(max_size=40).map(lambda tail: "whsec_" + tail),
)


@given(_URL_LIKE)
def test_the_url_pattern_says_what_the_domain_takes(url: str) -> None:
    matches = re.search(SUBSCRIBER_URL_PATTERN, url) is not None
    assert matches == (url_problem(url) is None) or len(url) > MAX_URL_LENGTH


@given(_SECRET_LIKE)
def test_the_secret_pattern_says_what_the_domain_takes(secret: str) -> None:
    assert (re.search(SECRET_PATTERN, secret) is not None) == (secret_problem(secret) is None)


@pytest.mark.parametrize(
    ("address", "what"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_internal_addresses_are_refused_in_production(address: str, what: str) -> None:
    refusal = address_refusal(address)
    assert refusal is not None and what in refusal


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


def test_every_broken_rule_is_named_at_once() -> None:
    with pytest.raises(InvalidRequest) as invalid:
        parse_subscription_request({"url": "ftp://x", "secret": "nope", "types": ["saga.x"]})
    assert [p.field for p in invalid.value.problems] == ["url", "secret", "types.0"]


def test_a_subscription_matches_its_types_kinds_and_customers_while_enabled() -> None:
    now = datetime.now(UTC)
    subscription = Subscription(
        id="sub_1",
        url="https://example.com",
        secret=whsec(32),
        types=[OutcomeEventType.COMPLETED],
        kinds=["LINE_TERMINATION"],
        customers=["C-1"],
        created_at=now,
    )
    assert subscription.matches("saga.completed", "LINE_TERMINATION", "C-1")
    assert not subscription.matches("saga.failed", "LINE_TERMINATION", "C-1")
    assert not subscription.matches("saga.completed", "CUSTOMER_CHURN", "C-1")
    assert not subscription.matches("saga.completed", "LINE_TERMINATION", "C-2")
    assert not subscription.matches("saga.completed", "LINE_TERMINATION", None)
    disabled = subscription.model_copy(update={"disabled": "410"})
    assert not disabled.matches("saga.completed", "LINE_TERMINATION", "C-1")


def test_the_previous_secret_signs_until_the_overlap_ends() -> None:
    now = datetime.now(UTC)
    old, new = whsec(32), whsec(32)
    rotated = Subscription(
        id="sub_1",
        url="https://example.com",
        secret=new,
        previous_secret=old,
        previous_secret_until=now + ROTATION_OVERLAP,
        types=[OutcomeEventType.COMPLETED],
        created_at=now,
    )
    assert rotated.signing_secrets(now) == [new, old]
    assert rotated.signing_secrets(now + ROTATION_OVERLAP + timedelta(seconds=1)) == [new]
    assert "secret" not in rotated.public().model_dump()
