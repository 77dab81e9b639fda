"""Faults on the real engine: a Temporal service, a worker, PostgreSQL, the whole cluster.

Each test starts a mix of sagas (every kind; some lines refused by sTN, so some line
terminations fail and some churns compensate), waits until the mix is where the fault
hurts (sagas on durable timers *and* sagas polling a provider), injects the fault,
lets every saga settle, then checks: each saga ended in the phase its plan calls for,
no Temporal process died by itself, and the reliability suite's invariants hold on the
sandbox's call log and state (no provider effect applied twice, none lost). The
figures go to the end of the pytest output ("cluster suite figures").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.common import SagaKind
from reliability import recovery
from reliability.harness import Outage
from reliability.workload import PlanFactory, SagaPlan, Timing
from stacks.cluster.stack import ClusterStack
from tests.cluster.checks import (
    Findings,
    Ledger,
    assert_final,
    check_everything,
    figures,
    next_timer,
    settle,
    start_plans,
    wait_for_phases,
    worked_on_by,
)
from tests.cluster.conftest import FIGURES, WORKERS

pytestmark = pytest.mark.cluster

SAGAS = 20
#: Wish dates 3-30 s ahead: when the fault comes, some timers are running, some due.
TIMING = Timing(wish_min=3.0, wish_max=30.0, revoke_share=0.0, reschedule_share=0.0)
#: sTN keeps a termination BUSY this long past its date: the sagas poll meanwhile.
STN_BUSY_SECONDS = 8.0
DOWN_SECONDS = 15.0


#: An outage lasts at least its planned time, longer (up to this) until a timer fell due.
MAX_DOWN_SECONDS = 40.0


def now() -> datetime:
    return datetime.now(UTC)


async def downtime(client: Client, started: dict[str, SagaPlan], at_least: float) -> float:
    """How long to stay down so that a running timer falls due meanwhile (the point of
    the fault): ``at_least``, or until just past the next timer."""
    fires = await next_timer(client, started)
    if fires is None:
        return at_least
    return min(MAX_DOWN_SECONDS, max(at_least, (fires - now()).total_seconds() + 2.0))


async def start_mix(
    cluster: ClusterStack,
    client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    settings: OrchestratorSettings,
    count: int = SAGAS,
) -> dict[str, SagaPlan]:
    """``count`` sagas of the suite's default mix, at least one of each kind."""
    plans.timing = TIMING
    batch = [plans.plan(kind) for kind in SagaKind] + plans.draw(count - len(SagaKind))
    return await start_plans(cluster, client, batch, ledger, plans.tag, settings)


@pytest.fixture
def busy_stn(cluster: ClusterStack) -> Iterator[None]:
    """sTN slow to execute: terminations stay BUSY, their sagas POLLING, for a while."""
    with cluster.admin() as admin:
        admin.configure(stn_processing_delay_seconds=STN_BUSY_SECONDS)
    yield
    with cluster.admin() as admin:
        admin.configure(stn_processing_delay_seconds=1.0)


async def settle_and_check(
    name: str,
    fault: str,
    cluster: ClusterStack,
    client: Client,
    ledger: Ledger,
    started: dict[str, SagaPlan],
    outage: Outage | None = None,
) -> Findings:
    await settle(client)
    findings = await check_everything(cluster, client, ledger)
    finals = assert_final(findings, started)
    line = figures(name, started, fault, finals, findings)
    if outage is not None:
        mine = [run for run in findings.runs if run.workflow_id in started]
        due = recovery.timers_due_during(mine, outage)
        line += f"; timers due while down: {due}"
        assert due >= 1, "no timer fell due during the outage: the fault missed its point"
    FIGURES.append(line)
    assert findings.violations == [], [str(v) for v in findings.violations]
    assert findings.duplicates == []
    assert cluster.died() == [], [p.name for p in cluster.died()]
    return findings


