"""Rebilly order-cancellation activities: one activity per HTTP call pattern.

The httpx client (organization-scoped base URL, ``REB-APIKEY`` header, timeouts)
is built by the worker from ``RebillySettings``, so the key stays in the
worker's process and out of workflow input, history and logs.

Every activity is idempotent, because Temporal may run it more than once:

* ``PUT`` uses our deterministic id; a retry reads that id first, and a refused
  ``PUT`` (422, or 409) is settled by reading that id too.
* a reactivation is only sent while *our* cancellation is ``confirmed``
  (``POST /order-reactivations`` is per order, not per cancellation).
* deleting a draft that is already gone is success.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.lookups import look_up
from activities.provider_http import (
    PROVIDER_REJECTED,
    json_http_client,
    raise_for_provider,
    unavailable,
)
from activities.rate_pacing import RateLimitPacer
from config.settings import RebillySettings
from domain.common import ErrorType
from domain.rebilly import (
    Cancellation,
    CancellationChecked,
    CancellationRef,
    DraftDeleted,
    PutCancellation,
    PutResult,
    Reactivated,
    ReactivateOrder,
    ReactivationOutcome,
    RebillyActivity,
    RebillyStatus,
)

PROVIDER = "Rebilly"
API_KEY_HEADER = "REB-APIKEY"
# How Rebilly may refuse a PUT on an id that already holds a cancellation it will not
# change (completed, revoked), or for an order that already has one. Its OpenAPI
# definition documents 422 for PUT, not 409; 409 is kept in case Rebilly uses it.
PUT_REFUSED_STATUSES = frozenset({409, 422})


def problem_details_message(body: Any) -> str | None:
    """An RFC 9457 problem's ``title``/``detail`` plus each ``invalidFields`` entry."""
    if not isinstance(body, dict):
        return str(body) if body else None
    title, detail = body.get("title"), body.get("detail")
    head = detail or title
    if title and detail and str(title) not in str(detail):
        head = f"{title}: {detail}"
    parts = [str(head)] if head else []
    for item in body.get("invalidFields") or []:
        if isinstance(item, dict):
            parts.append(f"{item.get('field')}: {item.get('message')}")
    return "; ".join(parts) or None


