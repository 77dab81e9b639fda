"""Admin API for webhooks, mounted at ``/_sandbox/webhooks``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sandbox.webhooks.dispatcher import Dispatcher
from sandbox.webhooks.faults import DeliveryFaultSpec


def build_admin_router(dispatcher: Dispatcher) -> APIRouter:
    router = APIRouter()

    @router.get("")
    async def list_deliveries(
        provider: str | None = None, event: str | None = None, status: str | None = None
    ) -> dict[str, Any]:
        """The delivery log, oldest first (one record per copy of a webhook)."""
        return {"deliveries": dispatcher.deliveries(provider, event, status)}

    @router.delete("")
    async def clear_deliveries() -> dict[str, Any]:
        dispatcher.clear()
        return {"deliveries": []}

    @router.post("/faults")
    async def add_fault(spec: DeliveryFaultSpec) -> dict[str, str]:
        return {"id": dispatcher.add_fault(spec).id}

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": dispatcher.faults()}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        dispatcher.clear_faults()
        return {"faults": []}

    return router
