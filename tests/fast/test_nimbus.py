"""A fourth provider, added as ``docs/adding-a-provider.md`` says, with no product module
edited: Nimbus (``tests/fast/nimbus/``) plugs into the saga kind registry and runs as
a saga of its own and as a part composed around the sTN line, on the real dev server
with the product's steering kernel, provider calls and pivot composition. Its
activities and sTN's are faked (the fast tier)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from config.settings import OrchestratorSettings
from domain.stn import StnActivity
from starter import sagas
from starter.kinds import KINDS
from tests.fast.fakes import FakeProviders
from tests.fast.nimbus.activities import FakeNimbus
from tests.fast.nimbus.domain import (
    LINE_AND_PLAN,
    PLAN_CANCELLATION,
    NimbusActivity,
    parse_line_and_plan,
    parse_plan_cancellation,
)
from tests.fast.nimbus.kinds import LINE_AND_PLAN_KIND, PLAN
from tests.fast.polling import wait_for_phase
from tests.helpers import result_of
from worker import ProductWorkers, ProviderClients, build_worker

SCHEDULE = NimbusActivity.SCHEDULE_CANCELLATION
AWAIT_EFFECTIVE = NimbusActivity.AWAIT_EFFECTIVE
WITHDRAW = NimbusActivity.WITHDRAW_CANCELLATION


def first_call(fakes: FakeProviders, name: str) -> datetime:
    return next(call.at for call in fakes.calls if call.activity == name)


def soon() -> datetime:
    # The durable timer is part of what these tests check: ~1 s of wall clock.
    return datetime.now(UTC) + timedelta(seconds=1)


def in_days(days: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


@pytest.fixture
def nimbus() -> FakeNimbus:
    return FakeNimbus()


@pytest.fixture
async def nimbus_worker(
    client: Client, task_queue: str, fakes: FakeProviders, nimbus: FakeNimbus
) -> AsyncIterator[ProductWorkers]:
    """Nimbus's kinds registered for the test; the worker runs every registered kind."""
    with KINDS.register(PLAN), KINDS.register(LINE_AND_PLAN_KIND):
        # Nimbus gets a lane of its own like every provider: its activities' names say whose.
        clients = ProviderClients.of([*fakes.activities(), *nimbus.activities()])
        workflows = [spec.workflow for spec in KINDS]
        async with build_worker(client, task_queue, clients, workflows=workflows) as running:
            yield running


async def start_plan(
    client: Client, settings: OrchestratorSettings, uid: str, wish: datetime
) -> str:
    request = parse_plan_cancellation({"planId": f"P-{uid}", "wishDate": wish}, None)
    started = await sagas.start(client, PLAN_CANCELLATION, request, settings)
    return started.workflow_id


async def start_line_and_plan(
    client: Client, settings: OrchestratorSettings, uid: str, wish: datetime
) -> str:
    data = {
        "customerId": f"C-{uid}",
        "wishDate": wish,
        "stn": {"subscriptionId": f"SUB-{uid}"},
        "planId": f"P-{uid}",
    }
    started = await sagas.start(client, LINE_AND_PLAN, parse_line_and_plan(data, None), settings)
    return started.workflow_id


async def test_a_new_provider_runs_as_a_saga_of_its_own(
    client: Client,
    nimbus_worker: Worker,
    nimbus: FakeNimbus,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    wish = soon()
    workflow_id = await start_plan(client, settings, uid, wish)

    final = await result_of(client, workflow_id)

    assert workflow_id == f"nimbus-plan-P-{uid}"  # the registry entry's business key
    assert final["phase"] == "COMPLETED" and final["plan"]["status"] == "effective"
    assert nimbus.names() == [SCHEDULE, AWAIT_EFFECTIVE]
    assert nimbus.calls[0][1].effective_at == wish
    steps = [step["step"] for step in final["steps"]]
    assert steps == ["received", "submitting", "plan_scheduled", "waiting", "polling", "completed"]


async def test_its_saga_is_revoked_through_the_same_steering_as_every_saga(
    client: Client,
    nimbus_worker: Worker,
    nimbus: FakeNimbus,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start_plan(client, settings, uid, in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "REVOKED" and state["plan"]["status"] == "withdrawn"
    assert nimbus.names() == [SCHEDULE, WITHDRAW]
    assert (await result_of(client, workflow_id))["phase"] == "REVOKED"


async def test_composed_around_the_line_it_is_finished_after_the_pivot(
    client: Client,
    nimbus_worker: Worker,
    fakes: FakeProviders,
    nimbus: FakeNimbus,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start_line_and_plan(client, settings, uid, soon())

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPLETED" and final["lineActivationStatus"] == "DONE"
    assert final["plan"]["status"] == "effective"
    assert nimbus.names() == [SCHEDULE, AWAIT_EFFECTIVE]
    # Prepared in order (the plan, then the line); the pivot; then the plan finished.
    submitted = first_call(fakes, StnActivity.SUBMIT_TERMINATION)
    pivot = first_call(fakes, StnActivity.AWAIT_ACTIVATION_FINAL)
    assert nimbus.first(SCHEDULE) <= submitted <= pivot <= nimbus.first(AWAIT_EFFECTIVE)
    assert final["undoneParts"] == [] and final["pendingParts"] == []


async def test_composed_around_the_line_it_is_undone_when_the_line_stays(
    client: Client,
    nimbus_worker: Worker,
    fakes: FakeProviders,
    nimbus: FakeNimbus,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    fakes.stn_outcome, fakes.stn_message = "ERROR", "number is ported out"
    workflow_id = await start_line_and_plan(client, settings, uid, soon())

    final = await result_of(client, workflow_id)

    assert final["phase"] == "COMPENSATED" and "number is ported out" in final["cause"]
    assert nimbus.names() == [SCHEDULE, WITHDRAW]
    assert final["plan"]["status"] == "withdrawn"
    assert sorted(final["undoneParts"]) == ["nimbus", "stn"]


async def test_a_revoke_before_the_date_undoes_the_line_first_then_the_plan(
    client: Client,
    nimbus_worker: Worker,
    fakes: FakeProviders,
    nimbus: FakeNimbus,
    settings: OrchestratorSettings,
    uid: str,
) -> None:
    workflow_id = await start_line_and_plan(client, settings, uid, in_days(3))
    await wait_for_phase(client, workflow_id, "WAITING")

    state = await sagas.revoke(client, workflow_id, "customer stayed")

    assert state["phase"] == "COMPENSATED"
    assert nimbus.names() == [SCHEDULE, WITHDRAW]
    assert first_call(fakes, StnActivity.CANCEL_TERMINATION) <= nimbus.first(WITHDRAW)
    assert sorted(state["undoneParts"]) == ["nimbus", "stn"]
