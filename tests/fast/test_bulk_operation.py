"""BulkOperation on the real dev server (every provider activity faked): a selection
steered saga by saga through each saga's own validator, a dry run that changes
nothing, one operation at a time, and a stop midway that keeps what was applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.bulk import BulkAction, BulkProgress, BulkRequest, SagaOutcome, Selection
from domain.churn import CustomerChurnRequest
from domain.common import Provider, SagaKind
from domain.stn import StnActivity, TerminationRequest
from starter import bulk, sagas
from starter.lanes import describe_lanes
from tests.fast.fakes import FakeProviders, Gate
from tests.fast.polling import wait_for_phase
from tests.helpers import eventually, record_history, status_of
from worker import ProductWorkers, ProviderClients, build_worker

CANCEL = StnActivity.CANCEL_TERMINATION
SUBMIT = StnActivity.SUBMIT_TERMINATION


def in_days(days: float) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


async def waiting_lines(
    client: Client, settings: OrchestratorSettings, uid: str, count: int, wish: datetime
) -> list[str]:
    ids = []
    for n in range(count):
        request = TerminationRequest(
            subscription_id=f"SUB-{uid}-{n}", wish_date=wish, customer_id=f"C-{uid}"
        )
        ids.append(
            (await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)).workflow_id
        )
    for workflow_id in ids:
        await wait_for_phase(client, workflow_id, "WAITING")
    return ids


async def selected(client: Client, query: str, count: int) -> None:
    async def visible() -> None:
        assert await bulk.count_selection(client, query) == count

    await eventually(visible)


async def run_to_the_end(
    client: Client, settings: OrchestratorSettings, request: BulkRequest, record: str = ""
) -> BulkProgress:
    started = await bulk.start_bulk(client, request, settings)
    handle = await bulk.operation_handle(client, settings, started.operation_id)
    report = await handle.result()
    if record:
        await record_history(handle, record)
    return report


async def test_a_bulk_reschedule_moves_every_selected_saga_once_and_a_dry_run_nothing(
    client: Client,
    fake_worker: ProductWorkers,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    ids = await waiting_lines(client, settings, uid, 6, in_days(3))
    selection = Selection(customer_id=f"C-{uid}", kind=SagaKind.LINE_TERMINATION)
    await selected(client, selection.visibility_query(settings.task_queue), 6)
    new_date = in_days(5)
    calls_before = len(fakes.calls)

    dry = await run_to_the_end(
        client,
        settings,
        BulkRequest(
            action=BulkAction.RESCHEDULE, selection=selection, wish_date=new_date, dry_run=True
        ),
    )

    assert dry.state == "done" and dry.selected == 6 and dry.processed == 6
    assert dry.counts == {SagaOutcome.WOULD_APPLY: 6}
    assert len(fakes.calls) == calls_before  # a dry run calls no provider

    moved = await run_to_the_end(
        client,
        settings,
        BulkRequest(action=BulkAction.RESCHEDULE, selection=selection, wish_date=new_date),
        record="bulk_operation_rescheduled",
    )

    assert moved.state == "done" and moved.counts == {SagaOutcome.APPLIED: 6}
    for workflow_id in ids:
        state = await status_of(client, workflow_id)
        assert state["phase"] == "WAITING"
        assert datetime.fromisoformat(state["wishDate"]) == new_date
    # Each line once: its termination cancelled, resubmitted for the new date.
    subscriptions = sorted(f"SUB-{uid}-{n}" for n in range(6))
    resubmitted = [c.subscription_id for c in fakes.args(SUBMIT)[6:]]
    assert sorted(resubmitted) == subscriptions
    assert len(fakes.args(CANCEL)) == 6


async def test_each_saga_says_why_it_refuses_and_the_dry_run_said_so_first(
    client: Client,
    fake_worker: ProductWorkers,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """Two lines and a churn whose eSIM order falls between the old and the new date:
    the churn's own validator refuses the move, with its reason; the lines move."""
    lines = await waiting_lines(client, settings, uid, 2, in_days(3))
    churn = CustomerChurnRequest.model_validate(
        {
            "customerId": f"C-{uid}",
            "wishDate": in_days(3),
            "airalo": {"requestIds": [fakes.add_future_order(in_days(4))]},
        }
    )
    churned = await sagas.start(client, SagaKind.CUSTOMER_CHURN, churn, settings)
    await wait_for_phase(client, churned.workflow_id, "WAITING")
    selection = Selection(customer_id=f"C-{uid}")
    await selected(client, selection.visibility_query(settings.task_queue), 3)
    new_date = in_days(5)
    move = {"action": BulkAction.RESCHEDULE, "selection": selection, "wishDate": new_date}

    dry = await run_to_the_end(
        client, settings, BulkRequest.model_validate({**move, "dryRun": True})
    )
    report = await run_to_the_end(client, settings, BulkRequest.model_validate(move))

    assert dry.counts == {SagaOutcome.WOULD_APPLY: 2, SagaOutcome.WOULD_REFUSE: 1}
    assert report.counts == {SagaOutcome.APPLIED: 2, SagaOutcome.REFUSED: 1}
    (would,), (refused,) = dry.details, report.details
    assert would.workflow_id == refused.workflow_id == churned.workflow_id
    assert "fall between the old and the new date" in would.detail
    assert "fall between the old and the new date" in refused.detail
    for workflow_id in lines:
        state = await status_of(client, workflow_id)
        assert datetime.fromisoformat(state["wishDate"]) == new_date


