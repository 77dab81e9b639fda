"""The subscription store: one entity workflow per task queue holds every subscription.

Why Temporal and not a database: the product runs nothing but Temporal (the dev
server, the cluster, Temporal Cloud); a store here needs no new service, no schema, no
backup of its own, and its payloads go through the project's codec like every other
(``config/codec.py``: AES-256-GCM), so subscriber secrets are never in clear on the
server. Changes are updates (validated, one at a time, each answered with the result),
reads are queries: ``list`` for the API and ``cancelctl`` (no secrets), ``with_secrets``
for the worker's activities only. The history grows with every change, so the store
continues as new when Temporal suggests it, or after :data:`CHANGES_PER_RUN` changes,
carrying its whole state (encrypted) into the new run.

Its workflow id is ``outcome-subscriptions-<task queue>``
(``domain.outcomes.subscriptions_workflow_id``); clients create it on their first
change with update-with-start (``starter/outcomes.py``).
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.outcomes import (
        ROTATION_OVERLAP,
        DisableSubscription,
        NewSubscription,
        RemoveSubscription,
        RotateSecret,
        Subscription,
        SubscriptionsState,
        SubscriptionStoreQuery,
        SubscriptionStoreUpdate,
        SubscriptionView,
    )

#: Changes one run takes before it continues as new (its history stays small).
CHANGES_PER_RUN = 500


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="OutcomeSubscriptions")
class OutcomeSubscriptions:
    @workflow.init
    def __init__(self, state: SubscriptionsState | None = None) -> None:
        self._subscriptions = {s.id: s for s in (state or SubscriptionsState()).subscriptions}
        self._changes = 0

    @workflow.run
    async def run(self, state: SubscriptionsState | None = None) -> None:
        await workflow.wait_condition(
            lambda: (
                self._changes >= CHANGES_PER_RUN or workflow.info().is_continue_as_new_suggested()
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(SubscriptionsState(subscriptions=self._pruned(workflow.now())))

    def _pruned(self, now: datetime) -> list[Subscription]:
        """Every subscription, without previous secrets whose overlap has ended."""
        kept = []
        for subscription in self._subscriptions.values():
            until = subscription.previous_secret_until
            if until is not None and now >= until:
                subscription = subscription.model_copy(
                    update={"previous_secret": None, "previous_secret_until": None}
                )
            kept.append(subscription)
        return kept

    def _get(self, subscription_id: str) -> Subscription:
        found = self._subscriptions.get(subscription_id)
        if found is None:
            raise ValueError(f"no subscription {subscription_id}")
        return found

    # -- changes -----------------------------------------------------------------------

    @workflow.update(name=SubscriptionStoreUpdate.ADD, description="Add a subscription")
    def add(self, new: NewSubscription) -> SubscriptionView:
        request = new.request
        subscription = Subscription(
            id=f"sub_{workflow.uuid4().hex[:20]}",
            url=request.url,
            secret=request.secret,
            types=request.types,
            kinds=[str(kind) for kind in request.kinds] if request.kinds else None,
            customers=request.customers,
            created_at=workflow.now(),
        )
        self._subscriptions[subscription.id] = subscription
        self._changes += 1
        return subscription.public()

    @workflow.update(name=SubscriptionStoreUpdate.REMOVE, description="Remove a subscription")
    def remove(self, request: RemoveSubscription) -> SubscriptionView:
        removed = self._subscriptions.pop(request.subscription_id)
        self._changes += 1
        return removed.public()

    @workflow.update(
        name=SubscriptionStoreUpdate.ROTATE,
        description="A new secret; the previous one signs too during the overlap",
    )
    def rotate(self, request: RotateSecret) -> SubscriptionView:
        current = self._get(request.subscription_id)
        rotated = current.model_copy(
            update={
                "secret": request.secret,
                "previous_secret": current.secret,
                "previous_secret_until": workflow.now() + ROTATION_OVERLAP,
            }
        )
        self._subscriptions[rotated.id] = rotated
        self._changes += 1
        return rotated.public()

    @workflow.update(
        name=SubscriptionStoreUpdate.DISABLE,
        description="Stop sending to a subscription (its endpoint answered 410 Gone)",
    )
    def disable(self, request: DisableSubscription) -> SubscriptionView:
        current = self._get(request.subscription_id)
        if current.disabled is None:
            current = current.model_copy(update={"disabled": request.reason})
            self._subscriptions[current.id] = current
            self._changes += 1
        return current.public()

    @remove.validator
    def _known_to_remove(self, request: RemoveSubscription) -> None:
        self._get(request.subscription_id)

    @rotate.validator
    def _known_to_rotate(self, request: RotateSecret) -> None:
        self._get(request.subscription_id)

    @disable.validator
    def _known_to_disable(self, request: DisableSubscription) -> None:
        self._get(request.subscription_id)

    # -- reads -----------------------------------------------------------------------------

    @workflow.query(name=SubscriptionStoreQuery.LIST)
    def list_subscriptions(self) -> list[SubscriptionView]:
        return [subscription.public() for subscription in self._subscriptions.values()]

    @workflow.query(name=SubscriptionStoreQuery.WITH_SECRETS)
    def with_secrets(self) -> list[Subscription]:
        return list(self._subscriptions.values())
