"""Which patches a deployment still needs: runs that could take a patch's old path
(``cancelctl release patches``, README "Releases").

A run takes a patch's new path when it recorded the patch's marker, or a generation
marker that implies it (``workflows/patches.py``); sdk-core lists the markers a run
recorded in its ``TemporalChangeVersion`` search attribute. Every other saga run could
take the old path: an open one when it gets there, a closed one when it is queried
(``cancelctl status`` replays it) until the namespace's retention removes it. A patch is
*retirable* when there is none of either; the release that retires it
(:data:`workflows.patches.RETIRED`) must not be ramped or promoted before, and
``cancelctl release ramp|promote`` refuse it while open runs need one.

Counts come from visibility, which is eventually consistent: a run started a moment ago
may be missing, and a count is exact only for a deployment whose starts have stopped
for the old path anyway (no worker of a release without the patch is left).
"""

from __future__ import annotations

from temporalio.client import Client

from domain.common import CamelModel
from starter.kinds import KINDS
from workflows import patches

#: The workflow types that ask patches: the sagas.
SAGA_TYPES = tuple(
    spec.workflow.__temporal_workflow_definition.name  # type: ignore[attr-defined]
    for spec in KINDS
)


class PatchUse(CamelModel):
    patch: str
    # Its old path is gone from this release (workflows/patches.py RETIRED).
    retired: bool
    # Saga runs without a marker that gives them the new path.
    open_runs: int
    closed_runs: int

    @property
    def verdict(self) -> str:
        if self.open_runs:
            if self.retired:
                return (
                    f"retired in this release, but {self.open_runs} open run(s) can still "
                    "take its old path: do not ramp or promote this release yet"
                )
            return f"in use: {self.open_runs} open run(s) can still take its old path"
        if self.closed_runs:
            return (
                f"no open run needs it; {self.closed_runs} closed run(s) in retention would "
                "take its old path if queried"
            )
        return "retired: no run can take its old path" if self.retired else "retirable"


def _quoted(values: object) -> str:
    # Patch ids and type names are our own constants: nothing to escape.
    return ", ".join(f"'{value}'" for value in values)  # type: ignore[attr-defined]


async def patch_use(client: Client, task_queue: str, patch: str) -> PatchUse:
    """``patch``'s use among the sagas of ``task_queue`` (a deployment's sagas, run before
    or after it was versioned)."""
    queue = task_queue.replace("'", "")  # a task queue name from settings; kept unquotable
    sagas = f"TaskQueue = '{queue}' AND WorkflowType IN ({_quoted(SAGA_TYPES)})"
    carried = f"TemporalChangeVersion IN ({_quoted(sorted(patches.carriers(patch)))})"
    counts = []
    for state in ("ExecutionStatus = 'Running'", "ExecutionStatus != 'Running'"):
        every = (await client.count_workflows(f"{sagas} AND {state}")).count
        new_path = (await client.count_workflows(f"{sagas} AND {state} AND {carried}")).count
        counts.append(every - new_path)
    return PatchUse(
        patch=patch,
        retired=patch in patches.RETIRED,
        open_runs=counts[0],
        closed_runs=counts[1],
    )


async def patch_uses(client: Client, task_queue: str) -> list[PatchUse]:
    """Every patch the sagas ask or asked, oldest first."""
    return [await patch_use(client, task_queue, patch) for patch in patches.IN_ORDER]


async def blocking_retired(client: Client, task_queue: str) -> list[PatchUse]:
    """Patches this release retired that open runs still need (a ramp or promote of it
    would break them)."""
    uses = [await patch_use(client, task_queue, patch) for patch in sorted(patches.RETIRED)]
    return [use for use in uses if use.open_runs]
