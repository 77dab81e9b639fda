"""The registry of saga kinds: its lookups, its refusals, and a kind added at run time.

A kind registered while the process runs (a test's toy kind) is served by cancelctl,
the start routes and the CloudEvents intake without an edit anywhere else: the last
test starts it through each, on the real dev server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import Field
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from config.settings import ApiKey, ApiScope, ApiSettings, OrchestratorSettings
from domain.common import CamelModel, InvalidRequest, SagaKind, parse_request
from domain.stn import TerminationRequest
from starter import cli
from starter.api.app import create_app
from starter.api.events import event_types, kind_for
from starter.api.gateway import TemporalGateway
from starter.cli.parser import build_parser
from starter.cli.runner import prepare
from starter.kinds import (
    KINDS,
    CliCommand,
    DuplicateSagaKind,
    SagaKinds,
    SagaKindSpec,
)
from worker import SAGAS, WORKFLOWS
from workflows.bulk_operation import BulkOperationWorkflow
from workflows.customer_churn import CustomerChurnSaga
from workflows.future_order_cancellation import FutureOrderCancellationSaga
from workflows.line_termination import LineTerminationSaga
from workflows.order_cancellation import OrderCancellationSaga

# -- a toy kind, all in this module -----------------------------------------------------


class ToyRequest(CamelModel):
    toy_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")

    def summary(self) -> str:
        return f"Cancel toy {self.toy_id}"


def parse_toy(data: Any, now: datetime | None) -> ToyRequest:
    return parse_request(ToyRequest, data)


def add_toy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("toy_id", metavar="TOY_ID", help="the toy to cancel")


def read_toy(args: argparse.Namespace) -> ToyRequest:
    return parse_request(ToyRequest, {"toyId": args.toy_id})


@workflow.defn(name="ToyCancellation", sandboxed=False)
class ToyCancellationSaga:
    @workflow.run
    async def run(self, request: ToyRequest) -> dict[str, str]:
        return {"phase": "COMPLETED", "toyId": request.toy_id}


TOY = SagaKindSpec(
    kind="TOY_CANCELLATION",
    model=ToyRequest,
    parse=parse_toy,
    workflow=ToyCancellationSaga,
    workflow_id=lambda request, _settings: f"toy-{request.toy_id}",
    summary=ToyRequest.summary,
    title="Cancel a toy (ToyCancellation)",
    api_path="toy-cancellations",
    event_type="toy.cancel_requested",
    cli=CliCommand(
        name="cancel-toy",
        help="cancel a toy (a test's saga kind)",
        description="Cancel a toy. Prints the saga's workflow id.",
        add_flags=add_toy_flags,
        read=read_toy,
    ),
)

PRODUCT_KINDS = [
    SagaKind.LINE_TERMINATION,
    SagaKind.ORDER_CANCELLATION,
    SagaKind.FUTURE_ORDER_CANCELLATION,
    SagaKind.CUSTOMER_CHURN,
]


# -- the product's kinds ----------------------------------------------------------------


def test_the_product_kinds_and_their_names_at_each_entry_point() -> None:
    """These names are contracts (URLs, event types, commands, histories): kept as they were."""
    assert [
        (spec.kind, spec.api_path, spec.event_type, spec.cli.name, spec.workflow_type)
        for spec in KINDS
    ] == [
        (
            "LINE_TERMINATION",
            "line-terminations",
            "line.termination_requested",
            "terminate",
            "LineTermination",
        ),
        (
            "ORDER_CANCELLATION",
            "order-cancellations",
            "billing.order_cancel_requested",
            "cancel-order",
            "OrderCancellation",
        ),
        (
            "FUTURE_ORDER_CANCELLATION",
            "future-order-cancellations",
            "esim.future_orders_cancel_requested",
            "cancel-future-orders",
            "FutureOrderCancellation",
        ),
        (
            "CUSTOMER_CHURN",
            "customer-churns",
            "customer.churned",
            "churn",
            "CustomerChurn",
        ),
    ]
    assert [spec.kind for spec in KINDS] == PRODUCT_KINDS == list(SagaKind)
    assert len(KINDS) == 4
    assert list(SAGAS) == [spec.workflow for spec in KINDS]
    assert list(WORKFLOWS) == [*SAGAS, BulkOperationWorkflow]  # and the bulk operations


@pytest.mark.parametrize(
    ("kind", "saga"),
    [
        (SagaKind.LINE_TERMINATION, LineTerminationSaga),
        (SagaKind.ORDER_CANCELLATION, OrderCancellationSaga),
        (SagaKind.FUTURE_ORDER_CANCELLATION, FutureOrderCancellationSaga),
        (SagaKind.CUSTOMER_CHURN, CustomerChurnSaga),
    ],
)
def test_each_kind_is_found_by_each_of_its_names(kind: SagaKind, saga: type[Any]) -> None:
    spec = KINDS[kind]
    assert spec.workflow is saga
    assert spec.run is saga.run  # what Client.start_workflow starts
    assert spec.kind == kind and kind in KINDS
    assert KINDS.by_event_type(spec.event_type) is spec
    assert KINDS.by_command(spec.cli.name) is spec
    assert KINDS.by_api_path(spec.api_path) is spec
    assert KINDS.by_workflow_type(spec.workflow_type) is spec


def test_a_request_names_its_kind() -> None:
    assert KINDS.for_request(TerminationRequest(subscription_id="S")) is KINDS["LINE_TERMINATION"]
    with pytest.raises(KeyError, match="no saga kind takes a ToyRequest"):
        KINDS.for_request(ToyRequest(toy_id="T"))


def test_unknown_names_find_nothing() -> None:
    assert KINDS.by_event_type("line.teleported") is None
    assert KINDS.by_command("status") is None
    assert KINDS.by_api_path("sagas") is None
    assert KINDS.by_workflow_type("BareSaga") is None
    assert "NOPE" not in KINDS
    with pytest.raises(KeyError, match="no saga kind 'NOPE'; there are LINE_TERMINATION, "):
        KINDS["NOPE"]


# -- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("taken", "name"),
    [
        ({"kind": SagaKind.LINE_TERMINATION}, "kind"),
        ({"api_path": "order-cancellations"}, "API path"),
        ({"event_type": "customer.churned"}, "event type"),
        ({"cli": dataclasses.replace(TOY.cli, name="terminate")}, "cancelctl command"),
        ({"workflow": LineTerminationSaga}, "workflow type"),
        ({"model": TerminationRequest}, "request model"),
    ],
    ids=["kind", "api-path", "event-type", "command", "workflow", "model"],
)
def test_a_kind_that_takes_another_kinds_name_is_refused(taken: dict[str, Any], name: str) -> None:
    clash = dataclasses.replace(TOY, **taken)
    before = list(KINDS)

    with pytest.raises(DuplicateSagaKind, match=f"the {name} .* is saga kind [A-Z_]+'s"):
        KINDS.register(clash)

    assert list(KINDS) == before


def test_the_same_kind_twice_is_refused() -> None:
    with pytest.raises(DuplicateSagaKind, match="saga kind TOY_CANCELLATION: the kind"):
        SagaKinds([TOY, TOY])


def test_a_kind_needs_a_workflow_and_a_path_fit_for_a_url() -> None:
    with pytest.raises(ValueError, match=r"decorated with @workflow\.defn"):
        dataclasses.replace(TOY, workflow=ToyRequest)
    with pytest.raises(ValueError, match="API path 'Toy Cancellations' must be lowercase"):
        dataclasses.replace(TOY, api_path="Toy Cancellations")


# -- registering ------------------------------------------------------------------------


def test_a_kind_registered_in_a_with_block_is_there_until_the_block_ends() -> None:
    with KINDS.register(TOY) as spec:
        assert spec is TOY
        assert list(KINDS)[-1] is TOY and len(KINDS) == 5  # after the product's kinds
        assert KINDS["TOY_CANCELLATION"] is TOY
        assert KINDS.by_event_type("toy.cancel_requested") is TOY
        assert KINDS.by_command("cancel-toy") is TOY
        assert KINDS.by_api_path("toy-cancellations") is TOY
        assert KINDS.by_workflow_type("ToyCancellation") is TOY
        assert KINDS.for_request(ToyRequest(toy_id="T")) is TOY
    assert "TOY_CANCELLATION" not in KINDS
    assert KINDS.by_event_type("toy.cancel_requested") is None
    assert [spec.kind for spec in KINDS] == PRODUCT_KINDS


def test_a_kind_registered_in_a_with_block_is_removed_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError), KINDS.register(TOY):
        raise RuntimeError("the test failed")
    assert "TOY_CANCELLATION" not in KINDS


def test_register_and_unregister_without_a_with_block() -> None:
    registry = SagaKinds()
    registry.register(TOY)
    assert list(registry) == [TOY]
    registry.unregister("TOY_CANCELLATION")
    assert len(registry) == 0
    with pytest.raises(KeyError, match="no saga kind 'TOY_CANCELLATION'"):
        registry.unregister("TOY_CANCELLATION")


def test_a_kind_registered_at_run_time_gets_a_command_and_an_event_type() -> None:
    """Nothing but the registry entry: cancelctl's parser and runner and the event
    intake's table serve the new kind, and forget it when it is unregistered."""
    with KINDS.register(TOY):
        parser = build_parser()
        assert "cancel-toy" in parser.format_help()
        assert "cancel a toy (a test's saga kind)" in parser.format_help()
        args = parser.parse_args(["cancel-toy", "T-1"])
        prepare(args, OrchestratorSettings())  # the request is read, nothing connects
        with pytest.raises(InvalidRequest) as refused:
            prepare(parser.parse_args(["cancel-toy", "T 1"]), OrchestratorSettings())
        assert [problem.field for problem in refused.value.problems] == ["toyId"]
        assert kind_for("toy.cancel_requested") is TOY
        assert event_types()[-1] == "toy.cancel_requested"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cancel-toy", "T-1"])
    assert kind_for("toy.cancel_requested") is None
    assert "toy.cancel_requested" not in event_types()


