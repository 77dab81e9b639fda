"""Pure sTN rules: no server, no clock but the one passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.common import InvalidRequest
from domain.stn import (
    Activation,
    CancelTermination,
    check_future_wish_date,
    derived_reference_number,
    mask_phone_number,
    normalize_phone_number,
    parse_termination_request,
    termination_workflow_id,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = b"test-key"


@pytest.mark.parametrize(
    "raw", ["0612345678", "06-12345678", "06 1234 5678", "+31612345678", "0031612345678"]
)
def test_phone_numbers_are_sent_in_the_documented_form(raw: str) -> None:
    assert normalize_phone_number(raw) == "06-12345678"


@pytest.mark.parametrize("raw", ["0201234567", "061234567", "06-123456789", "phone", ""])
def test_non_mobile_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="Dutch mobile number"):
        normalize_phone_number(raw)


def test_masking_keeps_only_the_last_four_digits() -> None:
    assert mask_phone_number("06-12345678") == "06-****5678"
    assert mask_phone_number(None) is None


def test_request_needs_an_identifier() -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_termination_request({}, NOW)
    assert error.value.problems[0].rule.startswith("give subscriptionId or phoneNumber")


def test_past_wish_date_is_refused_with_the_other_problems() -> None:
    with pytest.raises(InvalidRequest) as error:
        parse_termination_request(
            {"subscriptionId": "S", "referenceNumber": "X" * 16, "wishDate": NOW - timedelta(1)},
            NOW,
        )
    assert {p.field for p in error.value.problems} == {"referenceNumber", "wishDate"}


def test_wish_date_may_lie_at_most_two_years_ahead() -> None:
    """Issue #10: 9999-12-31 was accepted and took the sandbox's sTN down."""
    limit = NOW + timedelta(days=730)
    assert parse_termination_request({"subscriptionId": "S", "wishDate": limit}, NOW)
    for wish in (limit + timedelta(seconds=1), datetime(9999, 12, 31, tzinfo=UTC)):
        with pytest.raises(InvalidRequest) as error:
            parse_termination_request(
                {"subscriptionId": "S", "referenceNumber": "X" * 16, "wishDate": wish}, NOW
            )
        problems = {p.field: p.rule for p in error.value.problems}
        assert set(problems) == {"referenceNumber", "wishDate"}
        assert problems["wishDate"] == "must be at most 730 days ahead"


def test_without_the_clock_the_date_rules_are_skipped() -> None:
    """``now=None`` reads a request accepted earlier (a redelivery) without judging its date."""
    past = {"subscriptionId": "S", "wishDate": NOW - timedelta(days=1)}
    assert parse_termination_request(past, None).wish_date == NOW - timedelta(days=1)
    with pytest.raises(InvalidRequest) as error:
        parse_termination_request({**past, "referenceNumber": "X" * 16}, None)
    assert [p.field for p in error.value.problems] == ["referenceNumber"]


@pytest.mark.parametrize(
    ("wish", "rule"),
    [
        (NOW - timedelta(minutes=1), "must not be in the past"),
        (NOW + timedelta(days=730, seconds=1), "must be at most 730 days ahead"),
    ],
    ids=["past", "too-far"],
)
def test_a_reschedule_gets_the_same_date_rules(wish: datetime, rule: str) -> None:
    with pytest.raises(InvalidRequest) as error:
        check_future_wish_date(wish, NOW)
    assert [(p.field, p.rule) for p in error.value.problems] == [("wishDate", rule)]
    check_future_wish_date(NOW + timedelta(days=730), NOW)  # the limit itself is fine


def test_past_wish_date_is_valid_on_replay() -> None:
    # The model itself is time-free: a workflow re-reading its input weeks later must not fail.
    request = parse_termination_request({"subscriptionId": "S", "wishDate": NOW}, NOW)
    assert request.model_validate(request.model_dump()).wish_date == NOW


