"""Scenario 7: the HTTP API against its own OpenAPI document (Schemathesis).

Schemathesis 4 runs every check and every phase (examples, coverage, fuzzing,
stateful) against the stack's API and the document it serves
(:mod:`reliability.api_contract`), with many more examples per operation than the
bounded run in ``make test``. Each finding is a violation: a request the document
calls valid refused (or one it calls invalid accepted), an answer the document does
not list or whose body, headers or content type differ from it, a 5xx, an operation
that answers without the credentials it requires, a method not allowed without its
``Allow``, a resource gone that should be there.

The sagas the fuzz started (every ``workflowId`` the API answered 200/202 with) are
accepted requests like any other: the operator then revokes those still open (the
fuzz dates them up to two years ahead), they settle, and the suite's invariants apply
to them; a run no answer named is a violation ("starts nothing").
"""

from __future__ import annotations

import asyncio

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from reliability import api_contract
from reliability.invariants import Violation
from reliability.run import ScenarioContext, revoking
from sandbox.settings import SandboxSettings
from stacks.environment import REBILLY_WEBHOOK_USER

#: Examples per operation and phase: the full run, and ``--quick``.
EXAMPLES, QUICK_EXAMPLES = 100, 10
#: Schemathesis is stopped after this long (a finding then), never left running.
WITHIN_SECONDS = 1800.0


class ApiContract:
    name = "api-contract"
    title = "The API against its own document"
    summary = (
        "Schemathesis 4 against the stack's HTTP API and the OpenAPI document it serves: "
        f"all {len(api_contract.CHECKS)} checks, every phase (coverage, fuzzing, stateful), "
        "a fixed seed; the sagas it started are then revoked where still open and settle "
        "under the usual invariants."
    )

    async def drive(self, ctx: ScenarioContext) -> None:
        stack = ctx.stack
        credentials = api_contract.Credentials(
            api_key=stack.api_token,
            airalo_secret=SandboxSettings().airalo_client_secret,
            rebilly_username=REBILLY_WEBHOOK_USER,
            rebilly_password=stack.dev.product.wiring.webhook_password,
        )
        result = await asyncio.to_thread(
            api_contract.run,
            stack.api_url,
            credentials,
            examples=int(ctx.scaled(EXAMPLES, QUICK_EXAMPLES)),
            seed=ctx.options.seed,
            workdir=stack.workdir / "schemathesis",
            within=WITHIN_SECONDS,
        )
        print(f"  [{ctx.name}] {result.summary()}", flush=True)
        ctx.notes.append(f"Schemathesis: {result.summary()}")
        phases = ", ".join(f"{name} {status}" for name, status in sorted(result.phases.items()))
        ctx.notes.append(f"phases: {phases}")
        for finding in [*result.failures, *result.errors]:
            ctx.violations.append(Violation(self.name, "contract", finding))
        if not result.clean and not (result.failures or result.errors):
            why = f"Schemathesis exited {result.exit_code}: {result.output[-400:]}"
            ctx.violations.append(Violation(self.name, "contract", why))
        ctx.accepted |= result.started
        ctx.counters["sagas the fuzz started"] = len(result.started)
        await self._revoke_open(ctx, result.started)

    async def _revoke_open(self, ctx: ScenarioContext, started: set[str]) -> None:
        """The operator's clean-up: every saga the fuzz left open is revoked."""
        for workflow_id in sorted(started):
            try:
                described = await ctx.client.get_workflow_handle(workflow_id).describe()
            except RPCError:
                continue  # the invariants report a run that is not there
            if described.status == WorkflowExecutionStatus.RUNNING:
                await ctx.operator_request(
                    "revoke (left open by the fuzz)",
                    revoking(ctx.client, workflow_id, "fuzz clean-up"),
                )
