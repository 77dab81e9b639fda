"""The parts of an inline first attempt that need no server: a subscription paused after
a failure and for how long, and inline attempts recorded in their outbox in one signal
per subscription (the signal faked; ``tests/test_delivery_first_attempt.py`` runs the
whole loop over real HTTP)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from temporalio.client import Client

from activities.outbox_signals import AttemptLog
from activities.outcomes import InlinePauses
from domain.outcomes import OUTBOX_RECORD, OutboxDelivery, OutboxState, outbox_workflow_id
from tests.helpers import eventually


def test_a_failure_pauses_only_its_subscription_and_only_for_a_while() -> None:
    now = [1000.0]
    pauses = InlinePauses(seconds=30, clock=lambda: now[0])
    pauses.pause("sub_a")
    assert pauses.paused("sub_a") and not pauses.paused("sub_b")
    now[0] += 29.9
    assert pauses.paused("sub_a")
    now[0] += 0.1
    assert not pauses.paused("sub_a")


class Signals:
    """A client that records signal-with-starts, failing the first ``fail`` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail

    async def start_workflow(self, workflow: str, state: OutboxState, **options: Any) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("server unavailable")
        self.sent.append({"workflow": workflow, "state": state, **options})


def attempt(n: int) -> OutboxDelivery:
    return OutboxDelivery(
        event_id=f"evt_{n}",
        event_type="saga.completed",
        saga_id=f"terminate-SUB-{n}",
        attempted_at=datetime.now(UTC),
        status=204,
        delivered=True,
    )


async def test_records_to_one_outbox_go_in_one_signal() -> None:
    client = Signals()
    log = AttemptLog(cast(Client, client), every=0.05)
    for n in range(5):
        log.record("q", "subscriptions-q", "sub_a", attempt(n))
    log.record("q", "subscriptions-q", "sub_b", attempt(9))

    async def sent() -> None:
        assert len(client.sent) == 2

    await eventually(sent, within=5)
    by_id = {s["id"]: s for s in client.sent}
    first = by_id[outbox_workflow_id("sub_a")]
    assert first["start_signal"] == OUTBOX_RECORD
    assert [r.event_id for r in first["start_signal_args"][0]] == [f"evt_{n}" for n in range(5)]
    assert first["state"].subscription_id == "sub_a"
    assert [r.event_id for r in by_id[outbox_workflow_id("sub_b")]["start_signal_args"][0]] == [
        "evt_9"
    ]
    # A record after the signal went starts the next one.
    log.record("q", "subscriptions-q", "sub_a", attempt(6))

    async def again() -> None:
        assert len(client.sent) == 3

    await eventually(again, within=5)


async def test_a_record_that_cannot_be_sent_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Signals(fail=1)
    log = AttemptLog(cast(Client, client), every=0.01)
    with caplog.at_level(logging.WARNING, logger="activities.outbox_signals"):
        log.record("q", "subscriptions-q", "sub_a", attempt(1))

        async def logged() -> None:
            assert "not recorded in outbox of subscription sub_a" in caplog.text

        await eventually(logged, within=5)
    assert client.sent == []
    log.record("q", "subscriptions-q", "sub_a", attempt(2))  # the next one goes

    async def sent() -> None:
        assert len(client.sent) == 1
        assert [r.event_id for r in client.sent[0]["start_signal_args"][0]] == ["evt_2"]

    await eventually(sent, within=5)
