"""Provider-independent sandbox controls under ``/_sandbox``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from sandbox.clock import format_ms
from sandbox.faults import FaultSpec
from sandbox.settings import SECRET_FIELDS, STARTUP_FIELDS, SandboxSettings
from sandbox.state import Sandbox


def _setting_names() -> dict[str, str]:
    """Accepted config keys (snake_case and camelCase) mapped to the field name."""
    names: dict[str, str] = {}
    for name in SandboxSettings.model_fields:
        names[name] = name
        names[to_camel(name)] = name
    return names


def public_settings(settings: SandboxSettings) -> dict[str, Any]:
    """Settings without secrets, camelCase keys."""
    return {
        to_camel(name): value
        for name, value in settings.model_dump().items()
        if name not in SECRET_FIELDS
    }


def updated_settings(current: SandboxSettings, changes: dict[str, Any]) -> SandboxSettings:
    names = _setting_names()
    unknown = sorted(key for key in changes if key not in names)
    if unknown:
        raise HTTPException(status_code=422, detail=f"unknown settings: {', '.join(unknown)}")
    fixed = sorted(key for key in changes if names[key] in STARTUP_FIELDS)
    if fixed:
        detail = f"only settable at startup: {', '.join(fixed)}"
        raise HTTPException(status_code=422, detail=detail)
    merged = current.model_dump() | {names[key]: value for key, value in changes.items()}
    try:
        return SandboxSettings.model_validate(merged)
    except ValidationError as exc:
        raise HTTPException(status_code=422, detail=exc.errors(include_url=False)) from exc


def build_admin_router(sandbox: Sandbox) -> APIRouter:
    """Mounted at ``/_sandbox``."""
    router = APIRouter()

    @router.get("/calls")
    async def list_calls(
        provider: str | None = None, method: str | None = None, path: str | None = None
    ) -> dict[str, Any]:
        records = sandbox.calls.query(provider=provider, method=method, path=path)
        return {"calls": [record.to_json() for record in records]}

    @router.post("/faults")
    async def add_fault(spec: FaultSpec) -> dict[str, str]:
        return {"id": sandbox.faults.add(spec).id}

    @router.get("/faults")
    async def list_faults() -> dict[str, Any]:
        return {"faults": [fault.to_json() for fault in sandbox.faults.all()]}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, Any]:
        sandbox.faults.clear()
        return {"faults": []}

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        sandbox.reset()
        return {"status": "reset"}

    @router.post("/tick")
    async def tick() -> dict[str, str]:
        """Fire due Airalo orders and churn due Rebilly orders now (sending their webhooks)."""
        sandbox.tick()
        return {"now": format_ms(sandbox.context.now())}

    @router.get("/config")
    async def get_config() -> dict[str, Any]:
        return public_settings(sandbox.context.settings)

    @router.post("/config")
    async def set_config(changes: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        sandbox.context.settings = updated_settings(sandbox.context.settings, changes)
        return public_settings(sandbox.context.settings)

    return router
