"""SandboxServer really serves over TCP; SandboxAdmin drives it."""

from __future__ import annotations

import httpx
import pytest

from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin, SandboxServer


def test_server_serves_over_tcp_and_stops() -> None:
    settings = SandboxSettings(stn_processing_delay_seconds=60, rebilly_organization_id="org-t")
    with SandboxServer(settings) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.port > 0
        assert server.stn_url == server.base_url + "/stn"
        assert server.rebilly_url == server.base_url + "/rebilly/organizations/org-t"
        assert server.airalo_url == server.base_url + "/airalo"
        response = httpx.post(
            server.stn_url + "/api/TerminateSubscription",
            json={"subscriptionId": "S#1"},
            headers={"stn-api-key": settings.stn_api_key},
        )
        assert response.status_code == 200

        with SandboxAdmin(server.base_url) as admin:
            (call,) = admin.calls(provider="stn", path="/api/TerminateSubscription")
            assert call["status"] == 200
            assert admin.calls(method="GET") == []
            assert admin.stn_set_outcome("S#1", "ERROR", "blocked")["subscriptionId"] == "S#1"
            fault_id = admin.add_fault(provider="stn", mode="error", count=1)
            assert [fault["id"] for fault in admin.faults()] == [fault_id]
            admin.clear_faults()
            assert admin.faults() == []
            assert (
                admin.configure(stn_processing_delay_seconds=0.5)["stnProcessingDelaySeconds"]
                == 0.5
            )
            admin.reset()
            assert admin.calls() == []
        base_url = server.base_url

    with pytest.raises(httpx.ConnectError):
        httpx.get(base_url + "/_sandbox/config")


def test_two_servers_do_not_share_state() -> None:
    with SandboxServer() as first, SandboxServer() as second:
        assert first.port != second.port
        httpx.get(first.stn_url + "/api/QueryActivation")
        assert len(SandboxAdmin(first.base_url).calls()) == 1
        assert SandboxAdmin(second.base_url).calls() == []
