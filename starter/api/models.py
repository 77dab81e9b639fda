"""What the API answers (camelCase, like every model on the wire)."""

from __future__ import annotations

from typing import Any

from domain.common import CamelModel, FieldProblem
from starter.lanes import LaneState
from starter.sagas import RequestStage, SagaListing


class SagaAccepted(CamelModel):
    """A saga started (202), attached to (202, ``alreadyRunning``) or found again (200)."""

    workflow_id: str
    run_id: str | None = None
    status_url: str
    # A run of this business key was already open: nothing new started.
    already_running: bool
    # This delivery (idempotency key) had started this run before: nothing new started.
    duplicate_delivery: bool = False
    # The last run of this business key already carried the request out: nothing new
    # started (a new request after a REVOKED/FAILED run starts a new one).
    already_completed: bool = False
    # For a duplicate delivery: that run's status (None if it could not be read in time).
    status: dict[str, Any] | None = None


class SagaListed(SagaListing):
    status_url: str


class SagaList(CamelModel):
    sagas: list[SagaListed]


class BulkStarted(CamelModel):
    """``POST /v1/bulk-operations``: the operation started (or nothing, if none matched)."""

    operation_id: str | None
    selected: int
    query: str
    status_url: str | None


class LaneList(CamelModel):
    """``GET /v1/lanes``: every provider lane (``starter.lanes.LaneState``)."""

    lanes: list[LaneState]


class CancelRequested(CamelModel):
    workflow_id: str
    status_url: str
    detail: str


class OperatorRequestPending(CamelModel):
    """202: the saga did not answer an operator request within the bound.

    ``stage`` ``accepted``: the saga's validator accepted it; it is being applied.
    ``sent``: Temporal holds it for the saga, whose worker has not taken it yet; the
    saga applies or refuses it then. Either way the saga's status tells what came of it.
    """

    workflow_id: str
    status_url: str
    request_id: str
    stage: RequestStage
    waited_seconds: float
    detail: str


class InvalidInput(CamelModel):
    """422: every broken rule, as ``cancelctl`` prints them (``invalid <field>: <rule>``)."""

    detail: list[FieldProblem]


class Refusal(CamelModel):
    """4xx/5xx other than 422: why, in one sentence."""

    detail: str


class Health(CamelModel):
    status: str
