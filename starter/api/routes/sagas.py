"""``/v1/sagas``: a saga's status, the listing, and the operator's requests.

Each steering request goes through :mod:`starter.sagas`, which checks the run
first (unknown → 404, closed → 409, mapped in ``starter.api.errors``) and then sends
the saga's update; a refusal by the saga's validator is 409 with the saga's reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from temporalio.service import RPCError, RPCStatusCode

from config.settings import ApiKey, ApiScope
from domain.churn import ResolveRequest
from domain.common import RescheduleRequest, RevokeRequest, parse_request
from domain.stn import check_future_wish_date
from starter import sagas
from starter.api.auth import require
from starter.api.errors import ApiError
from starter.api.models import CancelRequested, InvalidInput, Refusal, SagaList, SagaListed
from starter.api.routes.common import (
    SAGA_ROUTE,
    WorkflowIdPath,
    json_object,
    request_body,
    status_url,
    temporal,
)

router = APIRouter(prefix="/v1/sagas", tags=["sagas"])

Reader = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_READ))]
Writer = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_WRITE))]
WorkflowId = Annotated[str, WorkflowIdPath]

_COMMON: dict[int | str, dict[str, Any]] = {
    401: {"model": Refusal},
    403: {"model": Refusal},
    404: {"model": Refusal, "description": "No saga with this workflow id"},
    422: {"model": InvalidInput},
    503: {"model": Refusal, "description": "Temporal unavailable: retry after Retry-After"},
}
_STEERING: dict[int | str, dict[str, Any]] = {
    **_COMMON,
    409: {"model": Refusal, "description": "The saga refused, or its run is closed"},
    413: {"model": Refusal},
}


@router.get(
    "/{workflow_id}",
    name=SAGA_ROUTE,
    operation_id=SAGA_ROUTE,
    summary="A saga's status: phase, provider state, audit trail",
    responses={**_COMMON, 409: {"model": Refusal}},
)
async def get_saga(request: Request, workflow_id: WorkflowId, _: Reader) -> dict[str, Any]:
    client = await temporal(request)
    try:
        return await sagas.saga_status(client, workflow_id)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, f"no saga {workflow_id}") from None
        raise


@router.get("", response_model=SagaList, responses=_COMMON, summary="List sagas, newest first")
async def list_sagas(
    request: Request,
    _: Reader,
    status: Annotated[str | None, Query(description="phase, e.g. WAITING")] = None,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    limit: Annotated[int, Query(description=f"1 to {sagas.MAX_LIST_LIMIT}")] = 100,
) -> SagaList:
    sagas.list_query(status, customer_id)  # a bad filter is refused before Temporal is asked
    sagas.check_list_limit(limit)
    rows = await sagas.list_sagas(await temporal(request), status, customer_id, limit)
    return SagaList(
        sagas=[
            SagaListed(**dict(row), status_url=status_url(request, row.workflow_id)) for row in rows
        ]
    )


@router.post(
    "/{workflow_id}/revoke",
    responses=_STEERING,
    summary="Revoke: undo before the provider executed it",
    openapi_extra=request_body("RevokeRequest", required=False),
)
async def revoke(request: Request, workflow_id: WorkflowId, _: Writer) -> dict[str, Any]:
    body = parse_request(RevokeRequest, await json_object(request, optional=True))
    client = await temporal(request)
    return await sagas.revoke(client, workflow_id, body.reason)


@router.post(
    "/{workflow_id}/reschedule",
    responses=_STEERING,
    summary="Move a waiting saga to a new wish date",
    openapi_extra=request_body("RescheduleRequest"),
)
async def reschedule(request: Request, workflow_id: WorkflowId, _: Writer) -> dict[str, Any]:
    body = parse_request(RescheduleRequest, await json_object(request))
    check_future_wish_date(body.wish_date, datetime.now(UTC))  # before Temporal is asked
    client = await temporal(request)
    return await sagas.reschedule(client, workflow_id, body.wish_date)


@router.post("/{workflow_id}/confirm", responses=_STEERING, summary="Confirm a draft")
async def confirm(request: Request, workflow_id: WorkflowId, _: Writer) -> dict[str, Any]:
    client = await temporal(request)
    return await sagas.confirm(client, workflow_id)


@router.post(
    "/{workflow_id}/resolve",
    responses=_STEERING,
    summary="Answer a saga in NEEDS_ATTENTION: retry, or mark it handled",
    openapi_extra=request_body("ResolveRequest"),
)
async def resolve(request: Request, workflow_id: WorkflowId, _: Writer) -> dict[str, Any]:
    body = parse_request(ResolveRequest, await json_object(request))
    client = await temporal(request)
    return await sagas.resolve(client, workflow_id, body.action, body.note)


@router.post(
    "/{workflow_id}/cancel",
    status_code=202,
    response_model=CancelRequested,
    responses=_STEERING,
    summary="Cancel the workflow: the saga compensates what it did, then stops",
)
async def cancel(request: Request, workflow_id: WorkflowId, _: Writer) -> CancelRequested:
    client = await temporal(request)
    await sagas.cancel(client, workflow_id)
    return CancelRequested(
        workflow_id=workflow_id,
        status_url=status_url(request, workflow_id),
        detail="cancellation requested; the saga compensates and stops",
    )
