"""sTN Partner API activities: one activity per HTTP call pattern.

The httpx client (base URL, ``stn-api-key`` header, timeouts) is injected by the
worker, so the key stays in the worker's process and out of workflow history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
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
from config.settings import StnSettings
from domain.common import ErrorType
from domain.stn import (
    ACTIVATION_TYPE_TERMINATE,
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


# A retried submit looks for activations created since the activity was first
# scheduled, minus this much for clock skew between the worker and sTN.
LOOKUP_CLOCK_MARGIN = timedelta(minutes=10)
LOOKUP_TAKE = 50


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

    async def _get(self, activation_id: str) -> Activation | None:
        found = await self._query(id=activation_id)
        return found[0] if found else None

    async def _require(self, activation_id: str) -> Activation:
        """The activation, or a rejection: sTN knowing no such id will not change."""
        activation = await self._get(activation_id)
        if activation is None:
            raise ApplicationError(
                f"sTN knows no activation {activation_id}",
                type=PROVIDER_REJECTED,
                non_retryable=True,
            )
        return activation

    async def _with_reference(
        self,
        reference: str,
        line: SubmitTermination | Activation,
        *,
        newest_first: bool,
    ) -> list[Activation]:
        """TERMINATE activations carrying ``reference`` on ``line``'s subscription.

        Uses the documented filters (``activationType``, ``subscriptionId`` or
        ``phoneNumber``, and ``referenceNumber`` as an AutoQuery field condition) and
        checks the reference again itself, in case a filter was ignored.
        """
        order = "orderByDesc" if newest_first else "orderBy"
        params: dict[str, str | int] = {
            "referenceNumber": reference,
            "activationType": ACTIVATION_TYPE_TERMINATE,
            order: "createdAt",
            "take": LOOKUP_TAKE,
        }
        if line.subscription_id:
            params["subscriptionId"] = line.subscription_id
        elif line.phone_number:
            params["phoneNumber"] = line.phone_number
        found = await self._query(**params)
        return [activation for activation in found if activation.reference == reference]

    async def _find_submitted(
        self, request: SubmitTermination, since: datetime | None = None
    ) -> Activation | None:
        """The termination an earlier attempt of this submit created, if any.

        A cancellation of it would carry the same reference, but is always created
        after it: the earliest activation with our reference is the termination.
        """
        candidates = await self._with_reference(
            request.reference_number, request, newest_first=False
        )
        for activation in candidates:
            created = activation.created_at
            if since is None or created is None or created >= since:
                return activation
        return None

    async def _find_cancellation(self, termination: Activation) -> Activation | None:
        """The newest cancellation sTN created for ``termination``, if any.

        sTN copies the termination's reference onto the cancellation's activation
        (documented example); it is a different activation created after it.
        """
        reference = termination.reference
        if reference is None:
            return None
        for activation in await self._with_reference(reference, termination, newest_first=True):
            before = (
                termination.created_at is not None
                and activation.created_at is not None
                and activation.created_at < termination.created_at
            )
            if activation.id != termination.id and not before:
                return activation
        return None

    @activity.defn(name=StnActivity.SUBMIT_TERMINATION)
    async def submit_termination(self, request: SubmitTermination) -> SubmittedTermination:
        """POST TerminateSubscription, at most once per reference number.

        sTN has no idempotency key. When this is a retry (the previous attempt
        may have reached sTN and lost its response) look the activation up by
        our reference number first and only send again if it is not there.
        """
        info = activity.info()
        if info.attempt > 1:
            since = info.scheduled_time - LOOKUP_CLOCK_MARGIN
            existing = await look_up(lambda: self._find_submitted(request, since))
            if existing is not None:
                activity.logger.info("Found activation %s from an earlier attempt", existing.id)
                return SubmittedTermination(
                    activation=existing, recovered=True, attempt=info.attempt
                )
        body = request.model_dump(mode="json", by_alias=True, exclude_none=True)
        data = await self._call("POST", "/api/TerminateSubscription", json=body)
        activation = Activation.model_validate(data)
        return SubmittedTermination(activation=activation, attempt=info.attempt)

    @activity.defn(name=StnActivity.AWAIT_ACTIVATION_FINAL)
    async def await_activation_final(self, request: AwaitActivation) -> ActivationChecked:
        """Return the activation (a termination or a cancellation) once DONE or ERROR.

        While it is in progress (``INIT``, ``BUSY``, ``CANCELLING``, or anything
        else) this raises a benign, retryable error: the activity's retry policy
        is the polling loop, so the checks cost no workflow history.
        """
        activation = await self._require(request.activation_id)
        if activation.is_final:
            return ActivationChecked(activation=activation, checks=activity.info().attempt)
        raise ApplicationError(
            f"activation {activation.id} is {activation.status}",
            type=ErrorType.STILL_PENDING,
            category=ApplicationErrorCategory.BENIGN,
        )

    @activity.defn(name=StnActivity.GET_ACTIVATION)
    async def get_activation(self, request: AwaitActivation) -> Activation:
        """QueryActivation by id, once: e.g. to confirm that a cancelled termination
        did not execute (its status is anything but ``DONE``)."""
        return await self._require(request.activation_id)

    @activity.defn(name=StnActivity.CANCEL_TERMINATION)
    async def cancel_termination(self, request: CancelTermination) -> Activation | None:
        """POST CancelTerminateSubscription; returns the *cancellation's* Activation.

        sTN cancels asynchronously: the answer is a new activation (its own id,
        ``BUSY``) that ends ``DONE`` (cancelled) or ``ERROR`` (the termination
        stands); follow it with ``await_activation_final``. None when there is
        nothing to undo (``submitted`` never reached sTN).

        No idempotency key: a retry, or a rejection (e.g. "already being
        cancelled"), is settled by looking for the cancellation an earlier attempt
        created, found by the termination's reference number.
        """
        termination: Activation | None = None
        if request.activation_id is None:
            assert request.submitted is not None, "activation_id or submitted is required"
            termination = await self._find_submitted(request.submitted)
            if termination is None:
                return None
        activation_id = termination.id if termination else request.activation_id
        assert activation_id is not None
        if activity.info().attempt > 1:
            earlier = await look_up(lambda: self._earlier_cancellation(activation_id, termination))
            if earlier is not None:
                return earlier
        body = {"activationId": activation_id}
        if request.note:
            body["note"] = request.note
        try:
            data = await self._call("POST", "/api/CancelTerminateSubscription", json=body)
        except ApplicationError as error:
            if error.type != PROVIDER_REJECTED:
                raise
            earlier = await self._earlier_cancellation(activation_id, termination)
            if earlier is not None:
                return earlier
            raise
        return Activation.model_validate(data)

    async def _earlier_cancellation(
        self, activation_id: str, termination: Activation | None
    ) -> Activation | None:
        current = await self._get(activation_id) or termination
        return await self._find_cancellation(current) if current else None
