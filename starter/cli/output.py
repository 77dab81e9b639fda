"""How cancelctl prints a saga's status and a saga listing, and its exit codes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from temporalio.client import Client

from starter.forecast import Forecast
from starter.lanes import LaneState
from starter.sagas import RequestPending, RequestStage, SagaListing

#: cancelctl's exit codes: done; refused or failed (the reason on stderr); bad input.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

#: What a sub-command prepares from its arguments and runs once connected.
Command = Callable[[Client], Awaitable[int]]

_STATUS_HEADER_KEYS = frozenset({"workflowId", "workflowType", "phase", "runStatus", "steps"})


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_status(state: dict[str, Any]) -> None:
    """One header line, one line per non-empty field, then the audit trail."""
    print(
        f"{state.get('workflowId')}  {state.get('workflowType')}  {state.get('phase')}"
        f"  (run {str(state.get('runStatus', '')).lower()})"
    )
    for key, value in state.items():
        if key in _STATUS_HEADER_KEYS or value in (None, [], {}):
            continue
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            # e.g. one outcome per Airalo request id: one line each.
            print(f"  {key}:")
            for item in value:
                print("    " + "  ".join(str(v) for v in item.values() if v not in (None, "")))
            continue
        print(f"  {key}: {value if not isinstance(value, (dict, list)) else json.dumps(value)}")
    print("  steps:")
    for step in state.get("steps", []):
        print(f"    {step['at']}  {step['step']:<16} {step.get('detail', '')}")


def print_listing(rows: Iterable[SagaListing]) -> None:
    print(f"{'WORKFLOW ID':<44} {'TYPE':<24} {'PHASE':<16} {'WISH DATE':<26} CUSTOMER")
    for row in rows:
        wish = row.wish_date.isoformat(timespec="seconds") if row.wish_date else "-"
        print(
            f"{row.workflow_id:<44} {row.workflow_type:<24} {row.phase or '-':<16} {wish:<26} "
            f"{row.customer_id or '-'}"
        )


def print_lanes(lanes: Iterable[LaneState]) -> None:
    print(
        f"{'LANE':<10} {'TASK QUEUE':<40} {'LIMIT/S':>8}  {'SET BY':<20} {'BACKLOG':>8} "
        f"{'OLDEST':>9} {'WORKERS':>7}  SPREAD"
    )
    for lane in lanes:
        limit = f"{lane.limit_per_second:g}" if lane.limit_per_second is not None else "none"
        print(
            f"{lane.provider:<10} {lane.task_queue:<40} {limit:>8}  {lane.limit_source:<20} "
            f"{lane.backlog:>8} {lane.oldest_waiting_seconds:>8.1f}s {lane.pollers:>7}  "
            f"{lane.observation_spread_seconds:g}s"
        )


def print_forecast(forecast: Forecast) -> None:
    """One line per bucket and provider; a ``!`` where the lane cannot drain it in time."""
    print(f"{'FROM (UTC)':<20} {'PROVIDER':<10} {'DUE':>8} {'LANE TAKES':>11}")
    for bucket in forecast.buckets:
        capacity = "no limit" if bucket.capacity is None else str(bucket.capacity)
        flag = "  ! more than the lane takes in this time" if bucket.exceeds_lane else ""
        start = bucket.start.strftime("%Y-%m-%d %H:%M")
        print(f"{start:<20} {bucket.provider:<10} {bucket.due:>8} {capacity:>11}{flag}")


def pending_request(pending: RequestPending, within: float) -> str:
    """What an unanswered operator request means, and how to follow it."""
    if pending.stage is RequestStage.ACCEPTED:
        what = "the saga accepted the request and is applying it"
    else:
        what = (
            "the request was sent; the saga's worker has not taken it yet "
            "(it applies or refuses it then)"
        )
    return (
        f"no answer within {within:g} s: {what}; "
        f"follow it with: cancelctl status {pending.workflow_id}"
    )
