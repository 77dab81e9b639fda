"""Every ``workflow.patched`` id of the sagas, and one marker per new run for all of them.

A ``workflow.patched`` call in a new run records a marker event and makes sdk-core
upsert the ``TemporalChangeVersion`` search attribute: an event and a visibility
write on the server each, per patch asked, per run, for as long as the patch stays
in the code. A run that carries a generation's marker (:data:`GENERATIONS`) was
started by code that already had every patch of that generation and the ones before
it, so for such a run those are taken as given instead of being asked (and
recorded) again. The run's first task records the one marker (``SagaLedger.open``);
runs started before a generation carry an older marker, or none, and ask for each
patch exactly as they always did, so their histories replay unchanged
(``tests/histories/*_before_*_patch.json``).

Adding a patch: define it here and ask :func:`patched` as usual (runs of the newest
generation record it like any other). To make it a given for the runs after it,
put a new generation first in :data:`GENERATIONS`, its own patch its marker and the
patches it takes for granted its set.
"""

from __future__ import annotations

from temporalio import workflow

# 2026-11: a cancellation during submit used to cancel the activity and end FAILED,
# leaving the termination sTN still created (tests/histories/*_prepatch.json).
SHIELDED_SUBMIT = "shield-submit-from-cancellation"

# 2026-11: CancelTerminateSubscription is asynchronous (a new activation, BUSY, that
# ends DONE or ERROR). Runs recorded before took its answer as the outcome.
FOLLOW_STN_CANCELLATION = "follow-stn-cancellation"

# 2026-11: Airalo does not document what a 422 did with the IDs it did not name;
# they used to be taken as still pending (tests/histories/*_prepatch.json).
AIRALO_SETTLE_UNNAMED_AFTER_422 = "airalo-settle-unnamed-after-422"

# 2026-11: with Airalo down in the last second before a cut-off, each re-send had
# a window too short for a retry and failed at once: a storm of calls until the
# cut-off (tests/histories/*_missed_deadline_prepatch.json).
AIRALO_WAIT_OUT_LAST_INTERVAL = "airalo-wait-out-last-retry-interval"

# 2026-11: a churn's compensation undid eSIMs, the line, then billing; when a revoke
# came a moment after sTN executed the line (the last poll still said BUSY),
# billing and eSIMs were undone for a terminated line. Now the line goes first
# and an executed line turns the unwind into forward recovery
# (tests/histories/customer_churn_*_before_line_first_patch.json).
CHURN_UNDO_LINE_FIRST = "churn-undo-line-first"

# 2026-11: an eSIM order cancelled without its details recorded (a listing missed
# it) was left cancelled and the churn still ended COMPENSATED; now it is owed.
CHURN_UNRECORDED_ORDERS_OWED = "churn-unrecorded-esim-orders-owed"

# 2026-11: search attributes are upserted once per workflow task (workflows/ledger.py),
# not at every phase change. Also the generation marker: see the module docstring.
ONE_UPSERT_PER_TASK = "ledger-one-upsert-per-task"

# 2026-12: a churn whose billing undo was answered "already completed" by Rebilly
# recorded it as undone and could end COMPENSATED; a completed cancellation cannot be
# undone, so the undo is now owed, as OrderCancellation always said
# (tests/histories/customer_churn_billing_already_completed_before_not_undone_patch.json).
# Asked only on that path, so only such runs carry its marker.
CHURN_COMPLETED_BILLING_NOT_UNDONE = "churn-completed-billing-not-undone"

# 2026-12: each provider's calls on its own lane (task queue) with a priority
# (domain/lanes.py); runs before it call every provider on the saga's own queue.
# Also the newest generation marker (below).
PROVIDER_LANES = "provider-lanes"

# 2026-12: every saga tells its subscribers what happened (workflows/outcome_events.py):
# a local activity per event, jeopardy timers (domain/outcomes.py). Runs before it emit
# nothing and start no jeopardy timer. Also a generation marker (below).
OUTCOME_EVENTS = "outcome-events"

# 2026-12: Airalo's listing is one activity per page of one status (one HTTP request
# each, so a lane's limit is Airalo's rate); runs before it read every page of every
# status in one activity (tests/histories/*_before_airalo_pages_patch.json). Also the
# newest generation marker (below).
AIRALO_LIST_PAGE_BY_PAGE = "airalo-list-page-by-page"

#: The patches of 2026-11, each asked on its own by the runs before the first generation
#: marker; now all retired (:data:`RETIRED`).
FIRST_GENERATION = frozenset(
    {
        SHIELDED_SUBMIT,
        FOLLOW_STN_CANCELLATION,
        AIRALO_SETTLE_UNNAMED_AFTER_422,
        AIRALO_WAIT_OUT_LAST_INTERVAL,
        CHURN_UNDO_LINE_FIRST,
        CHURN_UNRECORDED_ORDERS_OWED,
    }
)

# 2026-12: a delivery's first attempt is a local activity in its one workflow task; only
# a failed one falls back to the retried activity on the webhooks lane
# (tests/histories/webhook_delivery_*_before_first_attempt_local_patch.json). Asked by
# WebhookDelivery with ``workflow.patched``: it records no generation marker.
WEBHOOK_FIRST_ATTEMPT_LOCAL = "webhook-first-attempt-local"

