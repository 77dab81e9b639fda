"""``/v1/sagas``: a saga's status, the listing, and the operator's requests.

Each steering request goes through :mod:`starter.sagas`, which checks the run
first (unknown → 404, closed → 409, mapped in ``starter.api.errors``) and then sends
the saga's update; a refusal by the saga's validator is 409 with the saga's reason.
The saga's answer is awaited for ``CANCEL_OPERATOR_WAIT_SECONDS`` at most
(:func:`starter.sagas.ask`): a saga whose worker is busy or away is answered 202 with
where to follow it, never with a connection left hanging.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

from config.settings import ApiKey, ApiScope, OrchestratorSettings, default_of
from domain.churn import ResolveRequest
from domain.common import RescheduleRequest, RevokeRequest, SagaPhase, parse_request
from starter import sagas
from starter.api.auth import require
from starter.api.errors import ApiError
from starter.api.models import (
    CancelRequested,
    OperatorRequestPending,
    Refusal,
    SagaList,
    SagaListed,
)
from starter.api.routes.common import (
    FORBIDDEN,
    INVALID,
    SAGA_ROUTE,
    TOO_LARGE,
    UNAUTHENTICATED,
    UNAVAILABLE,
    WorkflowIdPath,
    json_object,
    orchestrator_settings,
    request_body,
    status_url,
    temporal,
)

router = APIRouter(prefix="/v1/sagas", tags=["sagas"])

Reader = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_READ))]
Writer = Annotated[ApiKey, Depends(require(ApiScope.SAGAS_WRITE))]
WorkflowId = Annotated[str, WorkflowIdPath]

_READ: dict[int | str, dict[str, Any]] = {
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    422: INVALID,
    503: UNAVAILABLE,
}
_ONE_SAGA: dict[int | str, dict[str, Any]] = {
    **_READ,
    404: {"model": Refusal, "description": "No saga with this workflow id"},
}
_STEERING: dict[int | str, dict[str, Any]] = {
    **_ONE_SAGA,
    409: {"model": Refusal, "description": "The saga refused, or its run is closed"},
    413: TOO_LARGE,
}


@router.get(
    "/{workflow_id:saga_id}",
    name=SAGA_ROUTE,
    operation_id=SAGA_ROUTE,
    summary="A saga's status: phase, provider state, audit trail",
    responses={
        **_ONE_SAGA,
        409: {"model": Refusal, "description": "The saga failed to answer its status query"},
        503: {
            **UNAVAILABLE,
            "description": (
                "Temporal is unavailable, or the saga's worker did not answer within "
                "`CANCEL_OPERATOR_WAIT_SECONDS` (busy or away): retry after `Retry-After` "
                "seconds"
            ),
        },
    },
)
async def get_saga(request: Request, workflow_id: WorkflowId, _: Reader) -> dict[str, Any]:
    client = await temporal(request)
    within = orchestrator_settings(request).operator_wait_seconds
    try:
        return await sagas.saga_status(client, workflow_id, within=within)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, f"no saga {workflow_id}") from None
        raise


@router.get("", response_model=SagaList, responses=_READ, summary="List sagas, newest first")
async def list_sagas(
    request: Request,
    _: Reader,
    status: Annotated[SagaPhase | None, Query(description="only sagas in this phase")] = None,
    customer_id: Annotated[
        str | None,
        Query(
            alias="customerId",
            pattern=sagas.LIST_CUSTOMER_ID_PATTERN,
            description="no quotes, backslashes or control characters",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=sagas.MAX_LIST_LIMIT)] = 100,
) -> SagaList:
    sagas.list_query(status, customer_id)  # a bad filter is refused before Temporal is asked
    sagas.check_list_limit(limit)
    rows = await sagas.list_sagas(await temporal(request), status, customer_id, limit)
    return SagaList(
        sagas=[
            SagaListed(**dict(row), status_url=status_url(request, row.workflow_id)) for row in rows
        ]
    )


def _operator_responses() -> dict[int | str, dict[str, Any]]:
    """What an operator request may answer: the saga's answer, or 202 after the bound."""
    bound = default_of(OrchestratorSettings, "operator_wait_seconds")
    return {
        200: {"description": "The saga applied the request: its status after it"},
        202: {
            "model": OperatorRequestPending,
            "description": (
                "The saga did not answer within the bound, `CANCEL_OPERATOR_WAIT_SECONDS` "
                f"(default {bound:g} s): the request was sent and is followed at "
                "`statusUrl` (also `Location`). `stage` `accepted`: the saga accepted it "
                "and is applying it; `sent`: Temporal holds it until the saga's worker "
                "takes it (busy or away), and the saga may still refuse it then."
            ),
        },
        **_STEERING,
    }