async def test_a_second_operation_is_refused_while_one_runs(
    client: Client,
    fake_worker: ProductWorkers,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    await waiting_lines(client, settings, uid, 2, in_days(3))
    selection = Selection(customer_id=f"C-{uid}")
    await selected(client, selection.visibility_query(settings.task_queue), 2)
    hold = Gate()  # the first operation's first request stays in flight
    fakes.on(CANCEL, hold.hold(fakes.default(CANCEL)))
    first = await bulk.start_bulk(
        client, BulkRequest(action=BulkAction.REVOKE, selection=selection), settings
    )
    await hold.entered.wait()

    with pytest.raises(bulk.BulkOperationRunning) as refused:
        await bulk.start_bulk(
            client, BulkRequest(action=BulkAction.CANCEL, selection=selection), settings
        )

    assert refused.value.operation_id == first.operation_id
    hold.open()
    report = await (await bulk.operation_handle(client, settings, first.operation_id)).result()
    assert report.counts == {SagaOutcome.APPLIED: 2}


async def test_stopped_midway_what_was_applied_stays_and_is_reported(
    client: Client,
    fake_worker: ProductWorkers,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    """30 lines: the first batch (25) is in flight when the operator stops the operation.
    That batch finishes and is reported; the other five are never sent a request."""
    ids = await waiting_lines(client, settings, uid, 30, in_days(3))
    selection = Selection(customer_id=f"C-{uid}")
    await selected(client, selection.visibility_query(settings.task_queue), 30)
    hold = Gate()
    fakes.on(CANCEL, hold.hold(fakes.default(CANCEL)))
    started = await bulk.start_bulk(
        client, BulkRequest(action=BulkAction.REVOKE, selection=selection), settings
    )
    await hold.entered.wait()

    await bulk.stop(client, settings, started.operation_id)
    hold.open()
    report = await (await bulk.operation_handle(client, settings, started.operation_id)).result()

    assert report.state == "cancelled"
    assert report.processed == 25 and report.counts == {SagaOutcome.APPLIED: 25}
    phases = [(await status_of(client, workflow_id))["phase"] for workflow_id in ids]
    assert phases.count("REVOKED") == 25 and phases.count("WAITING") == 5
    assert len(fakes.args(CANCEL)) == 25
    assert (await bulk.progress_of(client, settings, started.operation_id)) == report


async def test_an_operation_is_paced_by_its_lanes_limits(
    client: Client,
    fakes: FakeProviders,
    settings: OrchestratorSettings,
    task_queue: str,
    uid: str,
) -> None:
    """sTN's lane at 8 calls/s, a reschedule costing up to 4 sTN calls a saga: the
    operation steers at most 2 sagas a second, so their calls stay within the lane."""
    clients = ProviderClients.of(fakes.activities(), limits={Provider.STN: 8.0})
    async with build_worker(client, task_queue, clients):

        async def limit_known() -> None:
            (stn,) = await describe_lanes(client, task_queue, [Provider.STN])
            assert stn.limit_per_second == 8.0

        await eventually(limit_known)
        await waiting_lines(client, settings, uid, 2, in_days(3))
        selection = Selection(customer_id=f"C-{uid}")
        await selected(client, selection.visibility_query(settings.task_queue), 2)

        report = await run_to_the_end(
            client,
            settings,
            BulkRequest(action=BulkAction.RESCHEDULE, selection=selection, wish_date=in_days(4)),
        )

    assert report.pace_per_second == 2.0
    assert report.counts == {SagaOutcome.APPLIED: 2}
