"""Starting a saga for the API: parse with the domain's rules, then ``starter.sagas``.

Shared by the start endpoints and the CloudEvents intake, so a saga started by an
event is started exactly like one started by ``POST /v1/<kind>`` or ``cancelctl``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response, status

from domain.common import InvalidRequest
from starter import sagas
from starter.api.idempotency import delivery_for
from starter.api.models import SagaAccepted
from starter.api.routes.common import orchestrator_settings, status_url, temporal
from starter.kinds import SagaKindSpec


async def start(
    request: Request,
    response: Response,
    spec: SagaKindSpec[Any],
    data: dict[str, Any],
    delivery_key: str | None,
) -> SagaAccepted:
    """Validate ``data`` (InvalidRequest → 422), then start, attach or find the delivery.

    A redelivery whose date has passed since its first delivery is still answered
    with the run it started (see :func:`_redelivered`), not refused.
    """
    data = _with_wish_date_read(data)
    try:
        saga_request = spec.parse(data, datetime.now(UTC))
    except InvalidRequest:
        redelivered = await _redelivered(request, spec, data, delivery_key)
        if redelivered is None:
            raise
        return await _answer(request, response, redelivered)
    delivery = delivery_for(delivery_key, saga_request) if delivery_key else None
    client = await temporal(request)
    started = await sagas.start(
        client, spec.kind, saga_request, orchestrator_settings(request), delivery=delivery
    )
    return await _answer(request, response, started)


async def _redelivered(
    request: Request, spec: SagaKindSpec[Any], data: dict[str, Any], delivery_key: str | None
) -> sagas.StartedSaga | None:
    """The run a keyed delivery started, for a request that only today's clock refuses.

    Webhooks and event buses redeliver hours or days later: a request accepted while
    its date lay ahead must be answered with its run (200, ``duplicateDelivery``),
    as any redelivery is, not 422 because the date has passed since. So when the
    request is valid but for the date rules (it parses without the clock) and a
    delivery key came with it, the delivery is looked up: the business key's latest
    run first (strongly consistent), then the ``IdempotencyKey`` search attribute
    (visibility). None: no key, another problem, or no run of this delivery (a new
    delivery with a past date is refused as before). The same key with another
    request raises ``DeliveryConflict`` (409), as it does for any delivery.
    """
    if delivery_key is None:
        return None
    try:
        timeless = spec.parse(data, None)
    except InvalidRequest:
        return None
    client = await temporal(request)
    workflow_id = spec.workflow_id(timeless, orchestrator_settings(request))
    latest = await sagas.latest_run(client, workflow_id)
    return await sagas.find_delivery(client, latest, delivery_for(delivery_key, timeless))


async def _answer(request: Request, response: Response, started: sagas.StartedSaga) -> SagaAccepted:
    """202 for a run started or attached to; 200 with its status for one found again."""
    url = status_url(request, started.workflow_id)
    accepted = SagaAccepted(
        workflow_id=started.workflow_id,
        run_id=started.run_id,
        status_url=url,
        already_running=started.already_running,
        duplicate_delivery=started.duplicate_delivery,
        already_completed=started.already_completed,
    )
    response.headers["Location"] = url
    if started.duplicate_delivery or started.already_completed:
        # Nothing new was accepted: answer with the run that carried it out.
        response.status_code = status.HTTP_200_OK
        accepted.status = await _status_within(request, started)
    else:
        response.status_code = status.HTTP_202_ACCEPTED
    return accepted


def _with_wish_date_read(data: dict[str, Any]) -> dict[str, Any]:
    """``wishDate`` as a datetime when it is one, as cancelctl hands it to the domain.

    cancelctl hands the domain a datetime, so the API does too: the same string then
    means the same date (and the same date rules) whichever entry point it came through.
    Anything else stays as it was, for the model to report.
    """
    raw = data.get("wishDate")
    if not isinstance(raw, str):
        return data
    try:
        wish_date = datetime.fromisoformat(raw)
    except ValueError:
        return data
    return {**data, "wishDate": wish_date} if wish_date.tzinfo else data


async def _status_within(request: Request, started: sagas.StartedSaga) -> dict[str, Any] | None:
    """That run's status, if a worker answers the query in time (a query needs one)."""
    timeout = request.app.state.api_settings.temporal_timeout_seconds
    try:
        return await asyncio.wait_for(
            sagas.saga_status(await temporal(request), started.workflow_id, run_id=started.run_id),
            timeout,
        )
    except TimeoutError:
        return None
