"""What the scenarios inject: process kills, fault rules, outage windows.

Process faults go through the :class:`~reliability.harness.Stack` (SIGKILL, restart);
provider faults through the sandbox's fault rules (``POST /_sandbox/faults``: error,
rate_limit, drop_response, latency), always via the
:class:`~reliability.provider_state.SandboxRecorder`, which counts what they fired.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.service import RPCError

from reliability.harness import PROVIDER_TIMEOUT_SECONDS
from reliability.run import ScenarioContext

PROVIDERS = ("stn", "rebilly", "airalo")
#: Longer than the worker's HTTP timeout: the call times out, the provider applies it.
TIMEOUT_LATENCY = PROVIDER_TIMEOUT_SECONDS + 1.0


def background_faults() -> list[dict[str, Any]]:
    """Every provider, every route: 5xx, 429 with retry-after, lost responses and
    timeouts at low rates (the first rule that matches and wins its roll fires)."""
    specs: list[dict[str, Any]] = []
    for provider in PROVIDERS:
        specs += [
            {"provider": provider, "mode": "error", "status": 503, "rate": 0.05},
            {"provider": provider, "mode": "error", "status": 500, "rate": 0.02},
            {"provider": provider, "mode": "rate_limit", "retry_after_seconds": 2, "rate": 0.05},
            {"provider": provider, "mode": "drop_response", "rate": 0.04},
            {
                "provider": provider,
                "mode": "latency",
                "latency_seconds": TIMEOUT_LATENCY,
                "rate": 0.02,
            },
        ]
    return specs


def next_cutoff(lead_seconds: float) -> datetime:
    """The first whole minute at least ``lead_seconds`` ahead: Airalo's dates have
    minutes only, so an order due 24 h after it has exactly this cut-off."""
    soon = datetime.now(UTC) + timedelta(seconds=lead_seconds)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


async def activity_in_flight(ctx: ScenarioContext, within: float) -> bool:
    """Wait until some open saga has an activity running on a worker (``STARTED``).

    Samples a few sagas' descriptions at a time; ``False`` if none was seen in time.
    """
    started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    deadline = time.monotonic() + within
    ids = sorted(ctx.accepted)
    while time.monotonic() < deadline and ids:
        sample = ctx.rng.sample(ids, min(12, len(ids)))
        try:
            descriptions = await asyncio.gather(
                *(ctx.client.get_workflow_handle(i).describe() for i in sample)
            )
        except RPCError:
            descriptions = []
        for description in descriptions:
            pending = description.raw_description.pending_activities
            if any(activity.state == started for activity in pending):
                return True
        await asyncio.sleep(0.2)
    return False


async def crash_worker(ctx: ScenarioContext, *, down: float, mid_activity: bool) -> None:
    """SIGKILL the worker (if asked, while an activity runs on it), restart it later."""
    caught = await activity_in_flight(ctx, within=6.0) if mid_activity else False
    outage = await ctx.stack.crash_worker(down)
    ctx.counters["worker kills"] += 1
    if caught:
        ctx.counters["worker kills while an activity ran on it"] += 1
    print(
        f"  [{ctx.name}] worker SIGKILLed at {outage.started:%H:%M:%S}"
        f"{' mid-activity' if caught else ''}, restarted after {down:.1f} s",
        flush=True,
    )


async def fault_window(
    ctx: ScenarioContext, component: str, seconds: float, how: str, **spec: Any
) -> None:
    """A provider refused for ``seconds`` (an :class:`Outage` of ``component``)."""
    outage = ctx.outage(component, how)
    handle = await ctx.recorder.add_fault(first=True, label=f"outage: {component} {how}", **spec)
    print(f"  [{ctx.name}] {component} down ({how}) for {seconds:.0f} s", flush=True)
    await asyncio.sleep(seconds)
    await ctx.recorder.remove_fault(handle)
    outage.ended = datetime.now(UTC)
    print(f"  [{ctx.name}] {component} back", flush=True)
