"""The Rebilly routes (``/rebilly/organizations/{organizationId}``) and the sandbox controls."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from starlette.responses import JSONResponse, Response

from sandbox.clock import as_utc
from sandbox.common import read_payload
from sandbox.errors import ProviderError
from sandbox.rebilly.model import Cancellation
from sandbox.rebilly.parsing import (
    id_errors,
    parse_cancellation,
    parse_list_query,
    parse_patch,
    parse_reactivation,
)
from sandbox.rebilly.problems import not_found, rate_limited
from sandbox.rebilly.rendering import cancellation_json, order_json, reactivation_json
from sandbox.rebilly.store import RebillyStore

API_KEY_HEADER = "REB-APIKEY"


def _organization_url(request: Request) -> str:
    organization = request.path_params["organizationId"]
    return f"{str(request.base_url).rstrip('/')}/rebilly/organizations/{organization}"


def _cancellation_href(request: Request, cancellation_id: str) -> str:
    return f"{_organization_url(request)}/order-cancellations/{cancellation_id}"


def _reactivation_href(request: Request, reactivation_id: str) -> str:
    return f"{_organization_url(request)}/order-reactivations/{reactivation_id}"


def build_router(store: RebillyStore) -> APIRouter:
    """Provider routes, mounted at ``/rebilly/organizations/{organizationId}``."""

    async def authenticate(request: Request) -> None:
        settings = store.context.settings
        if request.headers.get(API_KEY_HEADER) != settings.rebilly_api_key:
            raise ProviderError(status=401, message="Invalid or missing REB-APIKEY header")
        organization = request.path_params.get("organizationId")
        if organization != settings.rebilly_organization_id:
            raise not_found(f"Organization {organization} not found")

    def write_quota() -> dict[str, str]:
        """Count a write (routes call it first, after authentication); the rate-limit
        headers for its success.

        The definition documents ``X-RateLimit-Limit``/``-Remaining`` on every successful
        write of the operations we use, and 429 with ``X-RateLimit-Retry-After``.
        """
        admission = store.admit_write()
        if admission.retry_after is not None:
            raise rate_limited(admission.retry_after.total_seconds(), store.context.now())
        return {
            "X-RateLimit-Limit": str(admission.limit),
            "X-RateLimit-Remaining": str(admission.remaining),
        }

    router = APIRouter(dependencies=[Depends(authenticate)])

    def cancellation_response(
        request: Request,
        cancellation: Cancellation,
        status: int,
        *,
        location: bool = False,
        quota: dict[str, str] | None = None,
    ) -> JSONResponse:
        href = _cancellation_href(request, cancellation.id)
        headers = {**(quota or {}), **({"Location": href} if location else {})}
        return JSONResponse(
            cancellation_json(cancellation, href), status_code=status, headers=headers
        )

    @router.get("/order-cancellations")
    async def list_cancellations(request: Request) -> Response:
        query = parse_list_query(dict(request.query_params))
        total, page = store.search(query)
        body = [cancellation_json(c, _cancellation_href(request, c.id)) for c in page]
        headers = {
            "Pagination-Total": str(total),
            "Pagination-Limit": str(query.limit),
            "Pagination-Offset": str(query.offset),
        }
        return JSONResponse(body, headers=headers)

    @router.post("/order-cancellations")
    async def create_cancellation(request: Request) -> Response:
        quota = write_quota()
        command = parse_cancellation(await read_payload(request))
        cancellation = store.post(command)
        return cancellation_response(request, cancellation, 201, location=True, quota=quota)

    @router.put("/order-cancellations/{cancellation_id}")
    async def put_cancellation(request: Request, cancellation_id: str) -> Response:
        quota = write_quota()
        payload = await read_payload(request)
        command = parse_cancellation(payload, id_errors(cancellation_id))
        cancellation, created = store.put(cancellation_id, command)
        return cancellation_response(
            request, cancellation, 201 if created else 200, location=created, quota=quota
        )

    @router.get("/order-cancellations/{cancellation_id}")
    async def get_cancellation(request: Request, cancellation_id: str) -> Response:
        return cancellation_response(request, store.get(cancellation_id), 200)

    @router.patch("/order-cancellations/{cancellation_id}")
    async def patch_cancellation(request: Request, cancellation_id: str) -> Response:
        quota = write_quota()
        command = parse_patch(await read_payload(request))
        cancellation = store.patch(cancellation_id, command)
        return cancellation_response(request, cancellation, 200, quota=quota)

    @router.delete("/order-cancellations/{cancellation_id}", status_code=204)
    async def delete_cancellation(cancellation_id: str) -> Response:
        quota = write_quota()
        store.delete(cancellation_id)
        return Response(status_code=204, headers=quota)

    @router.post("/order-reactivations")
    async def reactivate(request: Request) -> Response:
        quota = write_quota()
        reactivation = store.reactivate(parse_reactivation(await read_payload(request)))
        href = _reactivation_href(request, reactivation.id)
        return JSONResponse(
            reactivation_json(reactivation, href),
            status_code=201,
            headers={**quota, "Location": href},
        )

    @router.get("/order-reactivations/{reactivation_id}")
    async def get_reactivation(request: Request, reactivation_id: str) -> dict[str, Any]:
        reactivation = store.get_reactivation(reactivation_id)
        return reactivation_json(reactivation, _reactivation_href(request, reactivation_id))

    return router


class OrderSeed(BaseModel):
    """Body of ``POST /_sandbox/rebilly/orders``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    id: str
    next_renewal_time: datetime | None = None
    amount: Decimal = Decimal("30.00")
    currency: str = "EUR"


def build_admin_router(store: RebillyStore) -> APIRouter:
    """Sandbox controls, mounted at ``/_sandbox/rebilly``."""
    router = APIRouter()

    @router.post("/orders")
    async def seed_order(spec: OrderSeed) -> dict[str, Any]:
        renewal = as_utc(spec.next_renewal_time) if spec.next_renewal_time else None
        return order_json(store.seed_order(spec.id, renewal, spec.amount, spec.currency))

    @router.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, Any]:
        return order_json(store.order(order_id)) | store.order_status(order_id)

    return router
