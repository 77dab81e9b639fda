"""One saga of each kind, end to end, on the PostgreSQL-backed cluster with two workers.

The same sagas as the dev-server suite, unchanged worker and workflows; what differs is
the engine: four Temporal services in their own processes, the default store and
visibility in PostgreSQL, search attributes registered through the operator API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.common import SagaKind
from reliability.workload import PlanFactory, SagaPlan
from stacks.cluster.stack import ClusterStack
from tests.cluster.checks import Ledger, check_everything, start_plans
from tests.cluster.conftest import WORKERS
from tests.helpers import eventually, result_of

pytestmark = pytest.mark.cluster

TERMINATE = "/api/TerminateSubscription"
AIRALO_CANCEL = "/v2/cancel-future-orders"
AIRALO_CREATE = "/v2/future-orders"
#: ``matching.numTaskqueueReadPartitions``' default.
TASK_QUEUE_PARTITIONS = 4


def applied(cluster: ClusterStack, provider: str, method: str, path: str) -> list[dict[str, Any]]:
    with cluster.admin() as admin:
        calls = admin.calls(provider=provider, method=method)
    return [c for c in calls if c["applied"] and c["path"].startswith(path)]


async def assert_nothing_doubled(cluster: ClusterStack, client: Client, ledger: Ledger) -> None:
    findings = await check_everything(cluster, client, ledger)
    assert findings.violations == [], [str(v) for v in findings.violations]


async def test_two_workers_poll_the_clusters_task_queue(
    cluster: ClusterStack, cluster_client: Client
) -> None:
    """Both worker processes are attached: the frontend reports each as a poller of
    some partition of the task queue (a cluster splits it in four by default)."""
    names = [cluster.task_queue] + [
        f"/_sys/{cluster.task_queue}/{n}" for n in range(1, TASK_QUEUE_PARTITIONS)
    ]

    async def pollers() -> set[str]:
        identities: set[str] = set()
        for name in names:
            answer = await cluster_client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace="default",
                    task_queue=TaskQueue(name=name),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
                )
            )
            identities |= {poller.identity for poller in answer.pollers}
        assert len(identities) == WORKERS, identities
        return identities

    identities = await eventually(pollers, within=30)
    pids = {str(worker.process.pid) for worker in cluster.product_workers if worker.process}
    assert {identity.split("@")[0] for identity in identities} == pids


async def test_line_termination_started_through_the_http_api_completes_once(
    cluster: ClusterStack, cluster_client: Client, ledger: Ledger, plans: PlanFactory
) -> None:
    subscription = f"SUB-{plans.tag}-api"
    wish = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=cluster.api_url, timeout=10.0) as http:
        answer = await http.post(
            "/v1/line-terminations",
            json={"subscriptionId": subscription, "wishDate": wish.isoformat()},
            headers={"Authorization": f"Bearer {cluster.api_token}"},
        )
    assert answer.status_code == 202, answer.text
    workflow_id = answer.json()["workflowId"]
    ledger.accepted.add(workflow_id)

    final = await result_of(cluster_client, workflow_id)

    assert final["phase"] == "COMPLETED" and final["activationStatus"] == "DONE"
    terminations = [
        c
        for c in applied(cluster, "stn", "POST", TERMINATE)
        if (c["requestBody"] or {}).get("subscriptionId") == subscription
    ]
    assert len(terminations) == 1
    await assert_nothing_doubled(cluster, cluster_client, ledger)


async def test_order_cancellation_completes_at_its_churn_time(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    plan = plans.plan(SagaKind.ORDER_CANCELLATION, wish_offset=3.0)
    [workflow_id] = await start_plans(
        cluster, cluster_client, [plan], ledger, plans.tag, orchestrator_settings
    )

    final = await result_of(cluster_client, workflow_id)

    assert final["phase"] == "COMPLETED"
    puts = applied(cluster, "rebilly", "PUT", "/order-cancellations/")
    assert [c for c in puts if (c["requestBody"] or {}).get("orderId") == plan.order_id]
    await assert_nothing_doubled(cluster, cluster_client, ledger)


async def test_future_order_cancellation_cancels_each_order_once(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    plan = plans.plan(SagaKind.FUTURE_ORDER_CANCELLATION)
    plan.esim_seeds = [plans.esim(plan, n) for n in range(3)]
    plan.esim_ids = [seed.request_id for seed in plan.esim_seeds]
    [workflow_id] = await start_plans(
        cluster, cluster_client, [plan], ledger, plans.tag, orchestrator_settings
    )

    final = await result_of(cluster_client, workflow_id)

    assert final["phase"] == "COMPLETED"
    assert {o["requestId"]: o["outcome"] for o in final["outcomes"]} == dict.fromkeys(
        plan.esim_ids, "CANCELLED"
    )
    cancelled = [
        request_id
        for call in applied(cluster, "airalo", "POST", AIRALO_CANCEL)
        for request_id in call["requestBody"]["request_ids"]
        if request_id in plan.esim_ids
    ]
    assert sorted(cancelled) == sorted(plan.esim_ids)
    await assert_nothing_doubled(cluster, cluster_client, ledger)


def refused_churn(plans: PlanFactory) -> SagaPlan:
    """A churn of line, billing and two eSIM orders whose line sTN refuses (``ERROR``)."""
    plan = plans.plan(SagaKind.CUSTOMER_CHURN, wish_offset=4.0)
    plan.subscription_id = f"SUB-{plans.tag}-{plan.index}"
    plan.stn_error = True
    plan.order_id = f"ORD-{plans.tag}-{plan.index}"
    plan.esim_seeds = [plans.esim(plan, n) for n in range(2)]
    plan.esim_ids = [seed.request_id for seed in plan.esim_seeds]
    return plan


async def test_churn_whose_line_stn_refuses_undoes_billing_and_esims_once(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    plan = refused_churn(plans)
    [workflow_id] = await start_plans(
        cluster, cluster_client, [plan], ledger, plans.tag, orchestrator_settings
    )

    final = await result_of(cluster_client, workflow_id)

    assert final["phase"] == "COMPENSATED"
    assert set(final["undoneParts"]) >= {"rebilly", "airalo"}
    recreated = {r["originalRequestId"] for r in final["airalo"]["recreated"]}
    assert recreated == set(plan.esim_ids)
    descriptions = {seed.description for seed in plan.esim_seeds}
    creates = [
        c
        for c in applied(cluster, "airalo", "POST", AIRALO_CREATE)
        if c["path"] == AIRALO_CREATE and c["requestBody"].get("description") in descriptions
    ]
    assert len(creates) == len(plan.esim_seeds)
    await assert_nothing_doubled(cluster, cluster_client, ledger)


async def test_web_ui_server_shows_the_clusters_sagas(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    """The UI server built from the Go module proxy serves the UI and reads the cluster."""
    plan = plans.plan(SagaKind.LINE_TERMINATION, wish_offset=None, phone=None)
    plan.subscription_id, plan.stn_error = f"SUB-{plans.tag}-{plan.index}", False
    [workflow_id] = await start_plans(
        cluster, cluster_client, [plan], ledger, plans.tag, orchestrator_settings
    )
    await result_of(cluster_client, workflow_id)

    async with httpx.AsyncClient(base_url=cluster.ui_url, timeout=10.0) as http:
        page = await http.get("/namespaces/default/workflows")
        assert page.status_code == 200 and "<html" in page.text.lower()

        async def listed() -> None:
            answer = await http.get(
                "/api/v1/namespaces/default/workflows",
                params={"query": f"WorkflowId = '{workflow_id}'"},
            )
            assert answer.status_code == 200, answer.text
            executions = answer.json().get("executions") or []
            assert [e["execution"]["workflowId"] for e in executions] == [workflow_id]

        await eventually(listed, within=30)
