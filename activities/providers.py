"""The providers the worker calls: one entry each, the one place a provider is wired.

An entry (:class:`ProviderEntry`) names the provider (a ``Provider`` value: also the
name of its lane), its settings class (read from the environment under its own
prefix, ``config/settings.py``), how its HTTP client is built (credentials live in
that client or in its activities, never in workflows) and its activity class bound
to that client. ``worker.py`` opens every entry's client once per process and
registers every entry's activities; a new provider is one entry here
(``docs/adding-a-provider.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic_settings import BaseSettings
from temporalio import activity

from activities.airalo import AiraloActivities, AiraloTokens
from activities.provider_http import json_http_client
from activities.rebilly import RebillyActivities, rebilly_http_client
from activities.stn import StnActivities, stn_http_client
from config.settings import AiraloSettings, RebillySettings, StnSettings
from domain.common import Provider
from domain.provider_activities import AiraloCalls, RebillyCalls, StnCalls

S = TypeVar("S", bound=BaseSettings)


@dataclass(frozen=True)
class ProviderEntry(Generic[S]):
    """One provider as the worker sees it."""

    provider: str
    #: The activities' declarations workflows call (``domain.provider_activities``).
    calls: type
    settings: type[S]
    #: The configured client, opened once per worker process and closed with it.
    http_client: Callable[[S], httpx.AsyncClient]
    #: The provider's activity class, bound to that client (built once per process:
    #: what it caches, e.g. Airalo's bearer token, lives as long as the worker).
    activities: Callable[[httpx.AsyncClient, S], object]

    def bind(self, http: httpx.AsyncClient, settings: S) -> list[Callable[..., Any]]:
        """The activity implementations of one bound activity class instance."""
        return list(activity_methods(self.activities(http, settings)))


def activity_methods(instance: object) -> Iterator[Callable[..., Any]]:
    """Every ``@activity.defn`` method of ``instance``, bound, in definition order."""
    for name in vars(type(instance)):
        method = getattr(instance, name)
        if callable(method) and activity._Definition.from_callable(method) is not None:
            yield method


def _airalo(http: httpx.AsyncClient, settings: AiraloSettings) -> AiraloActivities:
    # Airalo's bearer token is cached for the worker's lifetime, never fetched per call.
    return AiraloActivities(http, AiraloTokens.from_settings(http, settings), settings.webhook_url)


def _airalo_client(settings: AiraloSettings) -> httpx.AsyncClient:
    return json_http_client(settings.api_root, settings.timeout_seconds, provider=Provider.AIRALO)


STN = ProviderEntry(
    Provider.STN, StnCalls, StnSettings, stn_http_client, lambda http, _: StnActivities(http)
)
REBILLY = ProviderEntry(
    Provider.REBILLY,
    RebillyCalls,
    RebillySettings,
    rebilly_http_client,
    lambda http, _: RebillyActivities(http),
)
AIRALO = ProviderEntry(Provider.AIRALO, AiraloCalls, AiraloSettings, _airalo_client, _airalo)

#: Every provider, in the order the worker opens them.
PROVIDERS: tuple[ProviderEntry[Any], ...] = (STN, REBILLY, AIRALO)
