"""The invariants, checked once every saga has settled.

Each check compares what the sagas *say* (every run's final status, decoded from its
history) with what the providers *did* (the sandbox's call log and final state), per
business key, and reads every history. Nothing is taken from what the suite meant to
happen: the parts a run holds (line, order, eSIM orders) are read from its own input.

1. every accepted saga reaches a final phase, or waits in ``NEEDS_ATTENTION`` with a
   reason; nothing runs that no accepted request describes;
2. per business key at most one effective provider effect, and no effect that no
   saga accounts for (a line terminated, an order churned, an eSIM order cancelled
   behind every saga's back); no request re-sent after the provider applied it
   (the lookup-before-resend rule);
3. every needed compensation applied exactly once (an sTN cancellation, a draft
   deleted, a reactivation, each cancelled eSIM order re-created once), and none
   that was not needed;
4. no saga ``COMPLETED`` unless the provider completed it;
5. no ``WorkflowTaskFailed`` in any history.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType

from domain.common import FINAL_PHASES, SagaPhase
from reliability.observe import RunRecord
from reliability.provider_state import Call, ProviderState
from sandbox.airalo import CANCELLED as AIRALO_CANCELLED
from sandbox.airalo import PENDING as AIRALO_PENDING
from sandbox.airalo import PROCESSED as AIRALO_PROCESSED
from sandbox.airalo import FutureOrder, format_due
from sandbox.rebilly.model import ACTIVE, COMPLETED
from sandbox.stn import BUSY, CANCELLING, DONE

UNHANDLED_COMMAND = "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND"
_NEW_INPUT = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
    }
)
TERMINATE = "/api/TerminateSubscription"
CANCEL_TERMINATION = "/api/CancelTerminateSubscription"
AIRALO_CANCEL = "/v2/cancel-future-orders"
AIRALO_ORDERS = "/v2/future-orders"
REACTIVATIONS = "/order-reactivations"


@dataclass(frozen=True)
class Violation:
    """One broken invariant: the business key (workflow id) and why."""

    key: str
    rule: str
    why: str

    def __str__(self) -> str:
        return f"{self.key}: [{self.rule}] {self.why}"


@dataclass
class Parts:
    """The provider parts one run holds, read from its own input."""

    line: str | None = None
    order: str | None = None
    esims: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, run: RunRecord) -> Parts:
        data = run.start_input if isinstance(run.start_input, dict) else {}
        if run.workflow_type == "CustomerChurn":
            stn, rebilly, airalo = data.get("stn"), data.get("rebilly"), data.get("airalo")
            return cls(
                line=_line_key(stn) if isinstance(stn, dict) else None,
                order=rebilly.get("orderId") if isinstance(rebilly, dict) else None,
                esims=list(airalo.get("requestIds") or []) if isinstance(airalo, dict) else [],
            )
        if run.workflow_type == "LineTermination":
            return cls(line=_line_key(data))
        if run.workflow_type == "OrderCancellation":
            return cls(order=data.get("orderId"))
        return cls(esims=list(data.get("requestIds") or []))


def _line_key(data: Mapping[str, Any]) -> str | None:
    if data.get("subscriptionId"):
        return str(data["subscriptionId"])
    return f"phone:{data['phoneNumber']}" if data.get("phoneNumber") else None


def _submission_key(body: Mapping[str, Any]) -> str | None:
    """A termination's identity at sTN: the line and our reference number."""
    reference = body.get("referenceNumber")
    line = body.get("subscriptionId") or body.get("phoneNumber")
    return f"{line} reference {reference}" if reference and line else None


def _stn_state(run: RunRecord) -> dict[str, Any]:
    status = run.status or {}
    part = status.get("stn") if run.workflow_type == "CustomerChurn" else status
    return part if isinstance(part, dict) else {}


def _rebilly_state(run: RunRecord) -> dict[str, Any]:
    status = run.status or {}
    part = status.get("rebilly") if run.workflow_type == "CustomerChurn" else status
    return part if isinstance(part, dict) else {}


def _airalo_state(run: RunRecord) -> dict[str, Any]:
    status = run.status or {}
    part = status.get("airalo") if run.workflow_type == "CustomerChurn" else status
    return part if isinstance(part, dict) else {}


