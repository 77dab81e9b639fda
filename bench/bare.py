"""Bare Temporal: the baseline every benchmark ratio is taken against.

One tiny workflow of a saga's shape, with nothing of the product around it:
submit, an optional durable timer to the wish date, poll. No search attributes,
no current details, no status ledger, no heartbeating interceptor, no metrics, no
look-up before a retried submit. Its activities are either **no-ops** (``http=False``:
the issue's "same number of no-op activities and timers") or make **the same two
HTTP calls** to the sandbox's sTN as the product does (``http=True``:
TerminateSubscription, then QueryActivation by id until DONE), through one
connection-reusing httpx client, so both pay the same provider cost and the
wave's lateness is read from the same call log.

It runs in its own worker process (``python -m bench.bare``), with the SDK's
default ``Worker`` options and the product's data converter (pydantic, encrypted
payloads: ``config.temporal.data_converter``), on task queue :data:`TASK_QUEUE`
of the same server as the product's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import httpx

    from domain import search_attributes as sa

TASK_QUEUE = "bench-bare"
# Its own id: the cost of a patch marker is the same whatever it is called.
PRODUCT_GENERATION = "bench-bare-product-generation"
CALL_TIMEOUT = timedelta(seconds=60)
# The product's poll curve (workflows/provider_calls.py POLL_RETRY), without its
# non-retryable error types (nothing here is ever rejected).
POLL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=1.5,
    maximum_interval=timedelta(minutes=2),
)


@dataclass(frozen=True)
class BareInput:
    """One bare saga: ``wish_date`` None means immediate (no timer)."""

    subscription_id: str
    reference_number: str
    wish_date: datetime | None = None
    http: bool = False
    # The product's search attributes as it writes them (workflows/ledger.py): its one
    # patch marker (which upserts TemporalChangeVersion) and one upsert per task.
    upserts: bool = False


@dataclass(frozen=True)
class BareSubmitted:
    activation_id: str


class BareActivities:
    """Submit and poll; with ``http`` the sandbox's sTN calls, else nothing at all."""

    def __init__(self, http: httpx.AsyncClient | None) -> None:
        self._http = http

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("this bare worker has no sTN client")
        return self._http

    @activity.defn(name="bare.submit")
    async def submit(self, request: BareInput) -> BareSubmitted:
        if not request.http:
            return BareSubmitted(activation_id=f"noop-{request.reference_number}")
        body: dict[str, str] = {
            "subscriptionId": request.subscription_id,
            "referenceNumber": request.reference_number,
        }
        if request.wish_date is not None:
            body["wishDate"] = request.wish_date.isoformat()
        response = await self._client().post("/api/TerminateSubscription", json=body)
        response.raise_for_status()
        return BareSubmitted(activation_id=str(response.json()["id"]))

    @activity.defn(name="bare.poll")
    async def poll(self, submitted: BareSubmitted) -> str:
        if submitted.activation_id.startswith("noop-"):
            return "DONE"
        response = await self._client().get(
            "/api/QueryActivation", params={"id": submitted.activation_id}
        )
        response.raise_for_status()
        status = str(response.json()["results"][0]["status"])
        if status not in ("DONE", "ERROR"):
            raise ApplicationError(f"activation is {status}")
        return status


@workflow.defn(name="BareSaga")
class BareSaga:
    @workflow.run
    async def run(self, request: BareInput) -> str:
        if request.upserts:
            workflow.patched(PRODUCT_GENERATION)
            workflow.upsert_search_attributes(
                [
                    sa.CANCELLATION_KIND.value_set("LINE_TERMINATION"),
                    sa.CANCELLATION_PROVIDERS.value_set(["STN"]),
                    sa.CANCELLATION_STATUS.value_set("SUBMITTING"),
                    sa.WISH_DATE.value_set(request.wish_date or workflow.now()),
                ]
            )
        submitted = await workflow.execute_activity_method(
            BareActivities.submit, request, start_to_close_timeout=CALL_TIMEOUT
        )
        if request.wish_date is not None:
            remaining = request.wish_date - workflow.now()
            if remaining > timedelta(0):
                self._phase(request, "WAITING")
                await workflow.sleep(remaining)
        self._phase(request, "POLLING")
        status = await workflow.execute_activity_method(
            BareActivities.poll,
            submitted,
            start_to_close_timeout=CALL_TIMEOUT,
            retry_policy=POLL_RETRY,
        )
        self._phase(request, "COMPLETED")
        return status

    @staticmethod
    def _phase(request: BareInput, phase: str) -> None:
        if request.upserts:
            workflow.upsert_search_attributes([sa.CANCELLATION_STATUS.value_set(phase)])


async def main() -> None:
    # Imported here: the workflow sandbox re-imports this module per run, and the
    # worker's own modules are not needed there.
    from config.settings import StnSettings
    from config.temporal import connect

    client = await connect()
    stn = StnSettings()
    async with httpx.AsyncClient(
        base_url=stn.base_url,
        headers={"stn-api-key": stn.api_key.get_secret_value(), "Accept": "application/json"},
        timeout=stn.timeout_seconds,
    ) as http:
        bare = BareActivities(http)
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[BareSaga],
            activities=[bare.submit, bare.poll],
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            await stop.wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
