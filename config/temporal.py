"""One way to reach Temporal, for the worker, ``cancelctl`` and the tests."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client, Interceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime

from config.codec import load_codec

DEFAULT_ADDRESS = "localhost:7233"


@functools.cache
def data_converter() -> DataConverter:
    """The converter every client, worker and replayer must share: pydantic models
    in payloads, each payload encrypted (``config.codec``, keys from settings).

    Built once per process (it is asked for on every connect): the keys are read,
    and a missing key refused or a dev key announced, once. Raises
    ``CodecConfigurationError`` in production without a key.
    """
    return converter_with(load_codec())


def converter_with(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic converter with ``codec`` (``None``: payloads as plain JSON, as a
    client without keys sees them).

    Failure messages and stack traces go into an encoded payload too: a provider's
    error text may echo a phone number, and a failure's message is otherwise stored
    in clear in history (the Web UI then shows "Encoded failure" without the codec
    server). Failures recorded before this decode as they are.
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


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
