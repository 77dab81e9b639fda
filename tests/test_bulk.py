"""``cancelctl bulk`` and ``cancelctl upcoming`` as an operator runs them, against the real
dev server, worker and sandbox: a dry run that changes nothing, a reschedule that moves
every selected line once (one cancellation and one resubmission each at sTN), the
forecast counting them in their new bucket, and every refusal at the edge."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client

from config.settings import OrchestratorSettings
from domain.bulk import Selection
from domain.common import SagaKind
from domain.stn import TerminationRequest
from sandbox.testing import SandboxAdmin
from starter import bulk, cli, sagas
from starter.cli import bulk as bulk_cli
from tests.helpers import eventually, status_of, wait_for_phase
from worker import ProductWorkers

TERMINATE = "/api/TerminateSubscription"
CANCEL = "/api/CancelTerminateSubscription"
MOVE_LINES = ["bulk", "reschedule", "--kind", "LINE_TERMINATION", "--wish-date"]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, client: Client, task_queue: str) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", task_queue)


async def cancelctl(*argv: str) -> int:
    return await asyncio.to_thread(cli.main, list(argv))


def noon(days: int) -> datetime:
    """Noon UTC ``days`` from today: one date, one forecast bucket (day or hour)."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


async def waiting_lines(
    client: Client, settings: OrchestratorSettings, uid: str, count: int, wish: datetime
) -> list[dict[str, Any]]:
    """``count`` lines of customer ``C-<uid>`` waiting for ``wish``, visible to queries."""
    states = []
    for n in range(count):
        request = TerminationRequest(
            subscription_id=f"SUB-{uid}-{n}", wish_date=wish, customer_id=f"C-{uid}"
        )
        started = await sagas.start(client, SagaKind.LINE_TERMINATION, request, settings)
        states.append(await wait_for_phase(client, started.workflow_id, "WAITING"))
    query = Selection(customer_id=f"C-{uid}").visibility_query(settings.task_queue)

    async def all_visible() -> None:
        assert await bulk.count_selection(client, query) == count

    await eventually(all_visible)
    return states


async def due_on(capsys: pytest.CaptureFixture[str], when: datetime, *, by: str = "day") -> int:
    """What ``cancelctl upcoming`` counts for sTN in the bucket of ``when``."""
    assert (
        await cancelctl("upcoming", "--days", "7", "--by", by, "--provider", "stn", "--json") == 0
    )
    buckets = json.loads(capsys.readouterr().out)["buckets"]
    found = [
        b
        for b in buckets
        if datetime.fromisoformat(b["start"]) <= when < datetime.fromisoformat(b["end"])
    ]
    assert len(found) == 1, buckets
    due: int = found[0]["due"]
    return due


