"""The outcome events under the suite's faults: every final saga's outcome reaches every
matching subscriber, once after dedupe by ``webhook-id``.

Each scenario's stack gets one subscription to the final event types, pointed at the
sandbox's subscriber endpoint (``sandbox/subscriber.py``), which is down (503) for the
scenario's first seconds and answers slowly after (so that a worker killed meanwhile
dies mid-delivery). The sandbox keeps the endpoint in its state file: a restarted
sandbox checks the same secret and still knows what it received. After the sagas
settle, the suite waits until no outbox holds an event and no delivery is still
retrying, then :func:`check`:

* every saga run that closed in a final phase has exactly one event of that phase's
  type (``saga.completed`` ...) among the endpoint's accepted deliveries, after dedupe
  by ``webhook-id``; none is missing, none came twice under two ids;
* no accepted event names a saga or an outcome Temporal does not have;
* every attempt carried a signature the library verified.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from config.settings import Environment
from domain.outcomes import FINAL_EVENTS, OUTBOX_WAITING, SubscriptionRequest
from reliability.invariants import Violation
from reliability.observe import RunRecord
from sandbox.testing import SandboxAdmin
from starter import outcomes

ENDPOINT = "reliability"
#: The subscriber answers this long after each request arrives (kills land mid-delivery).
SLOW_ANSWER_SECONDS = 0.5
RUNNING_DELIVERIES = 'WorkflowType = "WebhookDelivery" AND ExecutionStatus = "Running"'
RUNNING_OUTBOXES = 'WorkflowType = "SubscriberOutbox" AND ExecutionStatus = "Running"'


#: Requests the subscriber refuses first, whatever the clock says.
REFUSED_AT_LEAST = 2


async def subscribe(
    client: Client, admin: SandboxAdmin, task_queue: str, down_seconds: float
) -> None:
    """The scenario's subscription; its endpoint is down (503) for ``down_seconds``, and
    for its first :data:`REFUSED_AT_LEAST` requests in any case: on a fast machine the
    first final events can come after the window, and the outage would go untested."""
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    await asyncio.to_thread(
        admin.configure_subscriber,
        ENDPOINT,
        secrets=[secret],
        failForSeconds=down_seconds,
        failCount=REFUSED_AT_LEAST,
        delaySeconds=SLOW_ANSWER_SECONDS,
    )
    request = SubscriptionRequest(
        url=admin.subscriber_url(ENDPOINT), secret=secret, types=list(FINAL_EVENTS.values())
    )
    await outcomes.add_subscription(client, task_queue, request, Environment.DEVELOPMENT)


async def wait_delivered(client: Client, deadline_seconds: float) -> bool:
    """Until no outbox holds an event not yet attempted and no delivery is retrying
    (twice in a row: visibility lags, and an outbox may hand an event over between the
    two looks), or the deadline."""
    deadline = time.monotonic() + deadline_seconds
    quiet_once = False
    while time.monotonic() < deadline:
        quiet = await _outboxes_empty(client) and (
            (await client.count_workflows(RUNNING_DELIVERIES)).count == 0
        )
        if quiet and quiet_once:
            return True
        quiet_once = quiet
        await asyncio.sleep(1.0)
    return False


async def _outboxes_empty(client: Client) -> bool:
    async for outbox in client.list_workflows(RUNNING_OUTBOXES):
        handle = client.get_workflow_handle(outbox.id, run_id=outbox.run_id)
        try:
            if await handle.query(
                OUTBOX_WAITING, result_type=int, rpc_timeout=timedelta(seconds=5)
            ):
                return False
        except RPCError:
            return False  # continued as new, or its worker just restarted: look again
    return True


def check(runs: list[RunRecord], received: dict[str, Any]) -> list[Violation]:
    violations: list[Violation] = []
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    for run in runs:
        if run.execution_status != "RUNNING" and run.phase in FINAL_EVENTS:
            expected[run.workflow_id][FINAL_EVENTS[run.phase]] += 1
    got: dict[str, Counter[str]] = defaultdict(Counter)
    for event in received["events"]:  # one per webhook-id, as a deduping receiver keeps
        got[str(event["subject"])][str(event["type"])] += 1
    for workflow_id in sorted(set(expected) | set(got)):
        want, have = expected.get(workflow_id, Counter()), got.get(workflow_id, Counter())
        for event_type in sorted(set(want) | set(have)):
            if have[event_type] < want[event_type]:
                violations.append(
                    Violation(
                        workflow_id,
                        "outcome-lost",
                        f"{want[event_type]} run(s) ended with {event_type}; the subscriber "
                        f"received {have[event_type]}",
                    )
                )
            elif have[event_type] > want[event_type]:
                violations.append(
                    Violation(
                        workflow_id,
                        "outcome-doubled",
                        f"the subscriber received {have[event_type]} distinct {event_type} "
                        f"event(s) for {want[event_type]} run(s)",
                    )
                )
    unverified = [a for a in received["attempts"] if not a["verified"]]
    if unverified:
        violations.append(
            Violation(
                ENDPOINT,
                "outcome-unsigned",
                f"{len(unverified)} attempt(s) whose signature did not verify",
            )
        )
    return violations


def counters(received: dict[str, Any]) -> dict[str, int]:
    """What the report notes about the endpoint."""
    attempts = received["attempts"]
    return {
        "outcome events accepted (after dedupe)": len(received["events"]),
        "outcome delivery attempts": len(attempts),
        "outcome attempts refused while the subscriber was down": sum(
            a["status"] == 503 for a in attempts
        ),
        "outcome attempts repeated after a 2xx (deduped)": len(
            [a for a in attempts if 200 <= a["status"] < 300]
        )
        - len(received["events"]),
    }