# -- a kind registered at run time, started from every entry point ---------------------

TOKEN = secrets.token_urlsafe(24)


async def test_a_kind_registered_at_run_time_starts_from_every_entry_point(
    client: Client,
    task_queue: str,
    settings: OrchestratorSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", task_queue)

    async def the_test_client() -> Client:
        return client

    with KINDS.register(TOY):
        app = create_app(
            ApiSettings(keys=[ApiKey(name="t", token=TOKEN, scopes=frozenset(ApiScope))]),
            settings,
            TemporalGateway(30.0, the_test_client),
        )
        transport = httpx.ASGITransport(app=app)
        async with (
            Worker(client, task_queue=task_queue, workflows=[ToyCancellationSaga]),
            httpx.AsyncClient(
                transport=transport,
                base_url="http://api",
                headers={"Authorization": f"Bearer {TOKEN}"},
            ) as http,
        ):
            code = await asyncio.to_thread(cli.main, ["cancel-toy", f"cli-{uid}"])
            assert code == 0
            assert capsys.readouterr().out.strip() == f"toy-cli-{uid}"

            posted = await http.post("/v1/toy-cancellations", json={"toyId": f"api-{uid}"})
            assert posted.status_code == 202, posted.text
            assert posted.json()["workflowId"] == f"toy-api-{uid}"

            event = {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "/tests/kinds",
                "type": "toy.cancel_requested",
            }
            taken = await http.post("/v1/events", json={**event, "data": {"toyId": f"ev-{uid}"}})
            assert taken.status_code == 202, taken.text
            assert taken.json()["workflowId"] == f"toy-ev-{uid}"
            refused = await http.post(
                "/v1/events", json={**event, "id": str(uuid.uuid4()), "data": {"toyId": "a b"}}
            )
            assert refused.status_code == 422
            assert [p["field"] for p in refused.json()["detail"]] == ["data.toyId"]
            assert "/v1/toy-cancellations" in app.openapi()["paths"]

            for name in ("cli", "api", "ev"):
                handle = client.get_workflow_handle(f"toy-{name}-{uid}")
                assert await handle.result() == {"phase": "COMPLETED", "toyId": f"{name}-{uid}"}
                description = await handle.describe()
                assert description.workflow_type == "ToyCancellation"
                assert await description.static_summary() == f"Cancel toy {name}-{uid}"
