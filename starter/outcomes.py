"""Outcome subscriptions as the API and ``cancelctl`` manage them, and their deliveries.

One home for both entry points (like ``starter/sagas.py``): the store is the entity
workflow ``OutcomeSubscriptions`` (``workflows/outcome_subscriptions.py``), created on
the first change with update-with-start; deliveries are what each subscription's outbox
remembers (``SubscriberOutbox``: events accepted at the first attempt, its own or a
publish's inline one) and the ``WebhookDelivery`` workflows the others were handed to,
found through visibility by the ``OutcomeSubscriptionId`` search attribute. Secrets go
in (add, rotate) and never come out: every answer is a ``SubscriptionView``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributeKey, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.outcomes import DELIVERY_WORKFLOW, start_delivery
from activities.webhooks import destination_refusal
from config.settings import Environment
from domain import search_attributes as sa
from domain.common import FieldProblem, InvalidRequest
from domain.outcomes import (
    OUTBOX_CLOSE,
    OUTBOX_RECENT,
    Delivery,
    DeliveryListed,
    DeliveryState,
    NewSubscription,
    OutboxDelivery,
    RemoveSubscription,
    RotateSecret,
    SubscriptionRequest,
    SubscriptionsState,
    SubscriptionStoreQuery,
    SubscriptionStoreUpdate,
    SubscriptionView,
    delivery_workflow_id,
    outbox_workflow_id,
    subscriptions_workflow_id,
)
from workflows.patches import WEBHOOK_FIRST_ATTEMPT_LOCAL

STORE_WORKFLOW = "OutcomeSubscriptions"
MAX_DELIVERIES = 1000
#: Subscription ids as the store makes them (and nothing else reaches a visibility query).
_SUBSCRIPTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_STATES = {
    WorkflowExecutionStatus.RUNNING: DeliveryState.RETRYING,
    WorkflowExecutionStatus.COMPLETED: DeliveryState.DELIVERED,
}
_REPLAYABLE = ("Failed", "TimedOut", "Terminated", "Canceled")
#: The patches a run took (sdk-core upserts it with each patch marker).
_CHANGE_VERSION = SearchAttributeKey.for_keyword_list("TemporalChangeVersion")


class SubscriptionNotFound(LookupError):
    """No subscription with this id (404 / exit 1)."""


class SubscriptionDisabled(Exception):
    """The subscription no longer receives events (409 / exit 1)."""


async def check_destination(request: SubscriptionRequest, environment: Environment) -> None:
    """Production refuses a URL whose host resolves to an internal address (``url``)."""
    if environment != Environment.PRODUCTION:
        return
    refusal = await destination_refusal(request.url)
    if refusal is not None:
        raise InvalidRequest([FieldProblem(field="url", rule=refusal)])


async def add_subscription(
    client: Client, task_queue: str, request: SubscriptionRequest, environment: Environment
) -> SubscriptionView:
    await check_destination(request, environment)
    store = subscriptions_workflow_id(task_queue)
    start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
        STORE_WORKFLOW,
        SubscriptionsState(),
        id=store,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Outcome event subscriptions",
    )
    view: SubscriptionView = await client.execute_update_with_start_workflow(
        SubscriptionStoreUpdate.ADD,
        NewSubscription(request=request),
        start_workflow_operation=start,
        result_type=SubscriptionView,
    )
    return view


async def list_subscriptions(client: Client, task_queue: str) -> list[SubscriptionView]:
    store = client.get_workflow_handle(subscriptions_workflow_id(task_queue))
    try:
        found: list[SubscriptionView] = await store.query(
            SubscriptionStoreQuery.LIST, result_type=list[SubscriptionView]
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    return found


async def get_subscription(
    client: Client, task_queue: str, subscription_id: str
) -> SubscriptionView:
    for view in await list_subscriptions(client, task_queue):
        if view.id == subscription_id:
            return view
    raise SubscriptionNotFound(f"no subscription {subscription_id}")


async def _change(
    client: Client, task_queue: str, name: str, argument: Any, subscription_id: str
) -> SubscriptionView:
    store = client.get_workflow_handle(subscriptions_workflow_id(task_queue))
    try:
        view: SubscriptionView = await store.execute_update(
            name, argument, result_type=SubscriptionView
        )
    except WorkflowUpdateFailedError:
        raise SubscriptionNotFound(f"no subscription {subscription_id}") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise SubscriptionNotFound(f"no subscription {subscription_id}") from None
        raise
    return view


async def remove_subscription(
    client: Client, task_queue: str, subscription_id: str
) -> SubscriptionView:
    """Remove it from the store, then end its outbox (once what it holds is attempted:
    handed over as failed, the subscription being gone)."""
    removed = await _change(
        client,
        task_queue,
        SubscriptionStoreUpdate.REMOVE,
        RemoveSubscription(subscription_id=subscription_id),
        subscription_id,
    )
    try:
        await client.get_workflow_handle(outbox_workflow_id(subscription_id)).signal(OUTBOX_CLOSE)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:  # no event ever went to it, or ended
            raise
    return removed


async def rotate_secret(
    client: Client, task_queue: str, subscription_id: str, secret: str
) -> SubscriptionView:
    return await _change(
        client,
        task_queue,
        SubscriptionStoreUpdate.ROTATE,
        RotateSecret(subscription_id=subscription_id, secret=secret),
        subscription_id,
    )


def deliveries_query(subscription_id: str, *, replayable: bool = False) -> str:
    if not _SUBSCRIPTION_ID.match(subscription_id):
        raise SubscriptionNotFound(f"no subscription {subscription_id}")
    query = (
        f'WorkflowType = "{DELIVERY_WORKFLOW}" '
        f'AND {sa.OUTCOME_SUBSCRIPTION_ID.name} = "{subscription_id}"'
    )
    if replayable:
        statuses = " OR ".join(f'ExecutionStatus = "{status}"' for status in _REPLAYABLE)
        query += f" AND ({statuses})"
    return query


async def list_deliveries(
    client: Client, task_queue: str, subscription_id: str, limit: int = 100
) -> list[DeliveryListed]:
    """The subscription's deliveries, newest first: delivered, retrying (with the
    attempts so far and the last failure), failed. From visibility (a moment behind)."""
    check_limit(limit)
    await get_subscription(client, task_queue, subscription_id)
    listed: dict[str, DeliveryListed] = {}
    async for execution in client.list_workflows(deliveries_query(subscription_id)):
        # Newest run first: a replayed delivery shows how its replay went.
        if execution.id not in listed:
            listed[execution.id] = await _delivery(client, execution)
            if len(listed) == limit:
                break
    # Accepted at the first attempt: no workflow of their own. Handed over: the
    # delivery workflow tells more, once visibility shows it.
    for attempted in await _outbox_recent(client, subscription_id):
        delivery_id = delivery_workflow_id(attempted.event_id, subscription_id)
        listed.setdefault(delivery_id, _attempted(delivery_id, attempted))
    newest_first = sorted(listed.values(), key=_started, reverse=True)
    return newest_first[:limit]


def _started(delivery: DeliveryListed) -> datetime:
    return delivery.started_at or datetime.min.replace(tzinfo=UTC)


async def _outbox_recent(client: Client, subscription_id: str) -> list[OutboxDelivery]:
    """What the subscription's outbox remembers (its latest run), newest first."""
    outbox = client.get_workflow_handle(outbox_workflow_id(subscription_id))
    try:
        recent: list[OutboxDelivery] = await outbox.query(
            OUTBOX_RECENT, result_type=list[OutboxDelivery]
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return []  # no event went to the subscription yet
        raise
    return recent


def _attempted(delivery_id: str, attempted: OutboxDelivery) -> DeliveryListed:
    if attempted.delivered:
        state = DeliveryState.DELIVERED
    else:  # its delivery workflow not yet visible
        state = DeliveryState.RETRYING if attempted.retried else DeliveryState.FAILED
    return DeliveryListed(
        delivery_id=delivery_id,
        event_id=attempted.event_id,
        event_type=attempted.event_type,
        saga_id=attempted.saga_id,
        state=state,
        started_at=attempted.attempted_at,
        closed_at=attempted.attempted_at if attempted.delivered else None,
        attempt=1,
        last_failure=attempted.failure,
    )


async def _delivery(client: Client, execution: WorkflowExecution) -> DeliveryListed:
    attributes = execution.typed_search_attributes
    state = (
        _STATES.get(execution.status, DeliveryState.FAILED)
        if execution.status
        else DeliveryState.RETRYING
    )
    attempt = failure = None
    if state == DeliveryState.RETRYING:
        described = await client.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).describe()
        # A patched run's first attempt was a local activity, before the lane's.
        local_first = WEBHOOK_FIRST_ATTEMPT_LOCAL in (
            described.typed_search_attributes.get(_CHANGE_VERSION) or []
        )
        for pending in described.raw_description.pending_activities:
            attempt = pending.attempt + local_first
            if pending.HasField("last_failure"):
                # Failure messages are encrypted like every payload (config/codec.py).
                failure = str(await client.data_converter.decode_failure(pending.last_failure))
    event_id = (
        execution.id.removeprefix("delivery-").rsplit("-", 1)[0]
        if execution.id.startswith("delivery-")
        else None
    )
    return DeliveryListed(
        delivery_id=execution.id,
        event_id=event_id or None,
        event_type=attributes.get(sa.OUTCOME_EVENT_TYPE),
        saga_id=attributes.get(sa.OUTCOME_SAGA_ID),
        state=state,
        started_at=execution.start_time,
        closed_at=execution.close_time,
        attempt=attempt,
        last_failure=failure or None,
    )


async def replay_failed(client: Client, task_queue: str, subscription_id: str) -> list[str]:
    """Start every failed delivery of the subscription again: the same event, so the
    same ``webhook-id``. Refused for a disabled subscription (it would fail at once)."""
    subscription = await get_subscription(client, task_queue, subscription_id)
    if subscription.disabled is not None:
        raise SubscriptionDisabled(
            f"subscription {subscription_id} is disabled ({subscription.disabled}); "
            "add a new subscription for the endpoint"
        )
    replayed = []
    async for execution in client.list_workflows(
        deliveries_query(subscription_id, replayable=True), limit=MAX_DELIVERIES
    ):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [delivery] = await client.data_converter.decode(started.input.payloads, [Delivery])
        assert isinstance(delivery, Delivery)
        if await start_delivery(client, delivery, task_queue, replay=True):
            replayed.append(execution.id)
    return replayed


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_DELIVERIES:
        raise InvalidRequest([FieldProblem(field="limit", rule=f"must be 1 to {MAX_DELIVERIES}")])