def rebilly_http_client(
    settings: RebillySettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The worker's Rebilly client: the key header, and paced by the quota Rebilly
    announces on its writes (``REBILLY_RATE_LIMIT_*``, :class:`RateLimitPacer`)."""
    return json_http_client(
        settings.base_url,
        settings.timeout_seconds,
        {API_KEY_HEADER: settings.api_key.get_secret_value()},
        transport=transport,
        pacer=RateLimitPacer(
            slow_below=settings.rate_limit_slow_below,
            max_wait=settings.rate_limit_max_wait_seconds,
        ),
    )


def _rejected(message: str) -> ApplicationError:
    return ApplicationError(
        message, {"provider": PROVIDER}, type=PROVIDER_REJECTED, non_retryable=True
    )


def _settled(cancellation: Cancellation) -> ReactivationOutcome | None:
    """What a reactivation would find already decided, if anything."""
    if cancellation.status == RebillyStatus.REVOKED:
        return ReactivationOutcome.ALREADY_REVOKED
    if cancellation.status == RebillyStatus.COMPLETED:
        return ReactivationOutcome.ALREADY_COMPLETED
    return None


def _cancellation_path(cancellation_id: str) -> str:
    return f"/order-cancellations/{cancellation_id}"


class RebillyActivities:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise unavailable(PROVIDER, error) from error

    async def _find(self, cancellation_id: str) -> Cancellation | None:
        response = await self._send("GET", _cancellation_path(cancellation_id))
        if response.status_code == 404:
            return None
        raise_for_provider(response, PROVIDER, problem_details_message)
        return Cancellation.model_validate(response.json())

    @activity.defn(name=RebillyActivity.PUT_CANCELLATION)
    async def put_cancellation(self, request: PutCancellation) -> PutResult:
        """``PUT /order-cancellations/{id}``: create (201) or update a draft (200).

        A retry first reads the id: if the lost predecessor's confirmed
        cancellation is there, it is the result (Rebilly may have completed it
        meanwhile, and a completed one may not be changed). Drafts are simply
        sent again: re-applying the same draft is harmless.

        A refused PUT (422, or 409) is settled the same way: if our id holds the
        confirmed cancellation this PUT asked for, that is the result, whatever
        the refusal's wording (undocumented, so never parsed); otherwise the
        refusal stands.
        """
        attempt = activity.info().attempt
        wanted = request.body
        if attempt > 1 and wanted.status == RebillyStatus.CONFIRMED:
            existing = await look_up(lambda: self._find(request.cancellation_id))
            if existing is not None and _is_applied(existing, request):
                activity.logger.info("Found cancellation %s from an earlier attempt", existing.id)
                return PutResult(
                    cancellation=existing, created=False, recovered=True, attempt=attempt
                )
        body = wanted.model_dump(mode="json", by_alias=True, exclude_none=True)
        response = await self._send("PUT", _cancellation_path(request.cancellation_id), json=body)
        if response.status_code in PUT_REFUSED_STATUSES:
            existing = await self._find(request.cancellation_id)
            if existing is not None and _is_applied(existing, request):
                activity.logger.info(
                    "PUT refused (%s); our id %s holds it", response.status_code, existing.id
                )
                return PutResult(
                    cancellation=existing, created=False, recovered=True, attempt=attempt
                )
        raise_for_provider(response, PROVIDER, problem_details_message)
        return PutResult(
            cancellation=Cancellation.model_validate(response.json()),
            created=response.status_code == 201,
            attempt=attempt,
        )

    @activity.defn(name=RebillyActivity.FIND_CANCELLATION)
    async def find_cancellation(self, request: CancellationRef) -> Cancellation | None:
        """``GET /order-cancellations/{id}``; None if Rebilly has no such cancellation.

        For a saga that must undo a PUT whose outcome it never learned.
        """
        return await self._find(request.cancellation_id)

    @activity.defn(name=RebillyActivity.AWAIT_CANCELLATION_COMPLETED)
    async def await_cancellation_completed(self, request: CancellationRef) -> CancellationChecked:
        """Return the cancellation once it is ``completed`` (or ``revoked``).

        While it is ``confirmed`` this raises a benign, retryable error: the
        activity's retry policy is the polling loop, so the checks cost no
        workflow history.
        """
        cancellation = await self._find(request.cancellation_id)
        if cancellation is None:
            raise _rejected(f"Rebilly knows no cancellation {request.cancellation_id}")
        if cancellation.status in (RebillyStatus.COMPLETED, RebillyStatus.REVOKED):
            return CancellationChecked(cancellation=cancellation, checks=activity.info().attempt)
        if cancellation.status == RebillyStatus.DRAFT:
            raise _rejected(f"cancellation {cancellation.id} is a draft: it never completes")
        churn = cancellation.churn_time.isoformat() if cancellation.churn_time else "unknown"
        raise ApplicationError(
            f"cancellation {cancellation.id} is {cancellation.status} (churn time {churn})",
            type=ErrorType.STILL_PENDING,
            category=ApplicationErrorCategory.BENIGN,
        )

    @activity.defn(name=RebillyActivity.REACTIVATE_ORDER)
    async def reactivate_order(self, request: ReactivateOrder) -> Reactivated:
        """Undo a confirmed cancellation with ``POST /order-reactivations``.

        Reactivation is per order, so it is sent only while *our* cancellation
        is the confirmed one; a revoked or completed one is reported as such
        (the caller decides what "too late" means). A retry, or a 409, is
        settled by reading the cancellation again.
        """
        current = await self._find(request.cancellation_id)
        if current is None:
            raise _rejected(f"Rebilly knows no cancellation {request.cancellation_id}")
        if current.order_id != request.order_id:
            raise _rejected(
                f"cancellation {current.id} belongs to order {current.order_id}, "
                f"not {request.order_id}"
            )
        outcome = _settled(current)
        if outcome is not None:
            return Reactivated(outcome=outcome, cancellation=current)
        if current.status == RebillyStatus.DRAFT:
            raise _rejected(f"cancellation {current.id} is a draft: delete it instead")
        body: dict[str, Any] = {"orderId": current.order_id}
        if request.description:
            body["description"] = request.description
        response = await self._send("POST", "/order-reactivations", json=body)
        if response.status_code == 409:
            after = await self._find(request.cancellation_id)
            outcome = _settled(after) if after is not None else None
            if after is not None and outcome is not None:
                return Reactivated(outcome=outcome, cancellation=after)
        raise_for_provider(response, PROVIDER, problem_details_message)
        reactivation = response.json()
        after = await self._find(request.cancellation_id)
        restarted = after is not None and after.status == RebillyStatus.COMPLETED
        return Reactivated(
            outcome=ReactivationOutcome.RESTARTED if restarted else ReactivationOutcome.REACTIVATED,
            cancellation=after or current.model_copy(update={"status": RebillyStatus.REVOKED}),
            reactivation_id=reactivation.get("id") if isinstance(reactivation, dict) else None,
        )

    @activity.defn(name=RebillyActivity.DELETE_DRAFT)
    async def delete_draft(self, request: CancellationRef) -> DraftDeleted:
        """``DELETE /order-cancellations/{id}`` (drafts only). Already gone is success."""
        response = await self._send("DELETE", _cancellation_path(request.cancellation_id))
        if response.status_code == 404:
            return DraftDeleted(cancellation_id=request.cancellation_id, already_gone=True)
        raise_for_provider(response, PROVIDER, problem_details_message)
        return DraftDeleted(cancellation_id=request.cancellation_id)


def _is_applied(existing: Cancellation, request: PutCancellation) -> bool:
    """Whether ``existing`` is what this confirmed PUT (or its predecessor) made."""
    return (
        request.body.status == RebillyStatus.CONFIRMED
        and existing.order_id == request.body.order_id
        and existing.status != RebillyStatus.DRAFT
    )