@pytest.mark.usefixtures("busy_stn")
async def test_history_stopped_while_sagas_wait_on_timers_and_poll(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    started = await start_mix(cluster, cluster_client, ledger, plans, orchestrator_settings)
    at_fault = await wait_for_phases(cluster_client, started, "WAITING", "POLLING")

    down = await downtime(cluster_client, started, DOWN_SECONDS)

    outage = Outage("history", now(), how="SIGTERM")
    await cluster.restart_service("history", down)
    outage.ended = now()

    await settle_and_check(
        "history stopped",
        f"history service stopped {down:.0f} s (at the stop: {dict(at_fault)})",
        cluster,
        cluster_client,
        ledger,
        started,
        outage,
    )
    assert cluster.services["history"].starts == 2


async def test_one_of_two_workers_killed_the_other_finishes_every_saga(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    """SIGKILL one worker mid-run and leave it down: its workflow tasks (sticky on it)
    and its activities (heartbeats stop) move to the other one."""
    assert len(cluster.product_workers) == WORKERS
    victim, survivor = cluster.product_workers[0], cluster.product_workers[1]
    with cluster.admin() as admin:
        # A quarter of provider calls slowed: the kill lands on calls in flight.
        admin.add_fault(mode="latency", latency_seconds=1.5, rate=0.25)
    try:
        started = await start_mix(cluster, cluster_client, ledger, plans, orchestrator_settings)
        at_fault = await wait_for_phases(cluster_client, started, "WAITING", "POLLING")
        assert victim.process is not None and survivor.process is not None
        victim_pid, survivor_pid = victim.process.pid, survivor.process.pid
        await asyncio.to_thread(victim.kill)

        findings = await settle_and_check(
            "worker killed",
            f"worker 1 of 2 SIGKILLed, left down (at the kill: {dict(at_fault)})",
            cluster,
            cluster_client,
            ledger,
            started,
        )
        mine = [run for run in findings.runs if run.workflow_id in started]
        held = worked_on_by(mine, victim_pid)
        FIGURES[-1] += (
            f"; sagas the killed worker had run tasks of: {len(held)}, "
            f"finished by the other: {len(held & worked_on_by(mine, survivor_pid))}"
        )
        assert held, "the killed worker had run none of these sagas: the kill missed its point"
        assert survivor.alive
    finally:
        with cluster.admin() as admin:
            admin.clear_faults()
        if not victim.alive:
            await asyncio.to_thread(victim.start)


@pytest.mark.usefixtures("busy_stn")
async def test_postgresql_crash_restart_while_sagas_wait_and_poll(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    """``pg_ctl stop -m immediate`` (every PostgreSQL process quits at once, as in a
    crash; WAL recovery on the next start) under the running cluster."""
    started = await start_mix(cluster, cluster_client, ledger, plans, orchestrator_settings)
    at_fault = await wait_for_phases(cluster_client, started, "WAITING", "POLLING")

    down = await downtime(cluster_client, started, DOWN_SECONDS / 1.5)

    outage = Outage("postgres", now(), how="pg_ctl stop -m immediate")
    await cluster.restart_postgres(down)
    outage.ended = now()

    await settle_and_check(
        "PostgreSQL restarted",
        f"PostgreSQL crashed (immediate) and down {down:.0f} s (at the crash: {dict(at_fault)})",
        cluster,
        cluster_client,
        ledger,
        started,
        outage,
    )


async def test_whole_cluster_stopped_and_started_again_keeps_every_saga(
    cluster: ClusterStack,
    cluster_client: Client,
    ledger: Ledger,
    plans: PlanFactory,
    orchestrator_settings: OrchestratorSettings,
) -> None:
    """``make cluster``'s Ctrl-C and a second ``make cluster``: everything stops in
    order (PostgreSQL last, cleanly), and starts on the same directory; the sagas that
    were waiting carry on."""
    started = await start_mix(cluster, cluster_client, ledger, plans, orchestrator_settings, 8)
    await wait_for_phases(cluster_client, started, "WAITING")
    fires = await next_timer(cluster_client, started)
    # No provider call after this: workers and API stop first, then the call log is kept.
    for process in [*cluster.product_workers, cluster.http_api]:
        if process is not None:
            await asyncio.to_thread(process.stop)
    with cluster.admin() as admin:
        ledger.keep_calls(await asyncio.to_thread(admin.calls))

    outage = Outage("cluster", now(), how="stopped")
    await asyncio.to_thread(cluster.stop)
    assert not cluster.postgres.alive
    assert not [p.name for p in cluster.processes() if p.alive]
    if fires is not None:  # down until a timer fell due
        await asyncio.sleep(max(0.0, (fires - now()).total_seconds() + 1.0))
    await cluster.start()
    outage.ended = now()

    await settle_and_check(
        "whole cluster restarted",
        "every process and PostgreSQL stopped, started again on the same directory",
        cluster,
        cluster_client,
        ledger,
        started,
        outage,
    )
