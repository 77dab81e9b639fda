"""``/v1/bulk-operations`` and ``/v1/forecast``: steer a fleet, see what falls due.

The same functions as ``cancelctl bulk`` and ``cancelctl upcoming`` (``starter.bulk``,
``starter.forecast``): the selection is counted first (a query Temporal cannot run is
422 with its reason; one that matches nothing is answered 200 and starts nothing),
then the operation runs as a workflow and is followed by its id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from config.settings import ApiKey, ApiScope
from domain.bulk import BulkProgress, parse_bulk_request
from domain.common import FieldProblem, InvalidRequest, Provider
from starter import bulk, forecast
from starter.api.auth import require
from starter.api.errors import ApiError
from starter.api.models import BulkStarted, InvalidInput, Refusal
from starter.api.routes.common import json_object, orchestrator_settings, request_body, temporal

router = APIRouter(tags=["bulk operations"])

Reader = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_READ))]
Writer = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_WRITE))]
BULK_ROUTE = "bulk_operation"

_COMMON: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal},
    403: {"model": Refusal},
    422: {"model": InvalidInput},
    503: {"model": Refusal, "description": "Temporal unavailable: retry after Retry-After"},
}


@router.post(
    "/v1/bulk-operations",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BulkStarted,
    responses={
        **_COMMON,
        200: {"model": BulkStarted, "description": "Nothing matches: nothing started"},
        409: {"model": Refusal, "description": "Another bulk operation is running"},
        413: {"model": Refusal},
    },
    summary="Steer every running saga of a selection: revoke, reschedule, cancel, resolve",
    openapi_extra=request_body("BulkRequest"),
)
async def start(request: Request, response: Response, _: Writer) -> BulkStarted:
    asked = parse_bulk_request(await json_object(request), datetime.now(UTC))
    client = await temporal(request)
    query = asked.selection.visibility_query(orchestrator_settings(request).task_queue)
    try:
        selected = await bulk.count_selection(client, query)
    except bulk.SelectionRejected as rejected:
        raise InvalidRequest(
            [FieldProblem(field="selection.query", rule=f"Temporal cannot run it: {rejected}")]
        ) from None
    if selected == 0:
        response.status_code = status.HTTP_200_OK
        return BulkStarted(operation_id=None, selected=0, query=query, status_url=None)
    settings = orchestrator_settings(request)
    try:
        started = await bulk.start_bulk(client, asked, settings)
    except bulk.BulkOperationRunning as running:
        raise ApiError(status.HTTP_409_CONFLICT, str(running)) from None
    url = str(request.url_for(BULK_ROUTE, operation_id=started.operation_id))
    response.headers["Location"] = url
    return BulkStarted(
        operation_id=started.operation_id, selected=selected, query=query, status_url=url
    )


@router.get(
    "/v1/bulk-operations/{operation_id}",
    name=BULK_ROUTE,
    response_model=BulkProgress,
    responses={**_COMMON, 404: {"model": Refusal}},
    summary="A bulk operation's progress, or its final report",
)
async def show(request: Request, operation_id: str, _: Reader) -> BulkProgress:
    try:
        return await bulk.progress_of(
            await temporal(request), orchestrator_settings(request), operation_id
        )
    except bulk.BulkOperationNotFound as missing:
        raise ApiError(status.HTTP_404_NOT_FOUND, str(missing)) from None


@router.post(
    "/v1/bulk-operations/{operation_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_COMMON, 404: {"model": Refusal}},
    summary="Stop a bulk operation: the batch in flight finishes, what was applied stays",
)
async def stop(request: Request, operation_id: str, _: Writer) -> dict[str, str]:
    try:
        await bulk.stop(await temporal(request), orchestrator_settings(request), operation_id)
    except bulk.BulkOperationNotFound as missing:
        raise ApiError(status.HTTP_404_NOT_FOUND, str(missing)) from None
    url = str(request.url_for(BULK_ROUTE, operation_id=operation_id))
    return {"operationId": operation_id, "statusUrl": url, "detail": "stopping"}


@router.get(
    "/v1/forecast",
    response_model=forecast.Forecast,
    responses=_COMMON,
    summary="Running sagas due per provider per hour or day; buckets a lane cannot drain",
)
async def upcoming(
    request: Request,
    _: Reader,
    days: Annotated[int, Query(ge=1, le=31)] = 7,
    by: Annotated[Literal["hour", "day"], Query()] = "day",
    provider: Annotated[Provider | None, Query(description="only this provider's sagas")] = None,
) -> forecast.Forecast:
    asked = forecast.ForecastRequest.of(days=days, by=by, provider=provider)
    settings = orchestrator_settings(request)
    return await forecast.forecast(await temporal(request), settings.task_queue, asked)
