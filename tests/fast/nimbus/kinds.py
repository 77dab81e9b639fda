"""Nimbus's saga kinds: the entries a product would add to ``starter/kinds.py``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from starter.kinds import CliCommand, SagaKindSpec
from tests.fast.nimbus.domain import (
    LINE_AND_PLAN,
    PLAN_CANCELLATION,
    LineAndPlanRequest,
    PlanCancellationRequest,
    parse_line_and_plan,
    parse_plan_cancellation,
)
from tests.fast.nimbus.sagas import LineAndPlanSaga, PlanCancellationSaga


def _plan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan_id", metavar="PLAN_ID")
    parser.add_argument("--wish-date", metavar="ISO", required=True)


def _read_plan(args: argparse.Namespace) -> PlanCancellationRequest:
    data = {"planId": args.plan_id, "wishDate": args.wish_date}
    return parse_plan_cancellation(data, datetime.now(UTC))


def _line_and_plan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("customer_id", metavar="CUSTOMER_ID")
    parser.add_argument("--wish-date", metavar="ISO", required=True)
    parser.add_argument("--subscription-id", metavar="ID", required=True)
    parser.add_argument("--plan-id", metavar="ID", required=True)


def _read_line_and_plan(args: argparse.Namespace) -> LineAndPlanRequest:
    data = {
        "customerId": args.customer_id,
        "wishDate": args.wish_date,
        "stn": {"subscriptionId": args.subscription_id},
        "planId": args.plan_id,
    }
    return parse_line_and_plan(data, datetime.now(UTC))


PLAN = SagaKindSpec(
    kind=PLAN_CANCELLATION,
    model=PlanCancellationRequest,
    parse=parse_plan_cancellation,
    workflow=PlanCancellationSaga,
    workflow_id=lambda request, _settings: f"nimbus-plan-{request.plan_id}",
    summary=PlanCancellationRequest.summary,
    title="Cancel a Nimbus storage plan (NimbusPlanCancellation)",
    api_path="nimbus-plan-cancellations",
    event_type="storage.plan_cancel_requested",
    cli=CliCommand(
        name="cancel-nimbus-plan",
        help="cancel a Nimbus storage plan at a date",
        description="Cancel a Nimbus storage plan. Prints the saga's workflow id.",
        add_flags=_plan_flags,
        read=_read_plan,
    ),
)

LINE_AND_PLAN_KIND = SagaKindSpec(
    kind=LINE_AND_PLAN,
    model=LineAndPlanRequest,
    parse=parse_line_and_plan,
    workflow=LineAndPlanSaga,
    workflow_id=lambda request, _settings: f"nimbus-churn-{request.customer_id}",
    summary=LineAndPlanRequest.summary,
    title="A customer leaves: sTN line and Nimbus plan together (NimbusLineAndPlan)",
    api_path="nimbus-line-and-plans",
    event_type="customer.nimbus_churned",
    cli=CliCommand(
        name="nimbus-churn",
        help="end a customer's sTN line and Nimbus plan together",
        description="Terminate the line and cancel the plan at one date; undo both if "
        "the line cannot be terminated.",
        add_flags=_line_and_plan_flags,
        read=_read_line_and_plan,
    ),
)
