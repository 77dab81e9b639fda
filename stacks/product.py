"""The product's own processes, as every stack runs them on its Temporal.

The provider sandbox, the codec server (when the wiring has one), N workers and the
HTTP API (when the wiring has one), each a :class:`~stacks.service.Service` whose
environment is :func:`stacks.environment.environment`'s. ``make run`` and the
reliability suite put them on the dev server (:mod:`stacks.devstack`), ``make cluster``
on Temporal Server's four services (:mod:`stacks.cluster.stack`).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from stacks.environment import Role, Wiring, environment
from stacks.service import Service

#: What the worker logs once it polls its task queue.
WORKER_READY_LINE = "Worker polling task queue"


def sandbox_port(wiring: Wiring) -> int:
    """The port of the stack's sandbox (its URL names one: it runs on this machine)."""
    port = urlsplit(wiring.sandbox_url).port
    if port is None:
        raise ValueError(f"the sandbox URL {wiring.sandbox_url} names no port")
    return port


class ProductProcesses:
    """The sandbox, codec server, workers and API of one stack, not started yet.

    ``logs``: the directory of their log files (``None``: they write to the
    supervisor's terminal, and a worker's readiness is not awaited). ``state_file``:
    the sandbox's (``None``: it keeps its state in memory). ``wait_for_workers``: a
    worker is started once it logs that it polls. ``worker_metrics``: the first
    worker's metrics port, the next worker's one above (0: none; ``None``: the
    environment's or the default). ``base``: the environment they start from.
    """

    def __init__(
        self,
        wiring: Wiring,
        *,
        logs: Path | None,
        state_file: Path | None,
        workers: int = 1,
        wait_for_workers: bool = True,
        worker_metrics: int | None = None,
        api_metrics: int | None = None,
        provider_timeout_seconds: float | None = None,
        sandbox_env: Mapping[str, str] | None = None,
        worker_env: Mapping[str, str] | None = None,
        base: Mapping[str, str] | None = None,
    ) -> None:
        self.wiring = wiring
        python = sys.executable

        def log(name: str) -> Path | None:
            return None if logs is None else logs / f"{name}.log"

        self.sandbox = Service(
            "sandbox",
            [
                python,
                "-m",
                "sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(sandbox_port(wiring)),
                *(["--state-file", str(state_file)] if state_file is not None else []),
            ],
            environment(wiring, Role.SANDBOX, base=base, extra=sandbox_env),
            log("sandbox"),
            port=sandbox_port(wiring),
        )
        self.codec_server: Service | None = None
        if wiring.codec_port is not None:
            self.codec_server = Service(
                "codec server",
                [python, "-m", "starter.codec_server"],
                environment(wiring, Role.CODEC_SERVER, base=base),
                log("codec-server"),
                port=wiring.codec_port,
                graceful=signal.SIGINT,
            )
        self.workers: list[Service] = []
        for index in range(workers):
            numbered = workers > 1
            self.workers.append(
                Service(
                    f"worker {index + 1}" if numbered else "worker",
                    [python, "worker.py"],
                    environment(
                        wiring,
                        Role.WORKER,
                        base=base,
                        metrics_address=_address(worker_metrics, index),
                        provider_timeout_seconds=provider_timeout_seconds,
                        extra=worker_env,
                    ),
                    log(f"worker-{index + 1}" if numbered else "worker"),
                    ready_line=WORKER_READY_LINE if wait_for_workers and logs else None,
                    graceful=signal.SIGINT,
                )
            )
        self.api: Service | None = None
        if wiring.api_url is not None:
            self.api = Service(
                "HTTP API",
                [python, "-m", "starter.api"],
                environment(wiring, Role.API, base=base, metrics_address=_address(api_metrics, 0)),
                log("api"),
                port=wiring.api_port,
                # Ready once it reaches Temporal (an open port alone is not enough).
                ready_url=f"{wiring.api_url}/readyz",
                graceful=signal.SIGINT,
            )

    def in_start_order(self) -> list[Service]:
        """Sandbox, codec server, workers, API: each finds what it needs already up."""
        ordered = [self.sandbox]
        ordered += [self.codec_server] if self.codec_server is not None else []
        ordered += self.workers
        ordered += [self.api] if self.api is not None else []
        return ordered


def _address(port: int | None, index: int) -> str | None:
    if port is None:
        return None
    return f"127.0.0.1:{port + index}" if port else ""
