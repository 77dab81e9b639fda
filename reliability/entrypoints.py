"""The product's entry points as a caller uses them: the HTTP API and ``cancelctl``.

The same business request can be sent through each: ``POST /v1/<kind>`` (with or
without an ``Idempotency-Key``), ``POST /v1/events`` (a CloudEvent), ``cancelctl``
as a real process, or ``cancelctl`` in the batch runner (``reliability.cli_batch``,
the same ``main`` without a process per call).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import BaseModel

from domain.airalo import FutureOrderCancellationRequest
from domain.churn import CustomerChurnRequest
from domain.rebilly import OrderCancellationRequest
from domain.stn import TerminationRequest
from reliability.harness import Stack
from stacks.service import ROOT
from starter.kinds import KINDS


@dataclass(frozen=True)
class Answer:
    """How an entry point answered: ``code`` is the HTTP status or the exit code."""

    entry: str
    code: int
    workflow_id: str | None
    run_id: str | None = None
    text: str = ""
    traceback: bool = False
    #: The API said: nothing new started (attached, a redelivery, already completed).
    attached: bool = False
    already_completed: bool = False
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        return self.code in (0, 200, 202)


def api_body(request: BaseModel) -> dict[str, Any]:
    body: dict[str, Any] = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def cli_argv(request: BaseModel) -> list[str]:
    """``cancelctl`` arguments for a request (every field the CLI has a flag for)."""
    if isinstance(request, TerminationRequest):
        argv = ["terminate", *_line_flags(request)]
        argv += _flag("--wish-date", request.wish_date.isoformat() if request.wish_date else None)
        argv += _flag("--reference", request.reference_number)
        return argv + _flag("--customer-id", request.customer_id)
    if isinstance(request, OrderCancellationRequest):
        argv = ["cancel-order", request.order_id]
        argv += _flag(
            "--churn-time", request.churn_time.isoformat() if request.churn_time else None
        )
        argv += _flag("--policy", request.churn_time_policy)
        argv += _billing_flags(request)
        for item in request.line_items:
            argv += ["--line-item", item.model_dump_json(by_alias=True, exclude_none=True)]
        argv += ["--draft"] if request.draft else []
        return argv + _flag("--customer-id", request.customer_id)
    if isinstance(request, FutureOrderCancellationRequest):
        return [
            "cancel-future-orders",
            *request.request_ids,
            *_flag("--customer-id", request.customer_id),
        ]
    assert isinstance(request, CustomerChurnRequest)
    argv = ["churn", request.customer_id, "--wish-date", request.wish_date.isoformat()]
    if request.stn is not None:
        argv += _line_flags(request.stn)
    if request.rebilly is not None:
        argv += ["--order-id", request.rebilly.order_id, *_billing_flags(request.rebilly)]
    if request.airalo is not None:
        argv += ["--esim-order", *request.airalo.request_ids]
    return argv


def _flag(name: str, value: str | None) -> list[str]:
    return [] if value is None else [name, str(value)]


def _line_flags(request: TerminationRequest) -> list[str]:
    if request.subscription_id is not None:
        return ["--subscription-id", request.subscription_id]
    return _flag("--phone", request.phone_number)


def _billing_flags(request: OrderCancellationRequest) -> list[str]:
    argv = ["--reason", request.reason.value, "--canceled-by", request.canceled_by.value]
    argv += ["--prorated"] if request.prorated else []
    return argv + _flag("--description", request.description)


class ApiEndpoint(Protocol):
    """Where an API listens and its all-scopes key: a :class:`Stack`, or a benchmark's
    target (``bench.target.Bench``, on the dev server or the cluster)."""

    @property
    def api_url(self) -> str: ...

    @property
    def api_token(self) -> str: ...


class Api:
    """The HTTP API with the stack's all-scopes key."""

    def __init__(self, stack: ApiEndpoint) -> None:
        self.http = httpx.AsyncClient(
            base_url=stack.api_url,
            headers={"Authorization": f"Bearer {stack.api_token}"},
            timeout=60.0,
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def start(self, kind: str, body: Any, idempotency_key: str | None = None) -> Answer:
        """``POST /v1/<path>`` of the saga kind with ``body`` as it is (any JSON)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        path = f"/v1/{KINDS[kind].api_path}"
        response = await self.http.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/json", **headers}
        )
        return self._answer(f"api {path}", response)

    async def event(self, kind: str, source: str, event_id: str, data: Any) -> Answer:
        envelope = {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": KINDS[kind].event_type,
            "data": data,
        }
        response = await self.http.post(
            "/v1/events",
            content=json.dumps(envelope),
            headers={"Content-Type": "application/cloudevents+json"},
        )
        return self._answer("api /v1/events", response)

    async def post(self, path: str, body: Any) -> Answer:
        response = await self.http.post(
            path, content=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        return self._answer(f"api {path}", response)

    @staticmethod
    def _answer(entry: str, response: httpx.Response) -> Answer:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = {}
        return Answer(
            entry=entry,
            code=response.status_code,
            workflow_id=data.get("workflowId"),
            run_id=data.get("runId"),
            text=response.text[:2000],
            traceback="Traceback" in response.text,
            attached=bool(data.get("alreadyRunning")),
            already_completed=bool(data.get("alreadyCompleted")),
            duplicate=bool(data.get("duplicateDelivery")),
        )


class CliBatch:
    """A ``reliability.cli_batch`` process: one ``cancelctl`` invocation at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lock = asyncio.Lock()

    @classmethod
    async def start(cls, stack: Stack) -> CliBatch:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reliability.cli_batch",
            cwd=ROOT,
            env=stack.cli_env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**24,
        )
        return cls(process)

    async def run(self, argv: list[str]) -> Answer:
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self.lock:
            self.process.stdin.write((json.dumps({"argv": argv}) + "\n").encode())
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the cancelctl batch runner exited")
        answer = json.loads(line)
        return _cli_answer(
            "cancelctl (batch)", answer["code"], answer["out"], answer["err"], answer["traceback"]
        )

    async def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def cancelctl(stack: Stack, argv: list[str]) -> Answer:
    """``cancelctl`` as a real process (``python -m starter.cli``)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "starter.cli",
        *argv,
        cwd=ROOT,
        env=stack.cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    code = process.returncode if process.returncode is not None else -1
    text_err = err.decode(errors="replace")
    return _cli_answer(
        "cancelctl", code, out.decode(errors="replace"), text_err, "Traceback" in text_err
    )


def _cli_answer(entry: str, code: int, out: str, err: str, escaped: bool) -> Answer:
    lines = out.strip().splitlines()
    workflow_id = lines[0].strip() if code == 0 and lines else None
    return Answer(
        entry=entry,
        code=code,
        workflow_id=workflow_id,
        text=(out + err)[:2000],
        traceback=escaped or "Traceback" in err or "Traceback" in out,
        attached="already running" in err,
        already_completed="already completed" in err,
    )
