"""WebhookDelivery: one outcome event POSTed to one subscriber, durably, at least once.

Started with the id ``delivery-<event id>-<subscription id>`` (a second start finds it:
nothing doubles), eagerly: its first workflow task comes back to the starting worker in
the start's answer. Since the subscriber outboxes (``workflows/subscriber_outbox.py``)
it is started only for an event whose first attempt, the outbox's, failed; its input
then carries how (``Delivery.first_attempt``): not retried (a 410, another 4xx, an
inactive subscription), it ends failed at once with that failure, without a POST;
retried, it waits the first interval (or the ``Retry-After``) and goes on with the
lane's activity as below. A replayed delivery (and, before the outboxes, every one,
started by the ``outcomes.publish`` local activity) makes the first attempt itself:

That first attempt is a local activity in that task (patch ``webhook-first-attempt-local``):
a subscriber that accepts at once costs the delivery one workflow task and no activity
task (started, its markers, completed). Only a failed first attempt falls back to the
regular activity, ``webhooks.deliver`` on the webhooks lane (``<queue>-webhooks``), after
a durable timer (the first backoff, or the subscriber's ``Retry-After``): there each
attempt has a short timeout (a slow subscriber holds this delivery, never a worker slot
for long) and the attempts are the activity's retries, so the Temporal UI shows how
many there were and the last failure. 5xx, 429 (after its Retry-After), timeouts and
connection errors are retried with backoff until :data:`DELIVERY_DEADLINE` after the
start; a 410 disables the subscription and ends the delivery; another 4xx ends it
failed, at the first attempt as at any other. A failed delivery can be started again
(``POST /v1/subscriptions/{id}/replay``): the same event, the same ``webhook-id``.
Runs started before the patch deliver with the regular activity from the first attempt.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from domain.lanes import lane_queue
    from domain.outcomes import (
        DELIVER_ACTIVITY,
        DESTINATION_REFUSED,
        SUBSCRIBER_GONE,
        SUBSCRIBER_REFUSED,
        SUBSCRIPTION_INACTIVE,
        WEBHOOKS_LANE,
        Delivery,
        DeliveryResult,
    )

from workflows import patches

#: One attempt: the HTTP client's own timeout (``CANCEL_WEBHOOK_TIMEOUT_SECONDS``,
#: default 10 s) is shorter; this bounds an attempt whose worker is lost.
ATTEMPT_TIMEOUT = timedelta(seconds=30)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
#: How long a subscriber may be down before its event is given up (then replayable).
DELIVERY_DEADLINE = timedelta(hours=72)
#: Failures that end the delivery at once (410, another 4xx, removed or disabled, SSRF).
NOT_RETRIED = (SUBSCRIBER_REFUSED, SUBSCRIBER_GONE, SUBSCRIPTION_INACTIVE, DESTINATION_REFUSED)
#: 1 s, 2 s, 4 s ... then every 30 minutes: about 150 attempts in 72 hours.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    non_retryable_error_types=list(NOT_RETRIED),
)
#: The local first attempt is one attempt: its retries are the regular activity's.
FIRST_ATTEMPT = RetryPolicy(maximum_attempts=1)
#: After the first attempt and the timer of the first interval, the regular activity
#: goes on where the schedule stands (2 s, 4 s ...), not again from 1 s.
AFTER_FIRST_ATTEMPT = dataclasses.replace(
    DELIVERY_RETRY,
    initial_interval=DELIVERY_RETRY.initial_interval * DELIVERY_RETRY.backoff_coefficient,
)


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="WebhookDelivery")
class WebhookDelivery:
    @workflow.run
    async def run(self, delivery: Delivery) -> DeliveryResult:
        # A final failure fails this workflow (status "failed"), with the activity's cause.
        if not workflow.patched(patches.WEBHOOK_FIRST_ATTEMPT_LOCAL):
            return await self._attempts(delivery, DELIVERY_RETRY, DELIVERY_DEADLINE)
        handed = delivery.first_attempt
        if handed is not None:  # the subscriber's outbox made the first attempt
            if not handed.retried:
                raise ApplicationError(handed.failure, type=handed.failure_type, non_retryable=True)
            await workflow.sleep(
                timedelta(seconds=handed.retry_after_seconds)
                if handed.retry_after_seconds
                else DELIVERY_RETRY.initial_interval
            )
            return await self._after_first_attempt(delivery)
        try:
            delivered: DeliveryResult = await workflow.execute_local_activity(
                DELIVER_ACTIVITY,
                delivery,
                result_type=DeliveryResult,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                retry_policy=FIRST_ATTEMPT,
            )
            return delivered
        # A local activity's failure reaches the workflow as the activity raised it (an
        # ApplicationError; a TimeoutError when the attempt timed out), not wrapped.
        except (ActivityError, ApplicationError, ActivityTimeout) as failed:
            if not _retried(failed):
                raise  # 410, another 4xx, an inactive subscription, a refused destination
            await workflow.sleep(_first_interval(failed))
        return await self._after_first_attempt(delivery)

    async def _after_first_attempt(self, delivery: Delivery) -> DeliveryResult:
        """The lane's attempts after a failed first one, within the delivery's deadline."""
        elapsed = workflow.now() - workflow.info().workflow_start_time
        result = await self._attempts(delivery, AFTER_FIRST_ATTEMPT, DELIVERY_DEADLINE - elapsed)
        # The activity counts its own attempts; the first one came before them.
        return result.model_copy(update={"attempt": result.attempt + 1})

    async def _attempts(
        self, delivery: Delivery, retry: RetryPolicy, deadline: timedelta
    ) -> DeliveryResult:
        """The retried activity on the webhooks lane, until delivered or ``deadline``."""
        result: DeliveryResult = await workflow.execute_activity(
            DELIVER_ACTIVITY,
            delivery,
            result_type=DeliveryResult,
            task_queue=lane_queue(workflow.info().task_queue, WEBHOOKS_LANE),
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            # A worker killed mid-attempt is noticed after this, not ATTEMPT_TIMEOUT.
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            schedule_to_close_timeout=deadline,
            retry_policy=retry,
        )
        return result


def _cause(failed: FailureError) -> BaseException | None:
    return failed.cause if isinstance(failed, ActivityError) else failed


def _retried(failed: FailureError) -> bool:
    """Whether the lane's activity retries what the first attempt failed with."""
    cause = _cause(failed)
    return not (
        isinstance(cause, ApplicationError) and (cause.non_retryable or cause.type in NOT_RETRIED)
    )


def _first_interval(failed: FailureError) -> timedelta:
    """The wait before the lane's first attempt: the subscriber's ``Retry-After`` (a
    429), else the retry policy's first interval."""
    cause = _cause(failed)
    if isinstance(cause, ApplicationError) and cause.next_retry_delay:
        return cause.next_retry_delay
    return DELIVERY_RETRY.initial_interval