async def test_a_dry_run_changes_nothing_and_a_bulk_reschedule_moves_each_line_once(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    sandbox_admin: SandboxAdmin,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    old, new = noon(2), noon(4)
    lines = await waiting_lines(client, settings, uid, 4, old)
    activations = {state["activationId"] for state in lines}
    await eventually(lambda: _at_least(due_on(capsys, old), 4))
    before = await due_on(capsys, new)

    def ours() -> list[dict[str, Any]]:
        """The sandbox is shared: sTN calls about this test's lines only."""
        return [
            call
            for call in sandbox_admin.calls(provider="stn")
            if (call["requestBody"] or {}).get("subscriptionId", "").startswith(f"SUB-{uid}-")
            or (call["requestBody"] or {}).get("activationId") in activations
        ]

    calls_before = len(ours())
    move = ["bulk", "reschedule", "--customer-id", f"C-{uid}", "--wish-date", new.isoformat()]

    assert await cancelctl(*move, "--dry-run", "--json") == 0
    dry = json.loads(capsys.readouterr().out)

    assert dry["dryRun"] and dry["state"] == "done" and dry["counts"] == {"would_apply": 4}
    assert len(ours()) == calls_before  # nothing sent
    for state in lines:
        assert (await status_of(client, state["workflowId"]))["wishDate"] == state["wishDate"]

    assert await cancelctl(*move, "--yes", "--json") == 0
    report = json.loads(capsys.readouterr().out)

    assert report["state"] == "done" and report["counts"] == {"applied": 4}
    for state in lines:
        now = await status_of(client, state["workflowId"])
        assert now["phase"] == "WAITING" and datetime.fromisoformat(now["wishDate"]) == new
    # At sTN, once each: the old termination cancelled, a new one submitted for the new date.
    cancels = [c["requestBody"]["activationId"] for c in sandbox_admin.calls("stn", "POST", CANCEL)]
    assert sorted(a for a in cancels if a in activations) == sorted(activations)
    for n in range(4):
        sent = [
            c["requestBody"]
            for c in sandbox_admin.calls("stn", "POST", TERMINATE)
            if (c["requestBody"] or {}).get("subscriptionId") == f"SUB-{uid}-{n}"
            and c["status"] < 300
        ]
        assert [body["wishDate"][:10] for body in sent] == [
            old.date().isoformat(),
            new.date().isoformat(),
        ]

    async def counted_in_the_new_bucket() -> None:
        assert await due_on(capsys, new) == before + 4

    await eventually(counted_in_the_new_bucket)


async def _at_least(counting: Any, least: int) -> None:
    assert await counting >= least


async def test_a_selection_that_matches_nothing_is_reported_and_changes_nothing(
    cli_env: None,
    worker: ProductWorkers,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    assert await cancelctl("bulk", "revoke", "--customer-id", f"NOBODY-{uid}", "--yes") == 0
    assert "no running saga matches" in capsys.readouterr().err


async def test_a_query_temporal_cannot_run_is_its_message_and_exit_1(
    cli_env: None, worker: ProductWorkers, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cancelctl("bulk", "revoke", "--query", "NoSuchAttribute = 'x'", "--yes") == 1
    err = capsys.readouterr().err
    assert "refused: Temporal cannot run the selection" in err and "NoSuchAttribute" in err


async def test_over_the_limit_without_yes_a_shell_that_cannot_answer_is_refused(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    # The rule's threshold (1,000) made small, so three sagas show it.
    monkeypatch.setattr(bulk_cli, "CONFIRM_ABOVE", 2)
    lines = await waiting_lines(client, settings, uid, 3, noon(3))

    assert await cancelctl("bulk", "revoke", "--customer-id", f"C-{uid}") == 1

    assert "without --yes" in capsys.readouterr().err
    for state in lines:
        assert (await status_of(client, state["workflowId"]))["phase"] == "WAITING"


async def test_unknown_operations_are_refused(
    cli_env: None, worker: ProductWorkers, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await cancelctl("bulk", "show", "no-such-operation") == 1
    assert await cancelctl("bulk", "stop", "no-such-operation") == 1
    assert "no-such-operation" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [
                "bulk",
                "reschedule",
                "--kind",
                "LINE_TERMINATION",
                "--wish-date",
                "2020-01-01T00:00:00Z",
            ],
            "invalid wishDate: must not be in the past",
        ),
        (
            [
                "bulk",
                "reschedule",
                "--kind",
                "LINE_TERMINATION",
                "--wish-date",
                "2099-01-01T00:00:00Z",
            ],
            "invalid wishDate",
        ),
        (["bulk", "revoke", "--kind", "NO_SUCH_KIND"], "invalid selection.kind"),
        (["bulk", "revoke", "--provider", "nimbus"], "invalid selection.provider"),
        (["bulk", "revoke", "--customer-id", "a'b"], "invalid selection"),
        (["bulk", "revoke", "--query", "x = 'y'", "--kind", "LINE_TERMINATION"], "not both"),
        (["bulk", "revoke", "--due-after", "2026-12-10T00:00:00"], "invalid dueAfter"),
        (["upcoming", "--days", "0"], "invalid days"),
        (["upcoming", "--provider", "nimbus"], "invalid provider"),
    ],
    ids=[
        "past-date",
        "too-far-ahead",
        "unknown-kind",
        "unknown-provider",
        "quote-in-customer",
        "query-and-filters",
        "date-without-offset",
        "zero-days",
        "unknown-forecast-provider",
    ],
)
def test_bad_input_is_exit_2_naming_the_field_before_connecting(
    argv: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # never reached

    assert cli.main(argv) == 2
    assert expected in capsys.readouterr().err
