"""Each saga kind's cancelctl flags, and how they read into its request.

Per kind, a function adding its sub-command's flags and one reading its request
from them; the kind's entry in :mod:`starter.kinds` names both (this module does not
import the registry). Each reader hands the flags to the domain's parser, so the
CLI applies exactly the rules the sagas do and reports every problem at once;
nothing here talks to Temporal.
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

_ISO_WITH_OFFSET = "ISO 8601 with offset"
_CUSTOMER_ID_HELP = "your customer id (searchable in the UI)"


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


# -- Rebilly's cancellation options, shared by cancel-order and churn -------------------


def add_billing_flags(parser: argparse.ArgumentParser, description: str | None = None) -> None:
    """The Rebilly cancellation options ``cancel-order`` and ``churn`` share (defined once)."""
    billing = parser.add_argument_group("billing cancellation (Rebilly)", description)
    billing.add_argument(
        "--reason", metavar="R", help="e.g. too-expensive, did-not-use, other (default: other)"
    )
    billing.add_argument(
        "--canceled-by", metavar="B", help="customer | merchant | rebilly (default: customer)"
    )
    billing.add_argument(
        "--prorated", action="store_true", help="credit the time left until the next renewal"
    )
    billing.add_argument("--description", metavar="TEXT", help="free text, at most 255 characters")


def _billing_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The flags of :func:`add_billing_flags` as Rebilly request fields."""
    return {
        "reason": args.reason,
        "canceledBy": args.canceled_by,
        "prorated": args.prorated or None,
        "description": args.description,
    }


# -- terminate (LineTermination) --------------------------------------------------------


def add_terminate_flags(terminate: argparse.ArgumentParser) -> None:
    target = terminate.add_mutually_exclusive_group(required=True)
    target.add_argument("--subscription-id", metavar="ID", help="sTN subscription id")
    target.add_argument(
        "--phone", metavar="NUMBER", help="mobile number, 0612345678 or 06-12345678"
    )
    terminate.add_argument(
        "--wish-date",
        metavar="ISO",
        help="ISO 8601 with offset, e.g. 2026-12-01T00:00:00+01:00 (default: as soon as possible)",
    )
    terminate.add_argument(
        "--reference", metavar="REF", help="your reference, at most 15 characters"
    )
    terminate.add_argument("--customer-id", metavar="ID", help=_CUSTOMER_ID_HELP)


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


# -- cancel-order (OrderCancellation) ---------------------------------------------------


def add_cancel_order_flags(order: argparse.ArgumentParser) -> None:
    order.add_argument("order_id", metavar="ORDER_ID", help="Rebilly order id")
    order.add_argument(
        "--churn-time", metavar="ISO", help="ISO 8601 with offset, e.g. 2026-12-01T00:00:00Z"
    )
    order.add_argument(
        "--policy", metavar="POLICY", help="churn time policy: now | at-next-renewal"
    )
    add_billing_flags(order)
    order.add_argument(
        "--line-item",
        metavar="JSON",
        action="append",
        help='an item for the new invoice, repeatable: \'{"type": "debit", '
        '"unitPriceAmount": 5, "unitPriceCurrency": "EUR", "quantity": 1}\'',
    )
    order.add_argument(
        "--draft",
        action="store_true",
        help="preview first: create a draft, report the proration, wait for `confirm`",
    )
    order.add_argument("--customer-id", metavar="ID", help=_CUSTOMER_ID_HELP)


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


# -- cancel-future-orders (FutureOrderCancellation) -------------------------------------


def add_cancel_future_orders_flags(future: argparse.ArgumentParser) -> None:
    future.add_argument(
        "request_ids",
        metavar="REQUEST_ID",
        nargs="+",
        help="Airalo request_id, 25 characters (after `--` when one begins with '-')",
    )
    future.add_argument("--customer-id", metavar="ID", help=_CUSTOMER_ID_HELP)


def future_order_request(args: argparse.Namespace) -> FutureOrderCancellationRequest:
    raw = {"requestIds": args.request_ids, "customerId": args.customer_id}
    return parse_future_order_cancellation_request(_given(raw))


# -- churn (CustomerChurn) --------------------------------------------------------------


def add_churn_flags(churn: argparse.ArgumentParser) -> None:
    churn.add_argument("customer_id", metavar="CUSTOMER_ID")
    churn.add_argument("--wish-date", metavar="ISO", required=True, help=_ISO_WITH_OFFSET)
    line = churn.add_mutually_exclusive_group()
    line.add_argument("--subscription-id", metavar="ID", help="sTN line to terminate")
    line.add_argument("--phone", metavar="NUMBER", help="sTN line to terminate, by number")
    churn.add_argument("--order-id", metavar="ID", help="Rebilly order to cancel at the date")
    add_billing_flags(churn, "for the order given with --order-id")
    churn.add_argument(
        "--esim-order",
        metavar="REQUEST_ID",
        nargs="+",
        help="Airalo future order request ids; those due after the date are cancelled",
    )


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
