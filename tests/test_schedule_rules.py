"""The date rules of every schedulable date, in their one home (``domain.common``).

Pure: no server, no clock but the one passed in. The parse functions of each saga
kind and the reschedule validators all go through :func:`schedule_problems`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from domain.churn import check_customer_churn_request, parse_customer_churn_request
from domain.common import (
    MAX_SCHEDULE_AHEAD,
    FieldProblem,
    InvalidRequest,
    refuse_past_wish_date,
    schedule_problems,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LIMIT = NOW + MAX_SCHEDULE_AHEAD
# Two years; the rules' wording is what the CLI prints and the API answers.
PAST = "must not be in the past"
TOO_FAR = "must be at most 730 days ahead"


@pytest.mark.parametrize(
    ("when", "rule"),
    [
        (NOW - timedelta(microseconds=1), PAST),
        (NOW, None),
        (LIMIT, None),
        (LIMIT + timedelta(microseconds=1), TOO_FAR),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), TOO_FAR),
        (datetime(1, 1, 1, tzinfo=UTC), PAST),
        # The same instant in another offset is the same date.
        (LIMIT.astimezone(timezone(timedelta(hours=-5))), None),
        ((LIMIT + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=14))), TOO_FAR),
        # As cancelctl hands a Rebilly churn time over: a string.
        ("9999-12-31T00:00:00+00:00", TOO_FAR),
        ("2020-01-01T00:00:00Z", PAST),
    ],
)
def test_a_schedule_date_is_neither_past_nor_too_far_ahead(when: Any, rule: str | None) -> None:
    expected = [] if rule is None else [FieldProblem(field="someDate", rule=rule)]
    assert schedule_problems("someDate", when, NOW) == expected


@pytest.mark.parametrize(
    "when", [None, "soon", "2030-01-01T00:00:00", datetime(2030, 1, 1), 7], ids=repr
)
def test_what_is_not_an_offset_date_is_left_to_the_model(when: Any) -> None:
    assert schedule_problems("wishDate", when, NOW) == []


def test_without_a_clock_there_is_no_date_rule() -> None:
    assert schedule_problems("wishDate", datetime(2020, 1, 1, tzinfo=UTC), None) == []
    assert schedule_problems("wishDate", datetime(9999, 1, 1, tzinfo=UTC), None) == []


@pytest.mark.parametrize(
    ("wish", "message"),
    [
        (NOW - timedelta(hours=1), "in the past"),
        (LIMIT + timedelta(days=1), TOO_FAR),
        (datetime(9999, 12, 30, tzinfo=UTC), TOO_FAR),
        (datetime(2030, 1, 1), "UTC offset"),
    ],
    ids=["past", "too-far", "year-9999", "naive"],
)
def test_the_reschedule_validators_refuse_what_the_edge_refuses(
    wish: datetime, message: str
) -> None:
    """The sagas' reschedule validators call this with ``workflow.now()``."""
    with pytest.raises(ValueError, match=message):
        refuse_past_wish_date(wish, NOW)


def test_the_reschedule_validators_accept_a_date_within_the_limit() -> None:
    refuse_past_wish_date(LIMIT, NOW)
    refuse_past_wish_date(NOW + timedelta(seconds=1), NOW)


def churn(wish: Any, **extra: Any) -> dict[str, Any]:
    return {"customerId": "C-1", "wishDate": wish, "stn": {"subscriptionId": "S"}, **extra}


def test_a_churn_date_gets_the_rules_with_every_other_problem() -> None:
    with pytest.raises(InvalidRequest) as invalid:
        parse_customer_churn_request(churn(LIMIT + timedelta(seconds=1), customerId="a b"), NOW)
    problems = {p.field: p.rule for p in invalid.value.problems}
    assert set(problems) == {"customerId", "wishDate"} and problems["wishDate"] == TOO_FAR
    with pytest.raises(InvalidRequest) as invalid:
        parse_customer_churn_request(churn(NOW - timedelta(days=1)), NOW)
    assert [(p.field, p.rule) for p in invalid.value.problems] == [("wishDate", PAST)]


def test_a_churn_within_the_limit_is_accepted_and_checked_again_by_the_clock() -> None:
    request = parse_customer_churn_request(churn(LIMIT), NOW)
    assert request.wish_date == LIMIT
    check_customer_churn_request(request, NOW)
    with pytest.raises(InvalidRequest) as invalid:
        check_customer_churn_request(request, NOW - timedelta(seconds=1))
    assert [p.rule for p in invalid.value.problems] == [TOO_FAR]


def test_a_churn_read_without_the_clock_keeps_its_past_date() -> None:
    """``now=None``: a churn accepted earlier, read again for its redelivery."""
    assert parse_customer_churn_request(churn(NOW - timedelta(days=3)), None).wish_date == (
        NOW - timedelta(days=3)
    )
