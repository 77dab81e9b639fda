"""How tests share one sandbox safely (tests/conftest.py): sandbox-wide changes are
refused on the shared sandbox, and a test marked ``own_sandbox`` gets its own."""

from __future__ import annotations

import pytest

from sandbox.testing import SandboxAdmin
from tests.conftest import TestSandbox


def test_the_shared_sandbox_refuses_changes_every_test_would_see(
    sandbox: TestSandbox, sandbox_admin: SandboxAdmin
) -> None:
    assert sandbox.is_shared
    with pytest.raises(RuntimeError, match=r"mark the test @pytest\.mark\.own_sandbox"):
        sandbox_admin.add_fault(provider="stn", mode="error", status=503, count=1)
    for change in (
        sandbox_admin.clear_faults,
        sandbox_admin.reset,
        sandbox_admin.airalo_revoke_tokens,
        lambda: sandbox_admin.configure(stn_processing_delay_seconds=0),
    ):
        with pytest.raises(RuntimeError, match="own_sandbox"):
            change()
    assert sandbox_admin.faults() == []
    assert sandbox_admin.configure()["stnProcessingDelaySeconds"] == 1.0  # reading is fine


@pytest.mark.own_sandbox
def test_an_own_sandbox_test_may_change_its_sandbox(
    sandbox: TestSandbox, sandbox_admin: SandboxAdmin
) -> None:
    assert not sandbox.is_shared and sandbox.base_url != sandbox.shared.base_url
    sandbox_admin.add_fault(provider="stn", mode="error", status=503)
    assert len(sandbox_admin.faults()) == 1
    with SandboxAdmin(sandbox.shared.base_url) as shared:
        assert shared.faults() == []  # the others never see it
