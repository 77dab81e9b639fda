"""sTN Partner API activities: one activity per HTTP call pattern.

The httpx client (base URL, ``stn-api-key`` header, timeouts) is injected by the
worker, so the key stays in the worker's process and out of workflow history.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.provider_http import (
    PROVIDER_REJECTED,
    json_http_client,
    raise_for_provider,
    unavailable,
)
from config.settings import StnSettings
from domain.common import ErrorType
from domain.stn import (
    Activation,
    ActivationChecked,
    AwaitActivation,
    CancelTermination,
    StnActivity,
    SubmittedTermination,
    SubmitTermination,
)

PROVIDER = "sTN"


def servicestack_message(body: Any) -> str | None:
    """``responseStatus.message`` plus each field error, as sTN's docs show them."""
    if not isinstance(body, dict):
        return str(body) if body else None
    status = body.get("responseStatus") or {}
    parts = [str(status.get("message") or status.get("errorCode") or "")]
    for error in status.get("errors") or []:
        field = error.get("fieldName")
        text = f"{error.get('errorCode')}: {error.get('message')}"
        if f"{text}" not in parts[0]:
            parts.append(f"{field}: {text}" if field else text)
    return "; ".join(part for part in parts if part) or None


def stn_http_client(settings: StnSettings) -> httpx.AsyncClient:
    return json_http_client(
        settings.base_url,
        settings.timeout_seconds,
        {"stn-api-key": settings.api_key.get_secret_value()},
    )


class StnActivities:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise unavailable(PROVIDER, error) from error
        raise_for_provider(response, PROVIDER, servicestack_message)
        return response.json()

    async def _query(self, **params: str | int) -> list[Activation]:
        data = await self._call("GET", "/api/QueryActivation", params=params)
        return [Activation.model_validate(item) for item in data.get("results") or []]

    async def _find_submitted(self, request: SubmitTermination) -> Activation | None:
        """The live activation an earlier attempt of this submit created, if any."""
        params: dict[str, str | int] = {
            "activationType": "TERMINATE",
            "orderBy": "-createdAt",
            "take": 50,
        }
        if request.subscription_id:
            params["subscriptionId"] = request.subscription_id
        else:
            assert request.phone_number is not None
            params["phoneNumber"] = request.phone_number
        for activation in await self._query(**params):
            if activation.info.get("referenceNumber") == request.reference_number and not (
                activation.is_cancelled
            ):
                return activation
        return None

    @activity.defn(name=StnActivity.SUBMIT_TERMINATION)
    async def submit_termination(self, request: SubmitTermination) -> SubmittedTermination:
        """POST TerminateSubscription, at most once per reference number.

        sTN has no idempotency key. When this is a retry (the previous attempt
        may have reached sTN and lost its response) look the activation up by
        our reference number first and only send again if it is not there.
        """
        attempt = activity.info().attempt
        if attempt > 1:
            existing = await self._find_submitted(request)
            if existing is not None:
                activity.logger.info("Found activation %s from an earlier attempt", existing.id)
                return SubmittedTermination(activation=existing, recovered=True, attempt=attempt)
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        data = await self._call("POST", "/api/TerminateSubscription", json=body)
        return SubmittedTermination(activation=Activation.model_validate(data), attempt=attempt)

    @activity.defn(name=StnActivity.AWAIT_ACTIVATION_FINAL)
    async def await_activation_final(self, request: AwaitActivation) -> ActivationChecked:
        """Return the activation once it is DONE or ERROR (or cancelled).

        While it is in progress this raises a benign, retryable error: the
        activity's retry policy is the polling loop, so the checks cost no
        workflow history.
        """
        found = await self._query(id=request.activation_id)
        if not found:
            raise ApplicationError(
                f"sTN knows no activation {request.activation_id}",
                type=PROVIDER_REJECTED,
                non_retryable=True,
            )
        activation = found[0]
        if activation.is_executed or activation.is_cancelled:
            return ActivationChecked(activation=activation, checks=activity.info().attempt)
        raise ApplicationError(
            f"activation {activation.id} is {activation.status}",
            type=ErrorType.STILL_PENDING,
            category=ApplicationErrorCategory.BENIGN,
        )

    @activity.defn(name=StnActivity.CANCEL_TERMINATION)
    async def cancel_termination(self, request: CancelTermination) -> Activation | None:
        """POST CancelTerminateSubscription, idempotently; None if nothing to undo.

        A retry, or a rejection, is settled by reading the activation: if it is
        already cancelled, an earlier attempt did the work and this succeeds.
        """
        activation_id = request.activation_id
        if activation_id is None:
            assert request.submitted is not None, "activation_id or submitted is required"
            found = await self._find_submitted(request.submitted)
            if found is None:
                return None
            activation_id = found.id
        if activity.info().attempt > 1:
            current = await self._query(id=activation_id)
            if current and current[0].is_cancelled:
                return current[0]
        body = {"activationId": activation_id}
        if request.note:
            body["note"] = request.note
        try:
            data = await self._call("POST", "/api/CancelTerminateSubscription", json=body)
        except ApplicationError as error:
            if error.type != PROVIDER_REJECTED:
                raise
            current = await self._query(id=activation_id)
            if current and current[0].is_cancelled:
                return current[0]
            raise
        return Activation.model_validate(data)
