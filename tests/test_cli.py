"""cancelctl as a user runs it, against the real dev server, worker and sandbox."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from sandbox.testing import SandboxAdmin
from starter import cli
from tests.conftest import TestSandbox, product_worker
from tests.helpers import eventually, status_of, wait_for_phase
from worker import ProductWorkers


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, client: Client, task_queue: str) -> None:
    """Point cancelctl at the test server and this test's task queue, as a user would."""
    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("CANCEL_TASK_QUEUE", task_queue)


async def cancelctl(*argv: str) -> int:
    # The CLI runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(cli.main, list(argv))


async def test_terminate_status_list_via_cli(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    code = await cancelctl(
        "terminate", "--subscription-id", f"SUB-{uid}", "--customer-id", f"C-{uid}"
    )
    workflow_id = capsys.readouterr().out.strip()

    assert code == 0 and workflow_id == f"terminate-SUB-{uid}"
    await wait_for_phase(client, workflow_id, "COMPLETED")
    assert await cancelctl("status", workflow_id, "--json") == 0
    state = json.loads(capsys.readouterr().out)
    assert state["phase"] == "COMPLETED" and state["workflowType"] == "LineTermination"
    assert await cancelctl("status", workflow_id) == 0
    human = capsys.readouterr().out
    assert "COMPLETED" in human and "steps:" in human

    async def listed() -> str:
        assert await cancelctl("list", "--status", "COMPLETED", "--customer-id", f"C-{uid}") == 0
        out = capsys.readouterr().out
        assert workflow_id in out  # visibility is eventually consistent
        return out

    await eventually(listed)

    # Cancelling a saga that already ended does nothing: said so, exit 1 (it used to
    # print "cancellation requested" and exit 0).
    assert await cancelctl("cancel", workflow_id) == 1
    assert "is closed (COMPLETED)" in capsys.readouterr().err
    assert await cancelctl("cancel", f"no-such-saga-{uid}") == 1
    assert "no saga" in capsys.readouterr().err
    assert await cancelctl("revoke", workflow_id) == 1  # the same rule for every request
    assert "is closed (COMPLETED)" in capsys.readouterr().err


async def test_revoke_and_reschedule_via_cli(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    wish = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    assert await cancelctl("terminate", "--subscription-id", f"SUB-{uid}", "--wish-date", wish) == 0
    workflow_id = capsys.readouterr().out.strip()
    await wait_for_phase(client, workflow_id, "WAITING")

    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    assert await cancelctl("reschedule", workflow_id, "--wish-date", later) == 0
    assert capsys.readouterr().out.strip() == f"{workflow_id}: WAITING"
    assert (await status_of(client, workflow_id))["wishDate"].startswith(later[:19])

    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert await cancelctl("reschedule", workflow_id, "--wish-date", past) == 2
    assert "invalid wishDate: must not be in the past" in capsys.readouterr().err
    far = "9999-12-30T00:00:00Z"
    assert await cancelctl("reschedule", workflow_id, "--wish-date", far) == 2
    assert "invalid wishDate: must be at most 730 days ahead" in capsys.readouterr().err
    assert (await status_of(client, workflow_id))["wishDate"].startswith(later[:19])

    assert await cancelctl("revoke", workflow_id, "--reason", "customer stayed") == 0
    assert capsys.readouterr().out.strip() == f"{workflow_id}: REVOKED"


async def test_a_request_already_carried_out_answers_with_its_saga_and_starts_nothing(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    """Issue #10: `terminate` for a line whose saga COMPLETED started a second run, which
    asked sTN again and ended FAILED ("already terminated"), hiding the termination."""
    line = f"SUB-{uid}"
    assert await cancelctl("terminate", "--subscription-id", line) == 0
    workflow_id = capsys.readouterr().out.strip()
    done = await client.get_workflow_handle(workflow_id).result()
    assert done["phase"] == "COMPLETED"
    first_run = (await client.get_workflow_handle(workflow_id).describe()).run_id

    assert await cancelctl("terminate", "--subscription-id", line) == 0

    out, err = capsys.readouterr()
    assert out.strip() == workflow_id and "already completed" in err
    assert (await client.get_workflow_handle(workflow_id).describe()).run_id == first_run
    terminates = [
        c
        for c in sandbox_admin.calls(provider="stn", path="/api/TerminateSubscription")
        if (c["requestBody"] or {}).get("subscriptionId") == line
    ]
    assert len(terminates) == 1
    assert (await status_of(client, workflow_id))["phase"] == "COMPLETED"


async def test_a_request_after_a_revoked_saga_starts_a_new_one(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    """A new request after a saga that did not carry it out (REVOKED, FAILED) is legitimate."""
    wish = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    line = f"SUB-{uid}"
    assert await cancelctl("terminate", "--subscription-id", line, "--wish-date", wish) == 0
    workflow_id = capsys.readouterr().out.strip()
    await wait_for_phase(client, workflow_id, "WAITING")
    assert await cancelctl("revoke", workflow_id) == 0
    revoked_run = (await client.get_workflow_handle(workflow_id).describe()).run_id
    await client.get_workflow_handle(workflow_id).result()
    capsys.readouterr()

    assert await cancelctl("terminate", "--subscription-id", line, "--wish-date", wish) == 0

    assert "already" not in capsys.readouterr().err
    assert (await client.get_workflow_handle(workflow_id).describe()).run_id != revoked_run
    await wait_for_phase(client, workflow_id, "WAITING")
    assert await cancelctl("revoke", workflow_id) == 0


async def test_a_revoke_the_saga_cannot_answer_in_time_says_how_to_follow_it(
    cli_env: None,
    monkeypatch: pytest.MonkeyPatch,
    client: Client,
    sandbox: TestSandbox,
    task_queue: str,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    """The saga's worker is away: cancelctl waits CANCEL_OPERATOR_WAIT_SECONDS, says the
    request was sent and how to follow it (exit 0); the revoke is applied later."""
    monkeypatch.setenv("CANCEL_OPERATOR_WAIT_SECONDS", "1")
    wish = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    async with product_worker(client, sandbox, task_queue):
        assert (
            await cancelctl("terminate", "--subscription-id", f"SUB-{uid}", "--wish-date", wish)
            == 0
        )
        workflow_id = capsys.readouterr().out.strip()
        await wait_for_phase(client, workflow_id, "WAITING")

    assert await cancelctl("revoke", workflow_id, "--reason", "customer stayed") == 0

    out, err = capsys.readouterr()
    assert out.strip() == f"{workflow_id}: revoke sent"
    assert "no answer within 1 s" in err and f"cancelctl status {workflow_id}" in err
    assert await cancelctl("status", workflow_id) == 1  # not answered either: said, not hung
    assert "did not answer its status within 1 s" in capsys.readouterr().err
    async with product_worker(client, sandbox, task_queue):
        await wait_for_phase(client, workflow_id, "REVOKED", within=60)
        assert await cancelctl("status", workflow_id) == 0
    assert "REVOKED" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "field", "rule"),
    [
        (["--phone", "12345"], "phoneNumber", "Dutch mobile number"),
        (["--wish-date", "2020-01-01T00:00:00+01:00"], "wishDate", "must not be in the past"),
        (
            ["--wish-date", "9999-12-31T00:00:00+00:00"],
            "wishDate",
            "must be at most 730 days ahead",
        ),
        (["--wish-date", "2030-01-01T00:00:00"], "wishDate", "UTC offset"),
        (["--wish-date", "next tuesday"], "wishDate", "not ISO 8601"),
        (["--reference", "R" * 16], "referenceNumber", "at most 15 characters"),
    ],
    ids=[
        "phone",
        "past-wish-date",
        "far-wish-date",
        "naive-wish-date",
        "garbled-wish-date",
        "long-reference",
    ],
)
async def test_invalid_input_starts_nothing(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    capsys: pytest.CaptureFixture[str],
    uid: str,
    argv: list[str],
    field: str,
    rule: str,
) -> None:
    subscription = f"SUB-{uid}"
    target = argv if argv[0] == "--phone" else ["--subscription-id", subscription, *argv]

    code = await cancelctl("terminate", *target)

    assert code == 2
    err = capsys.readouterr().err
    assert f"invalid {field}:" in err and rule in err
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(f"terminate-{subscription}").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    sent = [
        c
        for c in sandbox_admin.calls(provider="stn")
        if subscription in json.dumps(c["requestBody"] or {})
    ]
    assert sent == []


@pytest.mark.parametrize(
    ("argv", "workflow_id", "field"),
    [
        (
            ["cancel-order", "ord-{uid}", "--churn-time", "9999-12-31T00:00:00Z"],
            "cancel-order-ord-{uid}",
            "churnTime",
        ),
        (
            ["churn", "C-{uid}", "--wish-date", "9999-12-31T00:00:00Z", "--subscription-id", "S"],
            "churn-C-{uid}",
            "wishDate",
        ),
    ],
    ids=["order-churn-time", "churn-wish-date"],
)
async def test_a_date_more_than_two_years_ahead_starts_nothing(
    cli_env: None,
    client: Client,
    capsys: pytest.CaptureFixture[str],
    uid: str,
    argv: list[str],
    workflow_id: str,
    field: str,
) -> None:
    """Issue #10: year-9999 dates were accepted (and took the sandbox's sTN down)."""
    code = await cancelctl(*(arg.format(uid=uid) for arg in argv))

    assert code == 2
    assert f"invalid {field}: must be at most 730 days ahead" in capsys.readouterr().err
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(workflow_id.format(uid=uid)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_a_line_item_description_over_1000_characters_exits_2_and_starts_nothing(
    cli_env: None, client: Client, capsys: pytest.CaptureFixture[str], uid: str
) -> None:
    item = {"type": "debit", "unitPriceAmount": 5, "unitPriceCurrency": "EUR", "quantity": 1}
    long = json.dumps({**item, "description": "d" * 1001})

    code = await cancelctl("cancel-order", f"ord-{uid}", "--line-item", long)

    assert code == 2
    err = capsys.readouterr().err
    assert "invalid lineItems.0.description: String should have at most 1000 characters" in err
    with pytest.raises(RPCError) as missing:
        await client.get_workflow_handle(f"cancel-order-ord-{uid}").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "argv",
    [
        ["terminate"],
        ["terminate", "--subscription-id", "A", "--phone", "0612345678"],
        ["reschedule", "some-id"],
        ["frobnicate"],
    ],
    ids=["no-target", "two-targets", "reschedule-without-date", "unknown-command"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert "usage: cancelctl" in capsys.readouterr().err


def test_every_problem_is_reported_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        [
            "terminate",
            "--subscription-id",
            "S",
            "--reference",
            "R" * 16,
            "--wish-date",
            "2020-01-01T00:00:00Z",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "invalid referenceNumber" in err and "invalid wishDate: must not be in the past" in err


def test_unreachable_temporal_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    assert cli.main(["status", "anything"]) == 1
    assert "cannot reach Temporal at 127.0.0.1:1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["revoke", "some-id", "--reason", "r" * 165], "invalid reason: "),
        (["resolve", "some-id", "--mark-handled", "--note", "n" * 501], "invalid note: "),
    ],
    ids=["revoke-reason-too-long", "resolve-note-too-long"],
)
def test_operator_text_over_its_limit_is_refused_before_connecting(
    argv: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # never reached

    code = cli.main(argv)

    err = capsys.readouterr().err
    assert code == 2
    assert expected in err and "at most" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Used to mean "no wish date": the line was terminated at once.
        (["terminate", "--subscription-id", "S", "--wish-date", ""], "invalid wishDate: "),
        (["terminate", "--subscription-id", "   "], "invalid subscriptionId: must not be blank"),
        (["list", "--limit", "0"], "invalid limit: "),
        (["list", "--limit", "-1"], "invalid limit: "),
    ],
    ids=["empty-wish-date", "blank-subscription", "limit-zero", "limit-negative"],
)
def test_odd_input_is_refused_not_taken_for_a_default(
    argv: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")  # never reached

    code = cli.main(argv)

    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
