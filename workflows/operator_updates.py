"""The ``revoke`` and ``reschedule`` updates, declared once for every saga.

A saga class inherits them (Temporal collects handlers from base classes) and
supplies what differs: its ``status`` query (what the update returns),
:meth:`~Revocable._provider_acted` (why it is too late, once the provider
executed), and for a reschedule its own rules (:meth:`~Reschedulable._refuse_reschedule`).
The request itself is applied by the saga's loop (``workflows.steering``). The
``would_refuse`` query runs a request's validator without sending it (a bulk
operation's dry run): what the update would answer, nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.bulk import OperatorCheck
    from domain.churn import ResolveRequest
    from domain.common import (
        OperatorRequestKind,
        RescheduleRequest,
        RevokeRequest,
        SagaQuery,
        refuse_past_wish_date,
    )

from workflows.operator_inbox import OperatorPayload
from workflows.steering import Steering

REVOKE, RESCHEDULE = OperatorRequestKind.REVOKE, OperatorRequestKind.RESCHEDULE
S = TypeVar("S")


class Revocable(Generic[S]):
    """A saga an operator can ``revoke`` until its provider acted."""

    _steering: Steering
    # Appended to the refusal once the saga is final: why nothing is left to revoke.
    _revoke_after_end = ""

    def status(self) -> S:
        raise NotImplementedError

    def _provider_acted(self) -> str | None:
        """Why it is too late to steer (the provider already executed), if it is."""
        return None

    async def _steer(self, request: OperatorPayload) -> S:
        """Hand the request to the saga's loop; answer with the status after it."""
        await self._steering.request(request)
        return self.status()

    @workflow.query(
        name=SagaQuery.WOULD_REFUSE,
        description="Why the saga would refuse an operator request now (empty: it would "
        "apply it); changes nothing",
    )
    def would_refuse(self, check: OperatorCheck) -> str:
        validator = self._validator_of(check)
        if validator is None:
            return f"a {workflow.info().workflow_type} saga takes no {check.kind}"
        try:
            validator()
        except ValueError as refused:
            return str(refused)
        return ""

    def _validator_of(self, check: OperatorCheck) -> Callable[[], None] | None:
        """The update validator ``check`` would meet, bound to its request, if any."""
        request: object = None
        match check.kind:
            case OperatorRequestKind.REVOKE:
                name, request = "_validate_revoke", RevokeRequest(reason=check.reason)
            case OperatorRequestKind.RESCHEDULE if check.wish_date is not None:
                name, request = "_validate_reschedule", RescheduleRequest(wish_date=check.wish_date)
            case OperatorRequestKind.RESOLVE if check.resolve_action is not None:
                resolve = ResolveRequest(action=check.resolve_action, note=check.reason)
                name, request = "_validate_resolve", resolve
            case OperatorRequestKind.CONFIRM:
                name = "_validate_confirm"
            case _:
                return None
        validate = getattr(self, name, None)
        if validate is None:
            return None
        return validate if request is None else lambda: validate(request)

    @workflow.update(name=REVOKE, description="Undo what the saga did, before the provider acted")
    async def revoke(self, request: RevokeRequest) -> S:
        return await self._steer(request)

    @revoke.validator
    def _validate_revoke(self, request: RevokeRequest) -> None:
        self._steering.refuse_if_settled(
            REVOKE, too_late=self._provider_acted(), after_end=self._revoke_after_end
        )


class Reschedulable(Revocable[S]):
    """A saga waiting for a wish date an operator can move."""

    def _refuse_reschedule(self, wish_date: datetime) -> None:
        """The saga's own reschedule rules (raise ``ValueError`` with the reason)."""

    @workflow.update(name=RESCHEDULE, description="Move the saga to a new wish date")
    async def reschedule(self, request: RescheduleRequest) -> S:
        return await self._steer(request)

    @reschedule.validator
    def _validate_reschedule(self, request: RescheduleRequest) -> None:
        self._steering.refuse_if_settled(RESCHEDULE, too_late=self._provider_acted())
        refuse_past_wish_date(request.wish_date, workflow.now())
        self._refuse_reschedule(request.wish_date)
