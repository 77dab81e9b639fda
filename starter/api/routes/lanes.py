"""``/v1/lanes``: each provider lane's limit, backlog and oldest waiting call.

Read from Temporal (``starter.lanes``): the same as ``cancelctl lanes``. Changing a
lane's limit is an operator's act on the fleet: ``cancelctl lanes set`` (or Temporal's
own ``temporal task-queue config set``), not an API call.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from config.settings import ApiKey, ApiScope
from starter import lanes
from starter.api.auth import require
from starter.api.models import LaneList
from starter.api.routes.common import (
    FORBIDDEN,
    UNAUTHENTICATED,
    UNAVAILABLE,
    orchestrator_settings,
    temporal,
)

router = APIRouter(prefix="/v1/lanes", tags=["lanes"])

Reader = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_READ))]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    503: UNAVAILABLE,
}


@router.get(
    "",
    response_model=LaneList,
    responses=_ANSWERS,
    summary="Each provider lane: its limit, its backlog, the age of its oldest waiting call",
)
async def list_lanes(request: Request, _: Reader) -> LaneList:
    task_queue = orchestrator_settings(request).task_queue
    return LaneList(lanes=await lanes.describe_lanes(await temporal(request), task_queue))