def _signal_raced(run: RunRecord, failed_event_id: int) -> bool:
    """Temporal's own answer to a signal or update that arrived while the workflow task
    was running (typically the one completing the run): the server fails that task with
    ``UnhandledCommand`` and schedules a new one at once, so that the workflow sees the
    new event first. No workflow code failed; it is recognised by the new event."""
    index = next(i for i, event in enumerate(run.events) if event.event_id == failed_event_id)
    start = index
    while (
        start > 0 and run.events[start].event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
    ):
        start -= 1
    return any(event.event_type in _NEW_INPUT for event in run.events[start : index + 3])


def _claims(run: RunRecord) -> bool:
    """The run says the provider carried its request out (or will be told to finish)."""
    return run.phase == SagaPhase.COMPLETED or (
        run.phase == SagaPhase.NEEDS_ATTENTION and run.workflow_type == "CustomerChurn"
    )


class Checker:
    """Runs every check over one scenario's runs and the provider state."""

    def __init__(
        self,
        runs: list[RunRecord],
        provider: ProviderState,
        accepted: Iterable[str],
        *,
        allow_task_failure_causes: frozenset[str] = frozenset(),
    ) -> None:
        self.runs = sorted(runs, key=lambda run: run.started)
        self.provider = provider
        self.accepted = set(accepted)
        self.allowed_causes = allow_task_failure_causes
        self.violations: list[Violation] = []
        #: ``UnhandledCommand`` task failures caused by a signal racing the task.
        self.benign: list[str] = []
        self.parts = {run.run_id: Parts.of(run) for run in self.runs}

    def fail(self, key: str, rule: str, why: str) -> None:
        self.violations.append(Violation(key, rule, why))

    def check(self) -> list[Violation]:
        self.check_settled()
        self.check_task_failures()
        self.check_lines()
        self.check_orders()
        self.check_esims()
        return self.violations

    # -- 1 and 5: every saga final, no workflow task failed -------------------------

    def check_settled(self) -> None:
        seen = {run.workflow_id for run in self.runs}
        for workflow_id in sorted(self.accepted - seen):
            self.fail(workflow_id, "lost", "accepted, but Temporal has no run of it")
        for workflow_id in sorted(seen - self.accepted):
            self.fail(workflow_id, "unexpected", "a saga runs that no accepted request describes")
        for run in self.runs:
            where = f"run {run.run_id[:8]}"
            if run.execution_status not in ("COMPLETED", "RUNNING", "CANCELED"):
                self.fail(run.workflow_id, "final", f"{where} ended {run.execution_status}")
            elif run.status is None:
                self.fail(run.workflow_id, "final", f"{where} has no status: {run.status_error}")
            elif run.execution_status == "RUNNING":
                if run.phase != SagaPhase.NEEDS_ATTENTION:
                    self.fail(run.workflow_id, "final", f"{where} still {run.phase} at the end")
                elif not run.status.get("lastError") or (
                    run.workflow_type == "CustomerChurn" and not run.status.get("pendingActions")
                ):
                    self.fail(run.workflow_id, "final", f"{where} NEEDS_ATTENTION without a reason")
            elif run.phase not in FINAL_PHASES:
                self.fail(run.workflow_id, "final", f"{where} closed in phase {run.phase}")

    def check_task_failures(self) -> None:
        for run in self.runs:
            for failure in run.task_failures:
                if failure.cause in self.allowed_causes:
                    continue
                if failure.cause == UNHANDLED_COMMAND and _signal_raced(run, failure.event_id):
                    self.benign.append(f"{run.workflow_id} (event {failure.event_id})")
                    continue
                self.fail(
                    run.workflow_id,
                    "task-failed",
                    f"WorkflowTaskFailed (event {failure.event_id}, run {run.run_id[:8]}, "
                    f"{failure.cause}): {failure.message[:300]}",
                )

    # -- sTN: one termination per line, never behind a saga's back --------------------

    def check_lines(self) -> None:
        runs_by_line: dict[str, list[RunRecord]] = defaultdict(list)
        for run in self.runs:
            line = self.parts[run.run_id].line
            if line is not None:
                runs_by_line[line].append(run)
        for line, runs in runs_by_line.items():
            self._check_line(line, runs)
        self._check_resends(
            self.provider.calls_to("stn", "POST", TERMINATE),
            lambda body: _submission_key(body),
            "TerminateSubscription",
        )
        self._check_resends(
            self.provider.calls_to("stn", "POST", CANCEL_TERMINATION),
            lambda body: body.get("activationId"),
            "CancelTerminateSubscription of activation",
        )

    def _check_line(self, line: str, runs: list[RunRecord]) -> None:
        key = runs[-1].workflow_id
        terminations = self.provider.terminations_by_line.get(line, [])
        done = [t for t in terminations if t.status == DONE]
        if len(done) > 1:
            ids = ", ".join(t.id for t in done)
            self.fail(key, "one-effect", f"line {line} terminated {len(done)} times ({ids})")
        open_runs = [r for r in runs if r.phase == SagaPhase.NEEDS_ATTENTION]
        for termination in terminations:
            if termination.status in (BUSY, CANCELLING) and not open_runs:
                self.fail(
                    key,
                    "behind-back",
                    f"sTN termination {termination.id} of line {line} is still "
                    f"{termination.status} after every saga settled: it will execute "
                    "without a saga to account for it",
                )
            cancellations = self.provider.cancellations_of.get(termination.id, [])
            if sum(c.status == DONE for c in cancellations) > 1:
                self.fail(key, "compensation-once", f"termination {termination.id} cancelled twice")
        # A churn waiting in NEEDS_ATTENTION accounts for its line either way: it says
        # what it still owes there (its pending actions), even if its last look is stale.
        claimed = {
            _stn_state(run).get("activationId"): run
            for run in runs
            if (
                run.phase == SagaPhase.COMPLETED and _stn_state(run).get("activationStatus") == DONE
            )
            or (run.phase == SagaPhase.NEEDS_ATTENTION and run.workflow_type == "CustomerChurn")
        }
        for termination in done:
            run = claimed.get(termination.id)
            if run is not None and run.phase == SagaPhase.NEEDS_ATTENTION:
                self._check_pivot(run, termination.id)
        for termination in done:
            if termination.id not in claimed:
                views = ", ".join(
                    f"{r.workflow_id} {r.phase}, its view: {_stn_state(r).get('activationId')} "
                    f"{_stn_state(r).get('activationStatus')}"
                    + (
                        f", undone parts {r.status.get('undoneParts')}"
                        if r.status and r.status.get("undoneParts")
                        else ""
                    )
                    for r in runs
                )
                self.fail(
                    key,
                    "lost-effect",
                    f"sTN terminated line {line} (activation {termination.id}) but no saga "
                    f"says so ({views})",
                )
        done_ids = {t.id for t in done}
        for run in runs:
            if run.phase != SagaPhase.COMPLETED:
                continue
            activation = _stn_state(run).get("activationId")
            if activation not in done_ids:
                self.fail(
                    run.workflow_id,
                    "completed-by-provider",
                    f"COMPLETED, but sTN did not execute its termination {activation} of {line}",
                )

    def _check_pivot(self, run: RunRecord, activation_id: str) -> None:
        """sTN executed the churn's line: the pivot has passed, so billing is finished
        and the eSIM orders stay cancelled (docs/sagas.md: forward recovery, nothing
        after the pivot is undone). A churn that undid them anyway broke that rule."""
        status = run.status or {}
        undone = [part for part in status.get("undoneParts") or [] if part != "stn"]
        if undone:
            harm = {
                "rebilly": "billing is no longer cancelled (its draft deleted)",
                "airalo": "the eSIM orders were re-created",
            }
            self.fail(
                run.workflow_id,
                "pivot",
                f"sTN executed the line (activation {activation_id}; the saga's last look: "
                f"{_stn_state(run).get('activationStatus')}), yet the saga undid {undone} "
                f"and waits in NEEDS_ATTENTION ({str(status.get('cause'))[:80]}): "
                + "; ".join(harm.get(part, f"{part} undone") for part in undone)
                + ", for a terminated line",
            )

    def _check_resends(
        self, calls: list[Call], key_of: Callable[[dict[str, Any]], str | None], what: str
    ) -> None:
        """sTN has no idempotency key: a retry must look the earlier attempt up before it
        sends again. A request sTN applied and then *refused* when it came again (4xx,
        no injected fault) was re-sent although the lookup would have found it."""
        by_key: dict[str, list[Call]] = defaultdict(list)
        for call in calls:
            key = key_of(call.body if isinstance(call.body, dict) else {})
            if key:
                by_key[key].append(call)
        for key, group in by_key.items():
            group.sort(key=lambda call: call.order)
            applied = next((c for c in group if c.applied), None)
            if applied is None:
                continue
            refused = [
                c
                for c in group
                if c.order > applied.order and c.fault is None and 400 <= c.status < 500
            ]
            if refused:
                self.fail(
                    f"stn {key}",
                    "resent",
                    f"{what} {key} sent again after sTN applied it (applied: call "
                    f"{applied.seq} at {applied.at:%H:%M:%S}; sent again and refused: "
                    + ", ".join(f"call {c.seq} at {c.at:%H:%M:%S} -> {c.status}" for c in refused)
                    + ")",
                )

    # -- Rebilly: one churn per order, compensations once ----------------------------

    def check_orders(self) -> None:
        runs_by_order: dict[str, list[RunRecord]] = defaultdict(list)
        for run in self.runs:
            order = self.parts[run.run_id].order
            if order is not None:
                runs_by_order[order].append(run)
        restarted = {r.cancellation_id for r in self.provider.reactivations}
        reactivated = Counter(r.cancellation_id for r in self.provider.reactivations)
        for order, runs in runs_by_order.items():
            key = runs[-1].workflow_id
            cancellations = self.provider.order_cancellations.get(order, [])
            churned = [c for c in cancellations if c.status == COMPLETED and c.id not in restarted]
            if len(churned) > 1:
                self.fail(key, "one-effect", f"order {order} churned {len(churned)} times")
            open_runs = [r for r in runs if r.phase == SagaPhase.NEEDS_ATTENTION]
            for cancellation in cancellations:
                if cancellation.status in ACTIVE and not open_runs:
                    self.fail(
                        key,
                        "behind-back",
                        f"Rebilly cancellation {cancellation.id} of order {order} is still "
                        f"{cancellation.status} after every saga settled",
                    )
                if reactivated[cancellation.id] > 1:
                    self.fail(key, "compensation-once", f"{cancellation.id} reactivated twice")
            claimed = {_rebilly_state(run).get("cancellationId") for run in runs if _claims(run)}
            for cancellation in churned:
                if cancellation.id not in claimed:
                    phases = ", ".join(f"{r.workflow_id} {r.phase}" for r in runs)
                    self.fail(
                        key,
                        "lost-effect",
                        f"Rebilly churned order {order} ({cancellation.id}) but no saga says "
                        f"so ({phases})",
                    )
            churned_ids = {c.id for c in churned}
            for run in runs:
                cancellation_id = _rebilly_state(run).get("cancellationId")
                if run.phase == SagaPhase.COMPLETED and cancellation_id not in churned_ids:
                    self.fail(
                        run.workflow_id,
                        "completed-by-provider",
                        f"COMPLETED, but Rebilly did not complete {cancellation_id} of {order}",
                    )
        deletes: Counter[str] = Counter(
            call.path for call in self.provider.calls if call.method == "DELETE" and call.applied
        )
        for path, times in deletes.items():
            if times > 1:
                self.fail(f"rebilly {path}", "compensation-once", f"draft deleted {times} times")

    # -- Airalo: each order cancelled once, re-created once when undone --------------

    def check_esims(self) -> None:
        cancel_calls = [c for c in self.provider.calls_to("airalo", "POST", AIRALO_CANCEL)]
        applied_cancels: Counter[str] = Counter()
        for call in cancel_calls:
            if call.applied and isinstance(call.body, dict):
                applied_cancels.update(call.body.get("request_ids") or [])
        creates = self._applied_creates()
        claims: dict[str, list[tuple[RunRecord, dict[str, Any]]]] = defaultdict(list)
        for run in self.runs:
            for outcome in _airalo_state(run).get("outcomes") or []:
                claims[outcome["requestId"]].append((run, outcome))
        for request_id, held in claims.items():
            self._check_esim(request_id, held, applied_cancels[request_id], creates)
        for request_id, order in self.provider.future_orders.items():
            cancelled = order.status == AIRALO_CANCELLED and applied_cancels[request_id]
            if cancelled and request_id not in claims:
                self.fail(
                    f"airalo {request_id}",
                    "lost-effect",
                    "cancelled at Airalo, but no saga holds it",
                )

    def _applied_creates(self) -> Counter[tuple[str, str | None]]:
        """Applied ``POST /v2/future-orders`` by (due date, description)."""
        creates: Counter[tuple[str, str | None]] = Counter()
        for call in self.provider.calls_to("airalo", "POST", AIRALO_ORDERS):
            if call.applied and isinstance(call.body, dict):
                creates[(str(call.body.get("due_date")), call.body.get("description"))] += 1
        return creates

    def _check_esim(
        self,
        request_id: str,
        held: list[tuple[RunRecord, dict[str, Any]]],
        applied_cancels: int,
        creates: Counter[tuple[str, str | None]],
    ) -> None:
        key = held[-1][0].workflow_id
        order = self.provider.future_orders.get(request_id)
        status = order.status if order else None
        if applied_cancels > 1:
            self.fail(key, "one-effect", f"Airalo order {request_id} cancelled {applied_cancels}x")
        cancelled_by = [(run, o) for run, o in held if o["outcome"] == "CANCELLED"]
        uncertain = [
            (run, o) for run, o in held if o["outcome"] == "FAILED" and "may have" in o["reason"]
        ]
        if status == AIRALO_CANCELLED and applied_cancels and not (cancelled_by or uncertain):
            outcomes = ", ".join(f"{run.workflow_id} {o['outcome']}" for run, o in held)
            self.fail(
                key,
                "lost-effect",
                f"Airalo cancelled {request_id}, but no saga says so ({outcomes})",
            )
        if len(cancelled_by) > 1:
            self.fail(key, "one-effect", f"{request_id} claimed CANCELLED by {len(cancelled_by)}")
        for run, outcome in held:
            self._check_outcome(run, request_id, outcome["outcome"], status, order)
        for run, _outcome in cancelled_by:
            self._check_recreation(run, request_id, order, creates)

    def _check_outcome(
        self,
        run: RunRecord,
        request_id: str,
        outcome: str,
        status: str | None,
        order: FutureOrder | None,
    ) -> None:
        if not run.phase or run.phase not in FINAL_PHASES | {SagaPhase.NEEDS_ATTENTION}:
            return  # reported by check_settled
        wrong = {
            "CANCELLED": status != AIRALO_CANCELLED,
            "MISSED_DEADLINE": status == AIRALO_CANCELLED,
            "KEPT": status == AIRALO_CANCELLED,
            "NOT_FOUND": order is not None,
            "ALREADY_PROCESSED": status not in (AIRALO_PROCESSED, AIRALO_CANCELLED),
            # Never reached (a churn undone before its eSIM step): untouched at Airalo.
            "PENDING": status == AIRALO_CANCELLED,
            "CANCELLING": status == AIRALO_CANCELLED,
        }.get(outcome, False)
        if wrong:
            self.fail(
                run.workflow_id,
                "completed-by-provider",
                f"outcome {outcome} for {request_id}, but Airalo has it {status or 'not at all'}",
            )

    def _check_recreation(
        self,
        run: RunRecord,
        request_id: str,
        order: FutureOrder | None,
        creates: Counter[tuple[str, str | None]],
    ) -> None:
        """Undone (REVOKED, COMPENSATED, or a churn's airalo part undone): re-created
        exactly once; else never."""
        if order is None:
            return
        recreated = {r["originalRequestId"]: r for r in _airalo_state(run).get("recreated") or []}
        times = creates[(format_due(order.due_date), order.description)]
        undone = run.phase in (SagaPhase.REVOKED, SagaPhase.COMPENSATED) or (
            "airalo" in ((run.status or {}).get("undoneParts") or [])
        )
        entry = recreated.get(request_id)
        if not undone:
            if times:
                self.fail(
                    run.workflow_id,
                    "compensation-once",
                    f"{request_id} re-created {times}x although the saga ended {run.phase}",
                )
            return
        if entry is None:
            self.fail(
                run.workflow_id,
                "compensation-once",
                f"{request_id}: the saga cancelled it and reports its eSIM part undone "
                f"({run.phase}), but never re-created it ({times} created at Airalo)",
            )
        elif entry.get("requestId"):
            copy = self.provider.future_orders.get(entry["requestId"])
            if copy is None or copy.status != AIRALO_PENDING:
                self.fail(
                    run.workflow_id,
                    "compensation-once",
                    f"re-created {request_id} as {entry['requestId']}, which Airalo has "
                    f"{copy.status if copy else 'not at all'}",
                )
            if times != 1:
                self.fail(
                    run.workflow_id,
                    "compensation-once",
                    f"{request_id} re-created {times} times (want exactly once)",
                )
        elif times:
            self.fail(
                run.workflow_id,
                "compensation-once",
                f"{request_id}: re-creation reported failed, yet {times} order(s) were created",
            )


def check(
    runs: list[RunRecord],
    provider: ProviderState,
    accepted: Iterable[str],
    *,
    allow_task_failure_causes: frozenset[str] = frozenset(),
) -> tuple[list[Violation], list[str]]:
    """The violations, and the benign ``UnhandledCommand`` task failures (where)."""
    checker = Checker(runs, provider, accepted, allow_task_failure_causes=allow_task_failure_causes)
    return checker.check(), checker.benign
