"""One way to reach Temporal, for the worker, ``cancelctl`` and the tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

DEFAULT_ADDRESS = "localhost:7233"


def data_converter() -> DataConverter:
    """The converter every client and worker must share (pydantic models in payloads)."""
    return pydantic_data_converter


def connect_config() -> dict[str, Any]:
    """Temporal's standard environment configuration (``TEMPORAL_ADDRESS``,
    ``TEMPORAL_NAMESPACE``, ``TEMPORAL_API_KEY``, TLS, profiles in
    ``temporal.toml``), with ``localhost:7233`` when nothing is set."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


async def connect(
    *, runtime: Runtime | None = None, interceptors: Sequence[Interceptor] = ()
) -> Client:
    """A client with the shared converter; ``runtime`` carries telemetry (metrics
    export), ``interceptors`` e.g. tracing."""
    return await Client.connect(
        **connect_config(),
        data_converter=data_converter(),
        runtime=runtime,
        interceptors=interceptors,
    )
