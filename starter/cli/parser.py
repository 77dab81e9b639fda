"""cancelctl's argument parser: one sub-command per saga start or operator request."""

from __future__ import annotations

import argparse
from enum import StrEnum

from domain.common import OperatorRequestKind, SagaQuery

EPILOG = """\
Temporal connection: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TLS settings and profiles as in Temporal's environment configuration.
Task queue: CANCEL_TASK_QUEUE (default "cancellations").

Exit codes: 0 ok, 1 refused or unreachable, 2 invalid input (nothing started).
"""

_ISO_WITH_OFFSET = "ISO 8601 with offset"
_CUSTOMER_ID_HELP = "your customer id (searchable in the UI)"


class StartCommand(StrEnum):
    """Sub-commands that start a saga (the others steer or inspect one)."""

    TERMINATE = "terminate"
    CANCEL_ORDER = "cancel-order"
    CANCEL_FUTURE_ORDERS = "cancel-future-orders"
    CHURN = "churn"


class ControlCommand(StrEnum):
    """Sub-commands that act on workflows without being a saga update or query."""

    CANCEL = "cancel"
    LIST = "list"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cancelctl",
        description="Start, inspect and steer durable cancellation sagas.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_terminate(commands)
    _add_cancel_order(commands)
    confirm = commands.add_parser(
        OperatorRequestKind.CONFIRM,
        help="confirm a draft order cancellation (created with --draft)",
    )
    confirm.add_argument("workflow_id", metavar="ID")
    _add_cancel_future_orders(commands)
    _add_churn(commands)
    _add_steering(commands)
    _add_workflow_controls(commands)
    return parser


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


def _add_terminate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    terminate = commands.add_parser(
        StartCommand.TERMINATE,
        help="terminate an sTN mobile line, now or at a wish date",
        description="Terminate an sTN mobile subscription. Prints the saga's workflow id; "
        "a second request for the same line attaches to the running saga.",
    )
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


def _add_cancel_order(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    order = commands.add_parser(
        StartCommand.CANCEL_ORDER,
        help="cancel a Rebilly order, now, at a churn time or at its next renewal",
        description="Cancel a Rebilly billing order. Prints the saga's workflow id "
        "(cancel-order-ORDER_ID); a second request for the same order attaches to the "
        "running saga. Without --churn-time or --policy the order churns now.",
    )
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


def _add_cancel_future_orders(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    future = commands.add_parser(
        StartCommand.CANCEL_FUTURE_ORDERS,
        help="cancel Airalo future eSIM orders by request id",
        description="Cancel one or more Airalo future orders (any number: they are sent "
        "in batches of ten). Prints the saga's workflow id; the same set of ids asked "
        "again attaches to the running saga. `status` shows one outcome per id.",
    )
    future.add_argument(
        "request_ids", metavar="REQUEST_ID", nargs="+", help="Airalo request_id, 25 characters"
    )
    future.add_argument("--customer-id", metavar="ID", help=_CUSTOMER_ID_HELP)


def _add_churn(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    churn = commands.add_parser(
        StartCommand.CHURN,
        help="customer leaves on a date: line, billing and eSIM orders end together",
        description="Start the customer churn saga (workflow id churn-CUSTOMER_ID): the "
        "billing cancellation is drafted, the line termination submitted and the future "
        "eSIM orders due after the date cancelled; at the date sTN terminates the line "
        "and billing is confirmed. If the line cannot be terminated, everything is undone.",
    )
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


def _add_steering(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The operator requests (saga updates) and the status query, named as the saga names them."""
    resolve = commands.add_parser(
        OperatorRequestKind.RESOLVE,
        help="answer a saga in NEEDS_ATTENTION: retry, or mark it handled",
    )
    resolve.add_argument("workflow_id", metavar="ID")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--retry", action="store_true", help="retry what the saga still owes")
    how.add_argument(
        "--mark-handled", action="store_true", help="an operator fixed it by hand; close it"
    )
    resolve.add_argument("--note", metavar="TEXT", help="what was done (kept in the audit trail)")

    status = commands.add_parser(SagaQuery.STATUS, help="show a saga's state and audit trail")
    status.add_argument("workflow_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="print the full status as JSON")

    revoke = commands.add_parser(
        OperatorRequestKind.REVOKE, help="revoke a saga before its provider executed it"
    )
    revoke.add_argument("workflow_id", metavar="ID")
    revoke.add_argument("--reason", metavar="TEXT", help="why (sent to the provider as a note)")

    reschedule = commands.add_parser(
        OperatorRequestKind.RESCHEDULE, help="move a saga to a new wish date"
    )
    reschedule.add_argument("workflow_id", metavar="ID")
    reschedule.add_argument(
        "--wish-date", metavar="ISO", required=True, help="new date, ISO 8601 with offset"
    )


def _add_workflow_controls(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cancel = commands.add_parser(
        ControlCommand.CANCEL,
        help="cancel the workflow: the saga undoes what it did, then stops",
    )
    cancel.add_argument("workflow_id", metavar="ID")

    listing = commands.add_parser(ControlCommand.LIST, help="list sagas, newest first")
    listing.add_argument("--status", metavar="S", help="phase, e.g. WAITING, COMPLETED, REVOKED")
    listing.add_argument("--customer-id", metavar="ID")
    listing.add_argument("--limit", type=int, default=100, metavar="N")
