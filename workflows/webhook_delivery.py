"""WebhookDelivery: one outcome event POSTed to one subscriber, durably, at least once.

Started by the ``outcomes.publish`` local activity with the id
``delivery-<event id>-<subscription id>`` (a second start finds it: nothing doubles).
One activity, ``webhooks.deliver``, on the webhooks lane (``<queue>-webhooks``):
each attempt has a short timeout (a slow subscriber holds this delivery, never a
worker slot for long) and the attempts are the activity's retries, so the Temporal UI
shows how many there were and the last failure. 5xx, 429 (after its Retry-After),
timeouts and connection errors are retried with backoff for
:data:`DELIVERY_DEADLINE`; a 410 disables the subscription and ends the delivery;
another 4xx ends it failed. A failed delivery can be started again
(``POST /v1/subscriptions/{id}/replay``): the same event, the same ``webhook-id``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

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

#: One attempt: the HTTP client's own timeout (``CANCEL_WEBHOOK_TIMEOUT_SECONDS``,
#: default 10 s) is shorter; this bounds an attempt whose worker is lost.
ATTEMPT_TIMEOUT = timedelta(seconds=30)
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
#: How long a subscriber may be down before its event is given up (then replayable).
DELIVERY_DEADLINE = timedelta(hours=72)
#: 1 s, 2 s, 4 s ... then every 30 minutes: about 150 attempts in 72 hours.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    non_retryable_error_types=[
        SUBSCRIBER_REFUSED,
        SUBSCRIBER_GONE,
        SUBSCRIPTION_INACTIVE,
        DESTINATION_REFUSED,
    ],
)


# Worker Versioning: AUTO_UPGRADE, declared in workflows/versioning.py (why there).
@workflow.defn(name="WebhookDelivery")
class WebhookDelivery:
    @workflow.run
    async def run(self, delivery: Delivery) -> DeliveryResult:
        # A final failure fails this workflow (status "failed"), with the activity's cause.
        result: DeliveryResult = await workflow.execute_activity(
            DELIVER_ACTIVITY,
            delivery,
            result_type=DeliveryResult,
            task_queue=lane_queue(workflow.info().task_queue, WEBHOOKS_LANE),
            start_to_close_timeout=ATTEMPT_TIMEOUT,
            # A worker killed mid-attempt is noticed after this, not ATTEMPT_TIMEOUT.
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            schedule_to_close_timeout=DELIVERY_DEADLINE,
            retry_policy=DELIVERY_RETRY,
        )
        return result