async def _ask(
    request: Request, workflow_id: str, operator_request: sagas.OperatorRequest
) -> dict[str, Any] | JSONResponse:
    """The saga's answer within the bound (200), else 202 with where to follow it."""
    within = orchestrator_settings(request).operator_wait_seconds
    answer = await sagas.ask(await temporal(request), workflow_id, operator_request, within=within)
    if not isinstance(answer, sagas.RequestPending):
        return answer
    url = status_url(request, workflow_id)
    pending = OperatorRequestPending(
        workflow_id=workflow_id,
        status_url=url,
        request_id=answer.request_id,
        stage=answer.stage,
        waited_seconds=answer.waited_seconds,
        detail=f"the saga did not answer within {within:g} s; follow its status",
    )
    return JSONResponse(
        pending.model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": url},
    )


@router.post(
    "/{workflow_id:path}/revoke",
    response_model=dict[str, Any],
    responses=_operator_responses(),
    summary="Revoke: undo before the provider executed it",
    openapi_extra=request_body("RevokeRequest", required=False),
)
async def revoke(
    request: Request, workflow_id: WorkflowId, _: Writer
) -> dict[str, Any] | JSONResponse:
    body = parse_request(RevokeRequest, await json_object(request, optional=True))
    return await _ask(request, workflow_id, sagas.revoke_request(body.reason))


@router.post(
    "/{workflow_id:path}/reschedule",
    response_model=dict[str, Any],
    responses=_operator_responses(),
    summary="Move a waiting saga to a new wish date",
    openapi_extra=request_body("RescheduleRequest"),
)
async def reschedule(
    request: Request, workflow_id: WorkflowId, _: Writer
) -> dict[str, Any] | JSONResponse:
    body = parse_request(RescheduleRequest, await json_object(request))
    # The date rules before Temporal is asked.
    return await _ask(request, workflow_id, sagas.reschedule_request(body.wish_date))


@router.post(
    "/{workflow_id:path}/confirm",
    response_model=dict[str, Any],
    responses=_operator_responses(),
    summary="Confirm a draft",
)
async def confirm(
    request: Request, workflow_id: WorkflowId, _: Writer
) -> dict[str, Any] | JSONResponse:
    return await _ask(request, workflow_id, sagas.confirm_request())


@router.post(
    "/{workflow_id:path}/resolve",
    response_model=dict[str, Any],
    responses=_operator_responses(),
    summary="Answer a saga in NEEDS_ATTENTION: retry, or mark it handled",
    openapi_extra=request_body("ResolveRequest"),
)
async def resolve(
    request: Request, workflow_id: WorkflowId, _: Writer
) -> dict[str, Any] | JSONResponse:
    body = parse_request(ResolveRequest, await json_object(request))
    return await _ask(request, workflow_id, sagas.resolve_request(body.action, body.note))


@router.post(
    "/{workflow_id:path}/cancel",
    status_code=202,
    response_model=CancelRequested,
    responses=_STEERING,
    summary="Cancel the workflow: the saga compensates what it did, then stops",
)
async def cancel(request: Request, workflow_id: WorkflowId, _: Writer) -> CancelRequested:
    client = await temporal(request)
    within = orchestrator_settings(request).operator_wait_seconds
    await sagas.cancel(client, workflow_id, within=within)
    return CancelRequested(
        workflow_id=workflow_id,
        status_url=status_url(request, workflow_id),
        detail="cancellation requested; the saga compensates and stops",
    )
