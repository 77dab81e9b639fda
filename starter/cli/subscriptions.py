"""``cancelctl subscriptions add|list|remove|deliveries|replay|rotate``.

The same functions as the API (``starter/outcomes.py``) and the same rules (the
domain's ``parse_*``): bad input is exit 2 naming the field, checked before Temporal
is asked; an unknown subscription or a refused replay is exit 1. Secrets go in
(``--secret``) and are never printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from enum import StrEnum
from typing import Any

from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.common import SagaKind
from domain.outcomes import (
    OutcomeEventType,
    SubscriptionView,
    parse_rotate_request,
    parse_subscription_request,
)
from starter import outcomes
from starter.cli import output
from starter.cli.output import EXIT_FAILED, EXIT_OK, Command


class SubscriptionCommand(StrEnum):
    ADD = "add"
    LIST = "list"
    REMOVE = "remove"
    DELIVERIES = "deliveries"
    REPLAY = "replay"
    ROTATE = "rotate"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    parser = commands.add_parser(
        name,
        help="outcome event subscriptions: add, list, remove, rotate, deliveries, replay",
        description="Sagas POST their outcome events (CloudEvents, signed the Standard "
        "Webhooks way) to every matching subscription. Types: "
        + ", ".join(t.value for t in OutcomeEventType),
    )
    actions = parser.add_subparsers(dest="subscription_command", required=True, metavar="ACTION")
    add = actions.add_parser(SubscriptionCommand.ADD, help="subscribe a URL (prints its id)")
    add.add_argument("--url", required=True, help="http(s) URL the events are POSTed to")
    add.add_argument(
        "--secret",
        required=True,
        help="Standard Webhooks secret: whsec_ + base64 of 24-64 random bytes",
    )
    add.add_argument(
        "--type",
        dest="types",
        action="append",
        required=True,
        metavar="TYPE",
        help="an event type (repeat for more), e.g. saga.completed",
    )
    add.add_argument(
        "--kind",
        dest="kinds",
        action="append",
        metavar="KIND",
        help="only these saga kinds (repeat): " + ", ".join(k.value for k in SagaKind),
    )
    add.add_argument(
        "--customer", dest="customers", action="append", metavar="ID", help="only these customers"
    )
    listing = actions.add_parser(SubscriptionCommand.LIST, help="every subscription (no secrets)")
    listing.add_argument("--json", action="store_true")
    remove = actions.add_parser(SubscriptionCommand.REMOVE, help="remove a subscription")
    remove.add_argument("subscription_id", metavar="ID")
    deliveries = actions.add_parser(
        SubscriptionCommand.DELIVERIES, help="a subscription's deliveries, newest first"
    )
    deliveries.add_argument("subscription_id", metavar="ID")
    deliveries.add_argument("--limit", type=int, default=100, metavar="N")
    deliveries.add_argument("--json", action="store_true")
    replay = actions.add_parser(
        SubscriptionCommand.REPLAY, help="start the failed deliveries again (same webhook-id)"
    )
    replay.add_argument("subscription_id", metavar="ID")
    rotate = actions.add_parser(
        SubscriptionCommand.ROTATE,
        help="a new secret; the previous one still signs for 24 hours",
    )
    rotate.add_argument("subscription_id", metavar="ID")
    rotate.add_argument("--secret", required=True, help="the new whsec_ secret")


def prepare(args: argparse.Namespace, settings: OrchestratorSettings) -> Command:
    """Input checked here (``InvalidRequest``: exit 2), before connecting."""
    queue = settings.task_queue
    match args.subscription_command:
        case SubscriptionCommand.ADD:
            request = parse_subscription_request(
                {
                    "url": args.url,
                    "secret": args.secret,
                    "types": args.types,
                    "kinds": args.kinds,
                    "customers": args.customers,
                }
            )

            async def add(client: Client) -> int:
                view = await outcomes.add_subscription(client, queue, request, settings.environment)
                print(view.id)
                return EXIT_OK

            return add
        case SubscriptionCommand.LIST:
            return lambda client: _list(client, queue, as_json=args.json)
        case SubscriptionCommand.REMOVE:
            return lambda client: _show(
                outcomes.remove_subscription(client, queue, args.subscription_id), "removed"
            )
        case SubscriptionCommand.ROTATE:
            secret = parse_rotate_request({"secret": args.secret}).secret
            return lambda client: _show(
                outcomes.rotate_secret(client, queue, args.subscription_id, secret), "rotated"
            )
        case SubscriptionCommand.DELIVERIES:
            outcomes.check_limit(args.limit)
            return lambda client: _deliveries(
                client, queue, args.subscription_id, args.limit, as_json=args.json
            )
        case SubscriptionCommand.REPLAY:
            return lambda client: _replay(client, queue, args.subscription_id)
    raise AssertionError(f"no runner for subscriptions {args.subscription_command!r}")


async def _refusable(action: Awaitable[Any]) -> Any:
    try:
        return await action
    except (outcomes.SubscriptionNotFound, outcomes.SubscriptionDisabled) as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return None


async def _show(action: Awaitable[SubscriptionView], what: str) -> int:
    view = await _refusable(action)
    if view is None:
        return EXIT_FAILED
    print(f"{view.id}: {what}")
    return EXIT_OK


async def _list(client: Client, queue: str, *, as_json: bool) -> int:
    found = await outcomes.list_subscriptions(client, queue)
    if as_json:
        output.print_json([view.model_dump(mode="json") for view in found])
        return EXIT_OK
    for view in found:
        state = f"disabled: {view.disabled}" if view.disabled else "active"
        filters = "".join(
            f" {name}={','.join(values)}"
            for name, values in (("kinds", view.kinds), ("customers", view.customers))
            if values
        )
        print(f"{view.id}  {view.url}  {','.join(view.types)}{filters}  ({state})")
    return EXIT_OK


async def _deliveries(
    client: Client, queue: str, subscription_id: str, limit: int, *, as_json: bool
) -> int:
    found = await _refusable(outcomes.list_deliveries(client, queue, subscription_id, limit))
    if found is None:
        return EXIT_FAILED
    if as_json:
        output.print_json([delivery.model_dump(mode="json") for delivery in found])
        return EXIT_OK
    for delivery in found:
        attempt = f" attempt {delivery.attempt}" if delivery.attempt else ""
        failure = f" ({delivery.last_failure})" if delivery.last_failure else ""
        print(
            f"{delivery.delivery_id}  {delivery.event_type}  {delivery.saga_id}  "
            f"{delivery.state.value}{attempt}{failure}"
        )
    return EXIT_OK


async def _replay(client: Client, queue: str, subscription_id: str) -> int:
    replayed = await _refusable(outcomes.replay_failed(client, queue, subscription_id))
    if replayed is None:
        return EXIT_FAILED
    print(f"{len(replayed)} failed deliveries started again")
    for delivery_id in replayed:
        print(delivery_id)
    return EXIT_OK
