"""Provider lanes on the real dev server: each provider's calls on its own task queue,
handed out by priority, at most at the lane's limit (every activity faked).

Order and counts, never times: a backlog is built while no worker serves a lane, then
one lane worker taking one call at a time shows the order the server hands them out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from config.settings import OrchestratorSettings, WorkerSettings
from domain.airalo import AiraloActivity
from domain.common import Provider, SagaKind
from domain.lanes import MEMO_OBSERVATION_SPREAD, Urgency, lane_queue, observation_delay
from domain.stn import StnActivity, TerminationRequest
from starter import sagas
from starter.kinds import KINDS
from starter.lanes import describe_lanes, observation_spreads
from tests.fast.fakes import FakeProviders
from tests.fast.polling import wait_for_phase
from tests.helpers import eventually, result_of
from worker import ProductWorkers, ProviderClients, build_worker

SUBMIT = StnActivity.SUBMIT_TERMINATION


async def lane_backlog(client: Client, task_queue: str, provider: str) -> int:
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=lane_queue(task_queue, provider)),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        )
    )
    return described.stats.approximate_backlog_count


async def scheduled_priorities(client: Client, workflow_id: str) -> list[tuple[str, str, int]]:
    """Each provider call a run scheduled: (activity, task queue, priority key)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    scheduled = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            scheduled.append(
                (
                    attributes.activity_type.name,
                    attributes.task_queue.name,
                    attributes.priority.priority_key,
                )
            )
    return scheduled


def termination(uid: str, n: int, wish: datetime | None) -> TerminationRequest:
    return TerminationRequest(subscription_id=f"SUB-{uid}-{n}", wish_date=wish)


@pytest.fixture
async def workflows_only(
    client: Client, task_queue: str, fakes: FakeProviders
) -> AsyncIterator[ProductWorkers]:
    """The sagas' worker alone: every provider call waits in its lane."""
    clients = ProviderClients.of(fakes.activities())
    serving = WorkerSettings(serves="workflows")
    async with build_worker(client, task_queue, clients, serving) as running:
        yield running


async def test_each_call_takes_its_providers_lane_and_its_priority(
    client: Client, fake_worker: ProductWorkers, fakes: FakeProviders, uid: str, task_queue: str
) -> None:
    settings = OrchestratorSettings(task_queue=task_queue)
    far = datetime.now(UTC) + timedelta(days=3)
    started = await sagas.start(
        client, SagaKind.LINE_TERMINATION, termination(uid, 1, far), settings
    )
    await wait_for_phase(client, started.workflow_id, "WAITING")
    await sagas.revoke(client, started.workflow_id, "customer stayed")
    # An eSIM order whose cut-off is minutes away: its cancellation is a deadline call.
    order = fakes.add_future_order(datetime.now(UTC) + timedelta(hours=24, minutes=10))
    request = {"requestIds": [order]}
    esims = await sagas.start(
        client,
        SagaKind.FUTURE_ORDER_CANCELLATION,
        KINDS[SagaKind.FUTURE_ORDER_CANCELLATION].parse(request, None),
        settings,
    )
    await result_of(client, esims.workflow_id)

    stn, airalo = lane_queue(task_queue, Provider.STN), lane_queue(task_queue, Provider.AIRALO)
    line = await scheduled_priorities(client, started.workflow_id)
    # A submit for a date days ahead is bulk; the revoke's cancellation is an operator's.
    assert line[0] == (SUBMIT, stn, Urgency.BULK)
    assert (StnActivity.CANCEL_TERMINATION, stn, Urgency.UNDO) in line
    assert all(queue == stn and key == Urgency.UNDO for _, queue, key in line[1:])
    orders = await scheduled_priorities(client, esims.workflow_id)
    assert orders == [
        (AiraloActivity.LIST_FUTURE_ORDERS_PAGE, airalo, Urgency.ROUTINE),
        (AiraloActivity.CANCEL_FUTURE_ORDERS, airalo, Urgency.DEADLINE),
    ]


