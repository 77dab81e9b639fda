"""cancelctl: start, inspect and steer cancellation sagas from a shell.

Exit codes: 0 ok; 1 Temporal or the saga refused (unreachable server, unknown
workflow, refused update); 2 bad input (the field and the rule are printed,
nothing was started).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from config.settings import OrchestratorSettings
from config.temporal import connect, connect_config
from domain.airalo import FutureOrderCancellationRequest, parse_future_order_cancellation_request
from domain.churn import CustomerChurnRequest, ResolveAction, parse_customer_churn_request
from domain.common import FieldProblem, InvalidRequest
from domain.rebilly import OrderCancellationRequest, parse_order_cancellation_request
from domain.stn import TerminationRequest, parse_termination_request
from starter import sagas

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class TemporalUnreachable(Exception):
    pass


EPILOG = """\
Temporal connection: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE,
TEMPORAL_API_KEY, TLS settings and profiles as in Temporal's environment configuration.
Task queue: CANCEL_TASK_QUEUE (default "cancellations").

Exit codes: 0 ok, 1 refused or unreachable, 2 invalid input (nothing started).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cancelctl",
        description="Start, inspect and steer durable cancellation sagas.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    terminate = commands.add_parser(
        "terminate",
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
    terminate.add_argument(
        "--customer-id", metavar="ID", help="your customer id (searchable in the UI)"
    )

    order = commands.add_parser(
        "cancel-order",
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
    order.add_argument(
        "--reason", metavar="R", help="e.g. too-expensive, did-not-use, other (default: other)"
    )
    order.add_argument(
        "--canceled-by", metavar="B", help="customer | merchant | rebilly (default: customer)"
    )
    order.add_argument(
        "--prorated", action="store_true", help="credit the time left until the next renewal"
    )
    order.add_argument(
        "--prorated-invoice-id", metavar="ID", help="invoice the proration is calculated on"
    )
    order.add_argument("--description", metavar="TEXT", help="free text, at most 255 characters")
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
    order.add_argument(
        "--customer-id", metavar="ID", help="your customer id (searchable in the UI)"
    )

    confirm = commands.add_parser(
        "confirm", help="confirm a draft order cancellation (created with --draft)"
    )
    confirm.add_argument("workflow_id", metavar="ID")

    future = commands.add_parser(
        "cancel-future-orders",
        help="cancel Airalo future eSIM orders by request id",
        description="Cancel one or more Airalo future orders (any number: they are sent "
        "in batches of ten). Prints the saga's workflow id; the same set of ids asked "
        "again attaches to the running saga. `status` shows one outcome per id.",
    )
    future.add_argument(
        "request_ids", metavar="REQUEST_ID", nargs="+", help="Airalo request_id, 25 characters"
    )
    future.add_argument(
        "--customer-id", metavar="ID", help="your customer id (searchable in the UI)"
    )

    churn = commands.add_parser(
        "churn",
        help="customer leaves on a date: line, billing and eSIM orders end together",
        description="Start the customer churn saga (workflow id churn-CUSTOMER_ID): the "
        "billing cancellation is drafted, the line termination submitted and the future "
        "eSIM orders due after the date cancelled; at the date sTN terminates the line "
        "and billing is confirmed. If the line cannot be terminated, everything is undone.",
    )
    churn.add_argument("customer_id", metavar="CUSTOMER_ID")
    churn.add_argument("--wish-date", metavar="ISO", required=True, help="ISO 8601 with offset")
    line = churn.add_mutually_exclusive_group()
    line.add_argument("--subscription-id", metavar="ID", help="sTN line to terminate")
    line.add_argument("--phone", metavar="NUMBER", help="sTN line to terminate, by number")
    churn.add_argument("--order-id", metavar="ID", help="Rebilly order to cancel at the date")
    churn.add_argument("--reason", metavar="R", help="billing cancellation reason")
    churn.add_argument("--canceled-by", metavar="B", help="customer | merchant | rebilly")
    churn.add_argument("--prorated", action="store_true", help="prorate the billing cancellation")
    churn.add_argument("--prorated-invoice-id", metavar="ID")
    churn.add_argument("--description", metavar="TEXT", help="billing cancellation description")
    churn.add_argument(
        "--esim-order",
        metavar="REQUEST_ID",
        nargs="+",
        help="Airalo future order request ids; those due after the date are cancelled",
    )

    resolve = commands.add_parser(
        "resolve", help="answer a saga in NEEDS_ATTENTION: retry, or mark it handled"
    )
    resolve.add_argument("workflow_id", metavar="ID")
    how = resolve.add_mutually_exclusive_group(required=True)
    how.add_argument("--retry", action="store_true", help="retry what the saga still owes")
    how.add_argument(
        "--mark-handled", action="store_true", help="an operator fixed it by hand; close it"
    )
    resolve.add_argument("--note", metavar="TEXT", help="what was done (kept in the audit trail)")

    status = commands.add_parser("status", help="show a saga's state and audit trail")
    status.add_argument("workflow_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="print the full status as JSON")

    revoke = commands.add_parser("revoke", help="revoke a saga before its provider executed it")
    revoke.add_argument("workflow_id", metavar="ID")
    revoke.add_argument("--reason", metavar="TEXT", help="why (sent to the provider as a note)")

    reschedule = commands.add_parser("reschedule", help="move a saga to a new wish date")
    reschedule.add_argument("workflow_id", metavar="ID")
    reschedule.add_argument(
        "--wish-date", metavar="ISO", required=True, help="new date, ISO 8601 with offset"
    )

    cancel = commands.add_parser(
        "cancel", help="cancel the workflow: the saga undoes what it did, then stops"
    )
    cancel.add_argument("workflow_id", metavar="ID")

    listing = commands.add_parser("list", help="list sagas, newest first")
    listing.add_argument("--status", metavar="S", help="phase, e.g. WAITING, COMPLETED, REVOKED")
    listing.add_argument("--customer-id", metavar="ID")
    listing.add_argument("--limit", type=int, default=100, metavar="N")
    return parser


def _parse_datetime(field: str, raw: str) -> datetime:
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


def _termination_request(args: argparse.Namespace) -> TerminationRequest:
    raw = {
        "subscriptionId": args.subscription_id,
        "phoneNumber": args.phone,
        "wishDate": _parse_datetime("wishDate", args.wish_date) if args.wish_date else None,
        "referenceNumber": args.reference,
        "customerId": args.customer_id,
    }
    return parse_termination_request(
        {k: v for k, v in raw.items() if v is not None}, datetime.now(UTC)
    )


def _order_cancellation_request(args: argparse.Namespace) -> OrderCancellationRequest:
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
        "reason": args.reason,
        "canceledBy": args.canceled_by,
        "prorated": args.prorated or None,
        "proratedInvoiceId": args.prorated_invoice_id,
        "description": args.description,
        "lineItems": line_items or None,
        "draft": args.draft or None,
        "customerId": args.customer_id,
    }
    try:
        request = parse_order_cancellation_request(
            {k: v for k, v in raw.items() if v is not None}, datetime.now(UTC)
        )
    except InvalidRequest as error:
        unparsed = {problem.field for problem in problems}
        rest = [p for p in error.problems if p.field not in unparsed]
        raise InvalidRequest(problems + rest) from None
    if problems:
        raise InvalidRequest(problems)
    return request


def _future_order_request(args: argparse.Namespace) -> FutureOrderCancellationRequest:
    raw = {"requestIds": args.request_ids, "customerId": args.customer_id}
    return parse_future_order_cancellation_request({k: v for k, v in raw.items() if v is not None})


def _churn_request(args: argparse.Namespace) -> CustomerChurnRequest:
    """Assemble the churn's parts from flags; each part gets its own saga's rules."""
    raw: dict[str, Any] = {
        "customerId": args.customer_id,
        "wishDate": _parse_datetime("wishDate", args.wish_date),
    }
    line = {"subscriptionId": args.subscription_id, "phoneNumber": args.phone}
    if any(line.values()):
        raw["stn"] = {k: v for k, v in line.items() if v is not None}
    billing = {
        "orderId": args.order_id,
        "reason": args.reason,
        "canceledBy": args.canceled_by,
        "prorated": args.prorated or None,
        "proratedInvoiceId": args.prorated_invoice_id,
        "description": args.description,
    }
    if any(v is not None for v in billing.values()):
        raw["rebilly"] = {k: v for k, v in billing.items() if v is not None}
    if args.esim_order:
        raw["airalo"] = {"requestIds": args.esim_order}
    return parse_customer_churn_request(raw, datetime.now(UTC))


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _print_status(state: dict[str, Any]) -> None:
    print(
        f"{state.get('workflowId')}  {state.get('workflowType')}  {state.get('phase')}"
        f"  (run {str(state.get('runStatus', '')).lower()})"
    )
    for key, value in state.items():
        if key in {"workflowId", "workflowType", "phase", "runStatus", "steps"} or value in (
            None,
            [],
            {},
        ):
            continue
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            # e.g. one outcome per Airalo request id: one line each.
            print(f"  {key}:")
            for item in value:
                print("    " + "  ".join(str(v) for v in item.values() if v not in (None, "")))
            continue
        print(f"  {key}: {value if not isinstance(value, (dict, list)) else json.dumps(value)}")
    print("  steps:")
    for step in state.get("steps", []):
        print(f"    {step['at']}  {step['step']:<16} {step.get('detail', '')}")


# Start commands: how to read the request (before connecting) and which saga to start.
STARTERS: dict[str, tuple[Callable[[argparse.Namespace], Any], Callable[..., Awaitable[Any]]]] = {
    "terminate": (_termination_request, sagas.start_line_termination),
    "cancel-order": (_order_cancellation_request, sagas.start_order_cancellation),
    "cancel-future-orders": (_future_order_request, sagas.start_future_order_cancellation),
    "churn": (_churn_request, sagas.start_customer_churn),
}


async def _run(args: argparse.Namespace) -> int:
    settings = OrchestratorSettings()
    # Validate before connecting: bad input is reported even with Temporal down.
    starter = STARTERS.get(args.command)
    request = starter[0](args) if starter else None
    wish_date = (
        _parse_datetime("wishDate", args.wish_date) if args.command == "reschedule" else None
    )
    if args.command == "list":
        sagas.list_query(args.status, args.customer_id)
    client = await _connect()
    if starter is not None:
        started = await starter[1](client, request, settings)
        print(started.workflow_id)
        if started.already_running:
            print("already running: attached to the existing saga", file=sys.stderr)
        return EXIT_OK
    handlers: dict[str, Callable[[Client], Awaitable[int]]] = {
        "status": lambda c: _status(c, args),
        "revoke": lambda c: _steer(sagas.revoke(c, args.workflow_id, args.reason)),
        "confirm": lambda c: _steer(sagas.confirm(c, args.workflow_id)),
        "reschedule": lambda c: _steer(sagas.reschedule(c, args.workflow_id, wish_date)),  # type: ignore[arg-type]
        "resolve": lambda c: _steer(
            sagas.resolve(
                c,
                args.workflow_id,
                ResolveAction.RETRY if args.retry else ResolveAction.MARK_HANDLED,
                args.note,
            )
        ),
        "cancel": lambda c: _cancel(c, args.workflow_id),
        "list": lambda c: _list(c, args),
    }
    return await handlers[args.command](client)


async def _connect() -> Client:
    try:
        return await connect()
    except Exception as error:  # the SDK raises plain RuntimeError on connect failure
        target = connect_config().get("target_host")
        raise TemporalUnreachable(f"cannot reach Temporal at {target}: {error}") from error


async def _status(client: Client, args: argparse.Namespace) -> int:
    state = await sagas.saga_status(client, args.workflow_id)
    if args.json:
        _print_json(state)
    else:
        _print_status(state)
    return EXIT_OK


async def _steer(action: Awaitable[dict[str, Any]]) -> int:
    try:
        state = await action
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        print(f"refused: {cause.message if hasattr(cause, 'message') else cause}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{state.get('workflowId')}: {state.get('phase')}")
    return EXIT_OK


async def _cancel(client: Client, workflow_id: str) -> int:
    await sagas.cancel(client, workflow_id)
    print(f"{workflow_id}: cancellation requested; the saga compensates and stops")
    return EXIT_OK


async def _list(client: Client, args: argparse.Namespace) -> int:
    rows = await sagas.list_sagas(client, args.status, args.customer_id, args.limit)
    print(f"{'WORKFLOW ID':<44} {'TYPE':<24} {'PHASE':<16} {'WISH DATE':<26} CUSTOMER")
    for row in rows:
        wish = row.wish_date.isoformat(timespec="seconds") if row.wish_date else "-"
        print(
            f"{row.workflow_id:<44} {row.workflow_type:<24} {row.phase or '-':<16} {wish:<26} "
            f"{row.customer_id or '-'}"
        )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except InvalidRequest as error:
        for problem in error.problems:
            print(f"invalid {problem.field}: {problem.rule}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TemporalUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except RPCError as error:
        print(f"error: Temporal refused: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # `cancelctl list | head`: the reader left; exit quietly like other CLI tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def entrypoint() -> NoReturn:
    """The ``cancelctl`` console script.

    Exits with ``os._exit`` once output is flushed: the Temporal client's Rust
    threads can outlive the event loop and crash CPython's finalisation
    (temporalio/sdk-python#300), which would turn a success into exit 139.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entrypoint()
