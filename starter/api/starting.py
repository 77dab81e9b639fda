"""Starting a saga for the API: parse with the domain's rules, then ``starter.sagas``.

Shared by the start endpoints and the CloudEvents intake, so a saga started by an
event is started exactly like one started by ``POST /v1/<kind>`` or ``cancelctl``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response, status

from starter import sagas
from starter.api.idempotency import delivery_for
from starter.api.kinds import SagaStarter
from starter.api.models import SagaAccepted
from starter.api.routes.common import orchestrator_settings, status_url, temporal


async def start(
    request: Request,
    response: Response,
    starter: SagaStarter,
    data: dict[str, Any],
    delivery_key: str | None,
) -> SagaAccepted:
    """Validate ``data`` (InvalidRequest → 422), then start, attach or find the delivery."""
    saga_request = starter.parse(_with_wish_date_read(data), datetime.now(UTC))
    delivery = delivery_for(delivery_key, saga_request) if delivery_key else None
    client = await temporal(request)
    started = await starter.start(
        client, saga_request, orchestrator_settings(request), delivery=delivery
    )
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

    The parse functions add "must not be in the past" to the other problems only
    for a datetime, so this keeps every problem reported at once, as the CLI does.
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
