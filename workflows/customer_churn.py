"""CustomerChurn: customer X leaves on date D; line, billing and eSIM orders end together.

Steps are ordered by reversibility, and the irreversible sTN termination is the
**pivot**:

1. Rebilly: PUT the billing cancellation as a **draft** for D. A confirmed Rebilly
   cancellation becomes ``completed`` (immutable) at its churn time, at the same
   moment sTN executes. If sTN then reported ERROR the billing could no longer be
   reactivated, so it stays a draft until the line is gone (deleting a draft
   undoes it completely).
2. sTN: submit the termination for D (cancellable until executed).
3. Airalo: cancel the future eSIM orders due after D (those due before D are kept).
   This step goes last because its undo re-creates orders under new request ids.
4. Durable timer until D (``revoke`` / ``reschedule`` meanwhile).
5. Poll sTN until final: **DONE** is the pivot. **ERROR** means the line is still
   active: the billing draft is deleted and the eSIM orders are re-created →
   ``COMPENSATED``.
6. After the pivot: confirm the billing cancellation for D and poll it to
   ``completed`` → ``COMPLETED``. This is forward recovery; nothing after the pivot
   is undone.

Compensation runs in reverse, is idempotent, is registered before its step (the
step may take effect and still fail) and is shielded from cancellation. A
compensation (or a post-pivot step) that fails permanently does not vanish: the
saga moves to ``NEEDS_ATTENTION``, keeps what it still owes in ``pendingActions``
and waits for an operator's ``resolve`` (retry, or mark handled with a note).

The provider calls are the single-provider sagas' own steps (``stn_steps``,
``rebilly_steps``, ``FutureOrderCanceller``), called as activities from this one
workflow rather than as child workflows: the pivot needs one place that decides
when billing may be confirmed and in which order to undo, and one history gives
one audit trail. Child sagas would each keep their own timers and updates, and an
operator could revoke one part behind the churn's back.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from domain.airalo import FutureOrder, RecreatedFutureOrder
    from domain.churn import (
        AiraloPartState,
        CustomerChurnRequest,
        CustomerChurnStatus,
        PendingAction,
        RebillyPartState,
        ResolveAction,
        ResolveRequest,
        StnPartState,
    )
    from domain.common import (
        Provider,
        RescheduleRequest,
        RevokeRequest,
        SagaKind,
        SagaPhase,
        refuse_past_wish_date,
    )
    from domain.rebilly import (
        Cancellation,
        PutCancellation,
        ReactivateOrder,
        RebillyStatus,
        derived_cancellation_id,
    )
    from domain.stn import (
        Activation,
        CancelTermination,
        SubmitTermination,
        derived_reference_number,
        mask_phone_number,
    )

from workflows import airalo_steps, rebilly_steps, stn_steps
from workflows.airalo_cancellation import FutureOrderCanceller
from workflows.inflight import InflightStep
from workflows.ledger import SagaLedger, describe_failure
from workflows.operator_inbox import OperatorInbox, OperatorRequest

REVOKE = "revoke"
RESCHEDULE = "reschedule"
RESOLVE = "resolve"
Part = Literal["stn", "rebilly", "airalo"]


class StepFailed(Exception):
    """A compensation or post-pivot step that failed permanently (kept as pending)."""


@workflow.defn(name="CustomerChurn")
class CustomerChurnSaga:
    @workflow.init
    def __init__(self, request: CustomerChurnRequest) -> None:
        self._request = request
        self._wish_date = request.wish_date
        providers = [
            provider
            for provider, part in (
                (Provider.STN, request.stn),
                (Provider.REBILLY, request.rebilly),
                (Provider.AIRALO, request.airalo),
            )
            if part is not None
        ]
        self._ledger = SagaLedger(SagaKind.CUSTOMER_CHURN, providers)
        self._inbox = OperatorInbox()
        # The provider step in flight: a cancellation waits for its outcome.
        self._step = InflightStep()
        # Parts with an effect to undo, in the order their steps started.
        self._done: list[Part] = []
        self._undone: set[Part] = set()
        self._pending: list[PendingAction] = []
        self._cause: str | None = None
        self._pivot_passed = False
        # sTN
        self._stn_submission: SubmitTermination | None = None
        self._stn_activation: Activation | None = None
        self._stn_submissions = 0
        # Rebilly
        self._billing_id: str | None = None
        self._billing: Cancellation | None = None
        self._billing_submissions = 0
        # Airalo
        self._canceller = (
            FutureOrderCanceller(
                request.airalo.request_ids, self._ledger, keep_due_before=request.wish_date
            )
            if request.airalo is not None
            else None
        )
        self._recreated: list[RecreatedFutureOrder] = []

    @workflow.run
    async def run(self, request: CustomerChurnRequest) -> CustomerChurnStatus:
        self._ledger.open(self._wish_date, request.customer_id)
        try:
            await self._prepare()
            await self._drive()
            await self._attend()
        except BaseException as error:
            if is_cancelled_exception(error):
                await asyncio.shield(asyncio.ensure_future(self._on_cancelled()))
                raise
            if not isinstance(error, ActivityError):
                raise
            # A step before the pivot failed: undo what the others did.
            await self._unwind(f"a step failed: {describe_failure(error)}")
            await self._attend()
        finally:
            self._inbox.refuse_all(f"the saga ended {self._ledger.phase.value}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    # -- before the pivot ------------------------------------------------------

    async def _prepare(self) -> None:
        self._ledger.enter(SagaPhase.SUBMITTING, "preparing every part for the churn date")
        if self._request.rebilly is not None:
            await self._step.run(self._draft_billing())
        if self._request.stn is not None:
            await self._step.run(self._submit_line())
        if self._canceller is not None:
            await self._step.run(self._cancel_esims(self._canceller))
        self._ledger.enter(
            SagaPhase.WAITING, f"every part prepared; waiting until {self._wish_date.isoformat()}"
        )

    async def _draft_billing(self) -> None:
        assert self._request.rebilly is not None
        self._billing_submissions += 1
        info = workflow.info()
        self._billing_id = derived_cancellation_id(
            info.workflow_id, info.first_execution_run_id, self._billing_submissions
        )
        self._done.append("rebilly")  # registered first: the PUT may land and still fail
        result = await rebilly_steps.put_cancellation(self._billing_put(RebillyStatus.DRAFT))
        self._billing = result.cancellation
        subtotal = result.cancellation.line_item_subtotal
        proration = f"; proration {subtotal.amount} {subtotal.currency}" if subtotal else ""
        order = self._request.rebilly.order_id
        self._ledger.record(
            "billing_drafted", f"Rebilly draft {self._billing_id} for order {order}{proration}"
        )

    def _billing_put(self, status: RebillyStatus) -> PutCancellation:
        assert self._request.rebilly is not None and self._billing_id is not None
        request = self._request.rebilly.model_copy(update={"churn_time": self._wish_date})
        return PutCancellation(cancellation_id=self._billing_id, body=request.body(status))

    async def _submit_line(self) -> None:
        stn = self._request.stn
        assert stn is not None
        self._stn_submissions += 1
        info = workflow.info()
        self._stn_submission = SubmitTermination(
            subscription_id=stn.subscription_id,
            phone_number=stn.phone_number,
            wish_date=self._wish_date,
            reference_number=derived_reference_number(
                info.workflow_id, info.run_id, self._stn_submissions
            ),
        )
        if "stn" not in self._done:
            self._done.append("stn")
        result = await stn_steps.submit_termination(self._stn_submission)
        self._stn_activation = result.activation
        recovered = " (found after a lost response)" if result.recovered else ""
        self._ledger.record(
            "line_submitted",
            f"sTN activation {result.activation.id} for {self._wish_date.isoformat()}{recovered}",
        )

    async def _cancel_esims(self, canceller: FutureOrderCanceller) -> None:
        self._done.append("airalo")
        await canceller.run()
        counts: dict[str, int] = {}
        for record in canceller.outcomes.values():
            counts[record.outcome.value] = counts.get(record.outcome.value, 0) + 1
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        self._ledger.record("esims_cancelled", summary or "no orders")

    # -- the main loop ---------------------------------------------------------

    async def _drive(self) -> None:
        while not self._ledger.phase.is_final and self._ledger.phase != SagaPhase.NEEDS_ATTENTION:
            if self._inbox.has_pending():
                await self._apply(self._inbox.take())
            elif self._ledger.phase == SagaPhase.WAITING:
                await self._wait_until_due()
            else:
                await self._pivot()

    async def _wait_until_due(self) -> None:
        remaining = self._wish_date - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(self._inbox.has_pending, timeout=remaining)
                return
            except TimeoutError:
                pass
        self._ledger.enter(SagaPhase.POLLING, "churn date reached; waiting for sTN to execute")

    async def _pivot(self) -> None:
        """Wait for sTN's verdict, then finish billing, or undo everything."""
        if self._stn_activation is not None and not self._stn_activation.is_executed:
            poll = asyncio.ensure_future(stn_steps.await_activation_final(self._stn_activation.id))
            interrupt = asyncio.ensure_future(workflow.wait_condition(self._inbox.has_pending))
            await workflow.wait([poll, interrupt], return_when=asyncio.FIRST_COMPLETED)
            if not poll.done():
                poll.cancel()
                with contextlib.suppress(ActivityError, asyncio.CancelledError):
                    await poll
                return  # the loop applies the operator's request first
            interrupt.cancel()
            self._stn_activation = poll.result().activation
        activation = self._stn_activation
        if activation is not None and activation.status != "DONE":
            # ERROR (or cancelled at sTN): the line is still active.
            await self._unwind(f"sTN reported {activation.status}: {activation.error_message}")
            return
        self._pivot_passed = True
        if activation is not None:
            self._ledger.record("line_terminated", f"sTN activation {activation.id} is DONE")
        await self._finish_after_pivot()

    async def _finish_after_pivot(self) -> None:
        try:
            await self._confirm_billing()
        except StepFailed as error:
            self._add_pending("rebilly", "finish", self._confirm_description(), str(error))
            self._ledger.fail(SagaPhase.NEEDS_ATTENTION, f"the line is terminated but {error}")
            return
        self._ledger.enter(SagaPhase.COMPLETED, "every part ended for the churn date")

    def _confirm_description(self) -> str:
        return f"confirm Rebilly cancellation {self._billing_id} (the line is already terminated)"

    async def _confirm_billing(self) -> None:
        if self._request.rebilly is None:
            return
        try:
            result = await rebilly_steps.put_cancellation(
                self._billing_put(RebillyStatus.CONFIRMED)
            )
            self._billing = result.cancellation
            self._ledger.record("billing_confirmed", f"Rebilly cancellation {self._billing_id}")
            assert self._billing_id is not None
            checked = await rebilly_steps.await_cancellation_completed(self._billing_id)
        except ActivityError as error:
            raise StepFailed(f"billing could not be cancelled: {describe_failure(error)}") from None
        self._billing = checked.cancellation
        self._ledger.record(
            "billing_completed", f"Rebilly cancellation {self._billing_id} completed"
        )

    # -- operator requests -----------------------------------------------------

    async def _apply(self, request: OperatorRequest) -> None:
        try:
            if request.kind == REVOKE:
                reason = request.payload.reason or "revoked by operator"
                await self._unwind(f"revoked: {reason}")
            elif request.kind == RESCHEDULE:
                await self._reschedule(request.payload)
            else:
                raise StepFailed(f"cannot {request.kind} now")
            request.finish()
        except (ActivityError, StepFailed) as error:
            request.finish(describe_failure(error))
        finally:
            self._inbox.release()

    async def _reschedule(self, request: RescheduleRequest) -> None:
        previous, old = self._ledger.phase, self._wish_date
        self._ledger.enter(
            SagaPhase.RESCHEDULING, f"moving the churn to {request.wish_date.isoformat()}"
        )
        if self._stn_activation is not None:
            try:
                await stn_steps.cancel_termination(
                    CancelTermination(
                        activation_id=self._stn_activation.id,
                        note=f"rescheduled to {request.wish_date.isoformat()}",
                    )
                )
            except ActivityError as error:
                self._ledger.note_error("reschedule_refused", describe_failure(error))
                self._ledger.enter(previous, "reschedule refused; carrying on")
                raise
        self._wish_date = request.wish_date
        self._ledger.move_wish_date(request.wish_date)
        try:
            if self._request.stn is not None:
                await self._step.run(self._submit_line())
            if self._billing_id is not None:
                # A draft is updated in place: same id, new churn time.
                result = await rebilly_steps.put_cancellation(
                    self._billing_put(RebillyStatus.DRAFT)
                )
                self._billing = result.cancellation
        except ActivityError as error:
            # The old date is gone at sTN and the new one was refused: undo it all.
            await self._unwind(
                f"reschedule from {old.isoformat()} failed: {describe_failure(error)}"
            )
            raise
        self._ledger.enter(SagaPhase.WAITING, f"rescheduled to {request.wish_date.isoformat()}")

    # -- compensation ----------------------------------------------------------

    async def _on_cancelled(self) -> None:
        if self._pivot_passed:
            # The line is gone: finishing billing is the only consistent end.
            await self._finish_after_pivot()
        else:
            await self._unwind("workflow cancelled")
        await self._attend()

    async def _unwind(self, cause: str) -> None:
        """Undo every part, newest first. Failures stay as pending actions."""
        self._cause = cause
        self._ledger.enter(SagaPhase.COMPENSATING, cause)
        if self._step.running and self._canceller is not None:
            # No further eSIM batch; the call in flight still reports its outcome.
            self._canceller.stop(cause)
        # Let the step in flight finish: then we know what to undo.
        await self._step.settle()
        for part in reversed(self._done):
            if part in self._undone:
                continue
            try:
                await self._undo(part)
                self._undone.add(part)
            except StepFailed as error:
                self._add_pending(part, "undo", f"undo the {part} part", str(error))
        self._settle_after_unwind()

    def _settle_after_unwind(self) -> None:
        if self._pending:
            self._ledger.fail(
                SagaPhase.NEEDS_ATTENTION,
                f"{self._cause}; could not undo: "
                + "; ".join(f"{p.part}: {p.error}" for p in self._pending),
            )
        else:
            self._ledger.enter(SagaPhase.COMPENSATED, f"{self._cause}; every part undone")

    async def _undo(self, part: Part) -> None:
        if part == "stn":
            await self._undo_line()
        elif part == "rebilly":
            await self._undo_billing()
        else:
            await self._undo_esims()

    async def _undo_line(self) -> None:
        activation = self._stn_activation
        if activation is not None and activation.status == "ERROR":
            self._ledger.record("line_kept", "sTN did not terminate the line: nothing to undo")
            return
        if activation is not None and activation.is_executed:
            raise StepFailed(f"sTN already terminated the line (activation {activation.id})")
        try:
            undone = await stn_steps.cancel_termination(
                CancelTermination(
                    activation_id=activation.id if activation else None,
                    submitted=self._stn_submission,
                    note=self._cause,
                )
            )
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None
        if undone is not None:
            self._stn_activation = undone
        what = f"activation {undone.id} cancelled" if undone else "sTN never created one"
        self._ledger.record("line_undone", what)

    async def _undo_billing(self) -> None:
        assert self._billing_id is not None
        try:
            current = self._billing or await rebilly_steps.find_cancellation(self._billing_id)
            if current is None:
                self._ledger.record("billing_undone", "Rebilly never created the draft")
                return
            if current.status == RebillyStatus.DRAFT:
                await rebilly_steps.delete_draft(self._billing_id)
                self._ledger.record("billing_undone", f"draft {self._billing_id} deleted")
            elif current.status == RebillyStatus.CONFIRMED:
                reactivated = await rebilly_steps.reactivate_order(
                    ReactivateOrder(
                        cancellation_id=current.id,
                        order_id=current.order_id,
                        description=self._cause,
                    )
                )
                self._ledger.record("billing_undone", f"order reactivated ({reactivated.outcome})")
            elif current.status == RebillyStatus.COMPLETED:
                raise StepFailed(f"Rebilly already completed cancellation {current.id}")
        except ActivityError as error:
            raise StepFailed(describe_failure(error)) from None

    async def _undo_esims(self) -> None:
        assert self._canceller is not None
        already = {r.original_request_id for r in self._recreated if r.request_id}
        todo: list[FutureOrder] = [
            order for order in self._canceller.cancelled_orders() if order.request_id not in already
        ]
        if not todo:
            self._ledger.record("esims_undone", "no cancelled eSIM order to re-create")
            return
        results = await airalo_steps.recreate_future_orders(todo)
        self._recreated = [r for r in self._recreated if r.request_id] + results
        failed = [r for r in results if r.error]
        created = ", ".join(
            f"{r.original_request_id}→{r.request_id}" for r in results if r.request_id
        )
        if created:
            self._ledger.record("esims_undone", f"re-created {created}")
        if failed:
            raise StepFailed(
                "; ".join(f"re-create {r.original_request_id}: {r.error}" for r in failed)
            )

    def _add_pending(
        self, part: Part, kind: Literal["undo", "finish"], what: str, error: str
    ) -> None:
        self._pending = [p for p in self._pending if not (p.part == part and p.kind == kind)]
        self._pending.append(PendingAction(part=part, kind=kind, description=what, error=error))

    # -- NEEDS_ATTENTION -------------------------------------------------------

    async def _attend(self) -> None:
        """Wait for an operator while something is still owed."""
        while self._pending:
            await workflow.wait_condition(self._inbox.has_pending)
            request = self._inbox.take()
            try:
                if request.kind != RESOLVE:
                    request.finish("the saga needs attention: only resolve is possible")
                    continue
                await self._resolve(request.payload)
                request.finish()
            finally:
                self._inbox.release()

    async def _resolve(self, request: ResolveRequest) -> None:
        owed, self._pending = self._pending, []
        note = request.note or "no note"
        if request.action == ResolveAction.MARK_HANDLED:
            self._ledger.record(
                "resolved",
                f"operator marked handled: {note} (" + "; ".join(p.description for p in owed) + ")",
            )
            for action in owed:
                if action.kind == "undo":
                    self._undone.add(action.part)
        else:
            self._ledger.record("resolve_retry", f"operator asked to retry: {note}")
            for action in owed:
                if action.kind == "finish":
                    try:
                        await self._confirm_billing()
                    except StepFailed as error:
                        self._add_pending(action.part, "finish", action.description, str(error))
                    continue
                try:
                    await self._undo(action.part)
                    self._undone.add(action.part)
                except StepFailed as error:
                    self._add_pending(action.part, "undo", action.description, str(error))
        if self._pending:
            self._ledger.fail(
                SagaPhase.NEEDS_ATTENTION,
                "still failing: " + "; ".join(f"{p.part}: {p.error}" for p in self._pending),
            )
        elif any(action.kind == "finish" for action in owed):
            self._ledger.enter(SagaPhase.COMPLETED, f"every part ended for the churn date ({note})")
        else:
            self._ledger.enter(SagaPhase.COMPENSATED, f"{self._cause}; every part undone ({note})")

    # -- handlers --------------------------------------------------------------

    @workflow.update
    async def revoke(self, request: RevokeRequest) -> CustomerChurnStatus:
        """Undo every part before the churn date (COMPENSATED)."""
        await self._inbox.submit(REVOKE, request)
        return self.status()

    @revoke.validator
    def _validate_revoke(self, request: RevokeRequest) -> None:
        self._refuse_unless_before_pivot("revoke")

    @workflow.update
    async def reschedule(self, request: RescheduleRequest) -> CustomerChurnStatus:
        """Move the churn date for every part."""
        await self._inbox.submit(RESCHEDULE, request)
        return self.status()

    @reschedule.validator
    def _validate_reschedule(self, request: RescheduleRequest) -> None:
        self._refuse_unless_before_pivot("reschedule")
        if self._ledger.phase == SagaPhase.SUBMITTING:
            raise ValueError("cannot reschedule while the parts are being prepared; try again")
        refuse_past_wish_date(request.wish_date, workflow.now())
        if self._canceller is not None:
            low, high = sorted((self._wish_date, request.wish_date))
            between = [
                o.request_id for o in self._canceller.orders.values() if low < o.due_date <= high
            ]
            if between:
                raise ValueError(
                    "cannot reschedule: future eSIM orders "
                    + ", ".join(between)
                    + " fall between the old and the new date; revoke and start a new churn"
                )

    @workflow.update
    async def resolve(self, request: ResolveRequest) -> CustomerChurnStatus:
        """Answer NEEDS_ATTENTION: retry what is owed, or mark it handled with a note."""
        await self._inbox.submit(RESOLVE, request)
        return self.status()

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        if self._ledger.phase != SagaPhase.NEEDS_ATTENTION:
            raise ValueError(f"nothing to resolve: the saga is {self._ledger.phase.value}")
        if self._inbox.busy:
            raise ValueError("another request is being applied")

    def _refuse_unless_before_pivot(self, action: str) -> None:
        phase = self._ledger.phase
        if phase.is_final or phase == SagaPhase.NEEDS_ATTENTION:
            raise ValueError(f"cannot {action}: the saga is {phase.value}")
        if self._pivot_passed or (
            self._stn_activation is not None and self._stn_activation.is_executed
        ):
            raise ValueError(f"cannot {action}: sTN already executed the line termination")
        if self._inbox.busy:
            raise ValueError(f"cannot {action}: another request is being applied")

    @workflow.query
    def status(self) -> CustomerChurnStatus:
        request = self._request
        stn = request.stn
        activation = self._stn_activation
        return CustomerChurnStatus(
            workflow_id=workflow.info().workflow_id,
            phase=self._ledger.phase,
            customer_id=request.customer_id,
            wish_date=self._wish_date,
            stn=StnPartState(
                subscription_id=stn.subscription_id,
                phone_number=mask_phone_number(stn.phone_number),
                reference_number=(
                    self._stn_submission.reference_number if self._stn_submission else None
                ),
                activation_id=activation.id if activation else None,
                activation_status=activation.status if activation else None,
            )
            if stn
            else None,
            rebilly=RebillyPartState(
                order_id=request.rebilly.order_id,
                cancellation_id=self._billing_id,
                status=self._billing.status.value if self._billing else None,
                churn_time=self._billing.churn_time if self._billing else None,
                line_item_subtotal=self._billing.line_item_subtotal if self._billing else None,
            )
            if request.rebilly
            else None,
            airalo=AiraloPartState(
                outcomes=list(self._canceller.outcomes.values()), recreated=list(self._recreated)
            )
            if self._canceller
            else None,
            pending_actions=list(self._pending),
            undone_parts=[part for part in self._done if part in self._undone],
            cause=self._cause,
            last_error=self._ledger.last_error,
            steps=list(self._ledger.steps),
        )
