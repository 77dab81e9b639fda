"""Reading saga requests from cancelctl's flags, with every problem reported at once.

Each reader hands the flags to the domain's parser, so the CLI applies exactly the
rules the sagas do; nothing here talks to Temporal.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from domain.airalo import FutureOrderCancellationRequest, parse_future_order_cancellation_request
from domain.churn import CustomerChurnRequest, parse_customer_churn_request
from domain.common import FieldProblem, InvalidRequest
from domain.rebilly import OrderCancellationRequest, parse_order_cancellation_request
from domain.stn import TerminationRequest, parse_termination_request


def parse_datetime(field: str, raw: str) -> datetime:
    """An ISO 8601 date-time that carries its UTC offset, else ``InvalidRequest``."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(
            [
                FieldProblem(
                    field=field, rule=f"{raw!r} is not ISO 8601 (e.g. 2026-12-01T00:00:00+01:00)"
                )
            ]
        ) from None
    if value.tzinfo is None:
        raise InvalidRequest(
            [FieldProblem(field=field, rule="must carry a UTC offset, e.g. +01:00 or Z")]
        )
    return value


def _given(raw: dict[str, Any]) -> dict[str, Any]:
    """Only the flags the user gave: the domain model supplies the defaults."""
    return {key: value for key, value in raw.items() if value is not None}


def _billing_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The flags of ``parser.add_billing_flags`` as Rebilly request fields."""
    return {
        "reason": args.reason,
        "canceledBy": args.canceled_by,
        "prorated": args.prorated or None,
        "description": args.description,
    }


def termination_request(args: argparse.Namespace) -> TerminationRequest:
    raw = {
        "subscriptionId": args.subscription_id,
        "phoneNumber": args.phone,
        # An empty --wish-date is bad input, not "as soon as possible".
        "wishDate": None if args.wish_date is None else parse_datetime("wishDate", args.wish_date),
        "referenceNumber": args.reference,
        "customerId": args.customer_id,
    }
    return parse_termination_request(_given(raw), datetime.now(UTC))


def order_cancellation_request(args: argparse.Namespace) -> OrderCancellationRequest:
    problems: list[FieldProblem] = []
    line_items: list[Any] = []
    for index, raw_item in enumerate(args.line_item or []):
        try:
            line_items.append(json.loads(raw_item))
        except ValueError as error:
            line_items.append(raw_item)  # keeps the other items' indexes
            problems.append(FieldProblem(field=f"lineItems.{index}", rule=f"not JSON: {error}"))
    raw = {
        "orderId": args.order_id,
        "churnTime": args.churn_time,
        "churnTimePolicy": args.policy,
        **_billing_fields(args),
        "lineItems": line_items or None,
        "draft": args.draft or None,
        "customerId": args.customer_id,
    }
    try:
        request = parse_order_cancellation_request(_given(raw), datetime.now(UTC))
    except InvalidRequest as error:
        unparsed = {problem.field for problem in problems}
        rest = [p for p in error.problems if p.field not in unparsed]
        raise InvalidRequest(problems + rest) from None
    if problems:
        raise InvalidRequest(problems)
    return request


def future_order_request(args: argparse.Namespace) -> FutureOrderCancellationRequest:
    raw = {"requestIds": args.request_ids, "customerId": args.customer_id}
    return parse_future_order_cancellation_request(_given(raw))


def churn_request(args: argparse.Namespace) -> CustomerChurnRequest:
    """Assemble the churn's parts from flags; each part gets its own saga's rules."""
    raw: dict[str, Any] = {
        "customerId": args.customer_id,
        "wishDate": parse_datetime("wishDate", args.wish_date),
    }
    line = {"subscriptionId": args.subscription_id, "phoneNumber": args.phone}
    if any(line.values()):
        raw["stn"] = _given(line)
    billing = _given({"orderId": args.order_id, **_billing_fields(args)})
    if billing:
        raw["rebilly"] = billing
    if args.esim_order:
        raw["airalo"] = {"requestIds": args.esim_order}
    return parse_customer_churn_request(raw, datetime.now(UTC))