def test_workflow_id_is_the_business_key_without_pii() -> None:
    by_subscription = parse_termination_request({"subscriptionId": "SUB-1"}, NOW)
    by_phone = parse_termination_request({"phoneNumber": "0612345678"}, NOW)
    same_phone = parse_termination_request({"phoneNumber": "06-12345678"}, NOW)

    assert termination_workflow_id(by_subscription, KEY) == "terminate-SUB-1"
    phone_id = termination_workflow_id(by_phone, KEY)
    assert phone_id == termination_workflow_id(same_phone, KEY)
    assert "12345678" not in phone_id
    assert phone_id != termination_workflow_id(by_phone, b"another-deployment")


def test_reference_numbers_fit_stn_and_differ_per_submission() -> None:
    first = derived_reference_number("terminate-S", "run-1", 1)
    assert len(first) == 15 and first == derived_reference_number("terminate-S", "run-1", 1)
    assert first != derived_reference_number("terminate-S", "run-1", 2)
    assert first != derived_reference_number("terminate-S", "run-2", 1)


def test_summary_never_shows_the_phone_number() -> None:
    request = parse_termination_request({"phoneNumber": "0612345678", "customerId": "C1"}, NOW)
    assert "12345678" not in request.summary() and "5678" in request.summary()


def test_activation_reads_the_documented_top_level_reference() -> None:
    documented = Activation.model_validate(
        {"id": "A", "status": "BUSY", "referenceNumber": "Test 1", "info": {}}
    )
    legacy = Activation.model_validate(
        {"id": "A", "status": "BUSY", "info": {"referenceNumber": "Old 1"}}
    )
    assert (documented.reference, legacy.reference) == ("Test 1", "Old 1")


@pytest.mark.parametrize(
    ("status", "final", "cancelling"),
    [
        ("INIT", False, False),
        ("BUSY", False, False),
        ("CANCELLING", False, True),
        ("DONE", True, False),
        ("ERROR", True, False),
        ("UNDOCUMENTED", False, False),
    ],
)
def test_only_done_and_error_are_final(status: str, final: bool, cancelling: bool) -> None:
    activation = Activation(id="A", status=status)
    assert activation.is_final is final and activation.is_executed is final
    assert activation.is_cancelling is cancelling and activation.is_cancelled is cancelling
    assert activation.is_done is (status == "DONE")


def test_saga_built_note_is_fitted_to_stns_limit_not_refused() -> None:
    """A note the saga builds ("revoked: <reason>", a failure cause) never fails
    inside a workflow: it is cut to sTN's 164 characters, the cut marked."""
    note = CancelTermination(activation_id="A", note="revoked: " + "r" * 164).note

    assert note is not None and len(note) == 164 and note.endswith("…")
    assert CancelTermination(activation_id="A", note="short").note == "short"


# -- one edge model for every entry point (issue #10: inputs that started sagas) -------


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("subscriptionId", "   ", "must not be blank"),
        ("subscriptionId", "SUB-1\x00", "control characters"),
        ("subscriptionId", "SUB-\n1", "control characters"),
        ("customerId", "\t", "must not be blank"),
        ("referenceNumber", " ", "must not be blank"),
    ],
)
def test_blank_or_control_character_ids_start_nothing(field: str, value: str, rule: str) -> None:
    data = {"subscriptionId": "SUB-1", field: value}
    with pytest.raises(InvalidRequest) as refused:
        parse_termination_request(data, datetime.now(UTC))
    assert [(p.field, rule in p.rule) for p in refused.value.problems] == [(field, True)]


FULL_WIDTH_PHONE = "".join(chr(0xFF10 + int(digit)) for digit in "0612345678")


def test_full_width_digits_are_the_same_line_as_ascii() -> None:
    """Full-width digits used to pass as they were: sent to sTN like that, and under
    another workflow id than the same number in ASCII (escaping duplicate detection)."""
    now = datetime.now(UTC)
    wide = parse_termination_request({"phoneNumber": FULL_WIDTH_PHONE}, now)
    ascii_ = parse_termination_request({"phoneNumber": "0612345678"}, now)

    assert wide.phone_number == "06-12345678"
    assert termination_workflow_id(wide, KEY) == termination_workflow_id(ascii_, KEY)


def test_ids_are_trimmed_and_normalised_to_one_form() -> None:
    full_width_sub = "\uff33\uff35\uff22"
    request = parse_termination_request({"subscriptionId": f" {full_width_sub}-1 "}, NOW)
    assert request.subscription_id == "SUB-1"
