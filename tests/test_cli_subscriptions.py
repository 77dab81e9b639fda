"""``cancelctl subscriptions``: add, list (never a secret), rotate, deliveries, replay,
remove, against the dev server and the sandbox's subscriber; bad input exits 2 naming
the field before anything is asked of Temporal."""

from __future__ import annotations

import json

import pytest
from temporalio.client import Client

from sandbox.testing import SandboxAdmin
from tests.helpers import eventually
from tests.outcomes import new_secret
from tests.test_cli import cancelctl, cli_env
from worker import ProductWorkers

__all__ = ["cli_env"]  # the fixture, shared with tests/test_cli.py


async def test_subscriptions_through_cancelctl(
    cli_env: None,
    client: Client,
    worker: ProductWorkers,
    sandbox_admin: SandboxAdmin,
    capsys: pytest.CaptureFixture[str],
    uid: str,
) -> None:
    endpoint, secret = f"cli-{uid}", new_secret()
    sandbox_admin.configure_subscriber(endpoint, secrets=[secret], failStatus=422, failCount=1)
    url = sandbox_admin.subscriber_url(endpoint)

    assert (
        await cancelctl(
            "subscriptions", "add", "--url", url, "--secret", secret, "--type", "saga.completed"
        )
        == 0
    )
    subscription_id = capsys.readouterr().out.strip()
    assert subscription_id.startswith("sub_")
    assert await cancelctl("subscriptions", "list", "--json") == 0
    listed = capsys.readouterr().out
    [view] = json.loads(listed)
    assert view["id"] == subscription_id and view["url"] == url
    assert secret not in listed

    assert await cancelctl("terminate", "--subscription-id", f"SUB-{uid}") == 0
    capsys.readouterr()

    async def failed() -> str:
        assert await cancelctl("subscriptions", "deliveries", subscription_id) == 0
        out = capsys.readouterr().out
        assert "saga.completed" in out and "failed" in out, out
        return out

    await eventually(failed, within=30)  # the subscriber answered 422: not retried
    assert await cancelctl("subscriptions", "replay", subscription_id) == 0
    assert "1 failed deliveries started again" in capsys.readouterr().out

    async def delivered() -> None:
        assert len(sandbox_admin.subscriber_received(endpoint)["events"]) == 1

    await eventually(delivered, within=30)
    assert (
        await cancelctl("subscriptions", "rotate", subscription_id, "--secret", new_secret()) == 0
    )
    assert f"{subscription_id}: rotated" in capsys.readouterr().out
    assert await cancelctl("subscriptions", "remove", subscription_id) == 0
    assert await cancelctl("subscriptions", "remove", subscription_id) == 1
    assert "no subscription" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--url", "ftp://x", "--secret", "SECRET", "--type", "saga.completed"], "invalid url"),
        (["--url", "https://x", "--secret", "whsec_AAAA", "--type", "saga.completed"], "secret"),
        (["--url", "https://x", "--secret", "SECRET", "--type", "saga.nope"], "invalid types.0"),
    ],
    ids=["url", "secret", "type"],
)
def test_bad_input_exits_2_naming_the_field(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from starter import cli

    argv = [new_secret() if part == "SECRET" else part for part in argv]
    assert cli.main(["subscriptions", "add", *argv]) == 2
    assert said in capsys.readouterr().err