async def test_a_lane_hands_out_its_backlog_by_priority_and_starves_nothing(
    client: Client,
    workflows_only: ProductWorkers,
    fakes: FakeProviders,
    uid: str,
    task_queue: str,
) -> None:
    """Ten submits for dates days ahead (bulk) wait in sTN's lane; an immediate
    termination started after them (routine) is handed out first; every one is sent."""
    settings = OrchestratorSettings(task_queue=task_queue)
    far = datetime.now(UTC) + timedelta(days=5)
    bulk = [
        await sagas.start(client, SagaKind.LINE_TERMINATION, termination(uid, n, far), settings)
        for n in range(10)
    ]

    async def backlog_of(count: int) -> None:
        assert await lane_backlog(client, task_queue, Provider.STN) == count

    await eventually(lambda: backlog_of(10))
    urgent = await sagas.start(
        client, SagaKind.LINE_TERMINATION, termination(uid, 99, None), settings
    )
    await eventually(lambda: backlog_of(11))

    one_at_a_time = WorkerSettings(serves=Provider.STN, max_concurrent_activities=1)
    clients = ProviderClients.of(fakes.activities())
    async with build_worker(client, task_queue, clients, one_at_a_time):
        await result_of(client, urgent.workflow_id)
        for started in bulk:
            await wait_for_phase(client, started.workflow_id, "WAITING")

    submitted = [call.arg.subscription_id for call in fakes.calls if call.activity == SUBMIT]
    assert submitted[0] == f"SUB-{uid}-99"
    assert sorted(submitted[1:]) == sorted(f"SUB-{uid}-{n}" for n in range(10))


async def test_a_lanes_limit_holds_at_the_provider(
    client: Client, workflows_only: ProductWorkers, fakes: FakeProviders, uid: str, task_queue: str
) -> None:
    """sTN's lane at 2 calls per second: however many terminations arrive at once, the
    calls reach sTN at that rate (the server hands them out), and the server says so.
    An upper bound only: a slow machine makes the calls slower, never faster."""
    limit = 2.0
    settings = OrchestratorSettings(task_queue=task_queue)
    clients = ProviderClients.of(fakes.activities(), limits={Provider.STN: limit})
    async with build_worker(client, task_queue, clients, WorkerSettings(serves=Provider.STN)):
        started = [
            await sagas.start(
                client, SagaKind.LINE_TERMINATION, termination(uid, n, None), settings
            )
            for n in range(16)
        ]
        for run in started:
            await result_of(client, run.workflow_id)
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=lane_queue(task_queue, Provider.STN)),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                report_config=True,
            )
        )

    assert described.effective_rate_limit.requests_per_second == limit
    calls = sorted(call.at for call in fakes.calls if call.activity.startswith("stn."))
    assert len(calls) >= 32  # a submit and a poll each
    # In any 10-second window, within 1.5 times the limit (the server's rate limiter
    # lets a short burst through; the bound for a lane at the provider).
    window = timedelta(seconds=10)
    most = max(
        sum(1 for later in calls[i:] if later - first < window) for i, first in enumerate(calls)
    )
    assert most <= 1.5 * limit * window.total_seconds(), most


async def test_a_start_fixes_the_spread_its_lanes_limits_call_for(
    client: Client, fakes: FakeProviders, task_queue: str
) -> None:
    """sTN's lane at 20 calls per second needs 500 s for a wave of 10,000 first polls:
    that is the window a saga started now spreads its first sTN poll over; a lane
    without a limit of ours spreads nothing."""
    clients = ProviderClients.of(fakes.activities(), limits={Provider.STN: 20.0})
    async with build_worker(client, task_queue, clients):

        async def limit_known() -> None:
            (stn,) = await describe_lanes(client, task_queue, [Provider.STN])
            assert stn.limit_per_second == 20.0 and stn.limit_source == "worker setting"

        await eventually(limit_known)
        spreads = await observation_spreads(client, task_queue)

    assert spreads == {Provider.STN: 500.0}


async def test_a_wave_due_at_once_first_looks_at_its_provider_spread_over_its_window(
    client: Client, fake_worker: ProductWorkers, uid: str, task_queue: str
) -> None:
    """Six terminations due at the same second, started with a 2-second window for sTN
    (what a fast lane calls for): each first polls sTN at its own place in the window,
    never before it. Lower bounds only: a slow machine delays, it cannot advance a timer."""
    spec = KINDS[SagaKind.LINE_TERMINATION]
    settings = OrchestratorSettings(task_queue=task_queue)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    handles = []
    for n in range(6):
        request = termination(uid, n, due)
        handles.append(
            await client.start_workflow(
                spec.run,
                request,
                id=spec.workflow_id(request, settings),
                task_queue=task_queue,
                memo={MEMO_OBSERVATION_SPREAD: {Provider.STN: 2.0}},
            )
        )

    delays = []
    for handle in handles:
        final = await result_of(client, handle.id)
        assert final["phase"] == "COMPLETED"
        delay = observation_delay(handle.id, timedelta(seconds=2))
        polling = next(s for s in final["steps"] if s["step"] == "polling")
        assert datetime.fromisoformat(polling["at"]) >= due + delay
        assert "place in the wave" in polling["detail"]
        delays.append(delay)
    assert len(set(delays)) == len(delays)  # not all in the same instant
    assert all(timedelta(0) <= delay < timedelta(seconds=2) for delay in delays)