# 2026-12: an outcome event whose publish failed for good failed the saga at its end: the
# SDK raises a failed local activity's own error (ApplicationError, TimeoutError), not an
# ActivityError, and only ActivityError was caught. Now logged and counted, as the module
# always said. Asked only on that path, so only such runs carry its marker.
PUBLISH_FAILURE_COUNTED = "outcome-publish-failure-counted"

# 2026-12: an outbox is also told of the first attempts publishes made inline (signal
# ``record``), which come without events to attempt: it continues as new when the server
# suggests it while it waits, not only after a batch (an outbox of only records would
# otherwise grow until the server ends it). Asked by SubscriberOutbox with
# ``workflow.patched`` (tests/histories/subscriber_outbox.json is from before).
OUTBOX_CONTINUES_WHILE_WAITING = "outbox-continues-as-new-while-waiting"

#: Generations, newest first: the marker a new run records (one, asked once) and the
#: patches a run carrying it has by construction. A run of a generation has every
#: patch of the generations after it in this tuple, and their markers.
GENERATIONS: tuple[tuple[str, frozenset[str]], ...] = (
    (AIRALO_LIST_PAGE_BY_PAGE, frozenset()),
    (OUTCOME_EVENTS, frozenset()),
    (PROVIDER_LANES, frozenset({CHURN_COMPLETED_BILLING_NOT_UNDONE})),
    (ONE_UPSERT_PER_TASK, FIRST_GENERATION),
)

#: The marker every new run records.
GENERATION = GENERATIONS[0][0]

#: Patches whose old path is gone (README "Releases", "Retiring a patch"): a run that
#: recorded one's marker still asks it (``workflow.deprecate_patch``, :func:`retired`);
#: every other run takes its new path. ``cancelctl release patches`` says whether any run
#: of a deployment could still need an old path; ``release ramp|promote`` refuse a
#: release while one does.
RETIRED: frozenset[str] = FIRST_GENERATION

#: Patches asked on their own, outside every generation: in a workflow that records no
#: generation marker, or only on a rare path.
UNGROUPED: frozenset[str] = frozenset(
    {WEBHOOK_FIRST_ATTEMPT_LOCAL, PUBLISH_FAILURE_COUNTED, OUTBOX_CONTINUES_WHILE_WAITING}
)

#: Every patch id the workflows ask for (``CANCEL_WORKER_HOLD_PATCHES`` is checked against
#: it): a retired patch can no longer be held.
ALL = (
    UNGROUPED | frozenset(patch for marker, patches in GENERATIONS for patch in (marker, *patches))
) - RETIRED

#: Every patch id, retired or not, oldest generation first (``cancelctl release patches``).
IN_ORDER: tuple[str, ...] = tuple(
    patch for marker, patches in reversed(GENERATIONS) for patch in (*sorted(patches), marker)
)


def carriers(patch_id: str) -> frozenset[str]:
    """The markers that give a run ``patch_id``'s new path: its own, and every generation
    marker that implies it (visibility lists a run's markers in ``TemporalChangeVersion``)."""
    return frozenset(
        {patch_id}
        | {marker for index, (marker, _) in enumerate(GENERATIONS) if patch_id in _implied(index)}
    )


def holding(patch_ids: frozenset[str]) -> frozenset[str]:
    """What a worker must not let new runs record to keep ``patch_ids``' old paths
    (``CANCEL_WORKER_HOLD_PATCHES``): each id and every marker that implies it. Holding
    ``provider-lanes`` alone would let a new run record a newer generation's marker,
    which implies lanes: the hold would change nothing."""
    return frozenset(marker for patch_id in patch_ids for marker in carriers(patch_id))


def _implied(generation: int) -> frozenset[str]:
    """The patches a run of ``GENERATIONS[generation]`` has without asking."""
    return frozenset(
        patch for marker, patches in GENERATIONS[generation:] for patch in (marker, *patches)
    )


def generation() -> int | None:
    """The index in :data:`GENERATIONS` of the newest marker this run carries (recorded
    at the first call in a new run); ``None`` for a run from before every generation.

    A new run records only the newest marker: ``workflow.patched`` answers true at once.
    A run recorded before it replays false for it (memoized for the run), and is asked
    for the older markers in turn.
    """
    for index, (marker, _) in enumerate(GENERATIONS):
        if workflow.patched(marker):
            return index
    return None


def current() -> bool:
    """Whether this run carries a generation marker (its search attributes are upserted
    once per workflow task, ``workflows/ledger.py``)."""
    return generation() is not None


def patched(patch_id: str) -> bool:
    """``workflow.patched(patch_id)``, answered without a marker when the run's
    generation implies it."""
    run_generation = generation()
    if run_generation is not None and patch_id in _implied(run_generation):
        return True
    return workflow.patched(patch_id)


def retired(patch_id: str) -> None:
    """A retired patch (:data:`RETIRED`), asked where ``patched`` was: a run of a generation
    that implies it asks nothing, as before; any other run asks
    ``workflow.deprecate_patch``, which matches the marker it recorded (or records a
    deprecated one), and takes the new path, the only one left."""
    run_generation = generation()
    if run_generation is not None and patch_id in _implied(run_generation):
        return
    workflow.deprecate_patch(patch_id)
