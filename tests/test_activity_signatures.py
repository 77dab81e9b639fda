"""The worker's activities match the declarations workflows call (domain.provider_activities).

Workflow code calls typed declarations, so mypy checks its arguments; this test
checks the other half: every declared activity is registered by the worker under
the same name, with the same argument and result types.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import httpx
import pytest
from temporalio import activity

from activities.providers import PROVIDERS, ProviderEntry


def implementation_of(entry: ProviderEntry[Any]) -> type:
    """The activity class the worker binds for ``entry`` (built on an unused client)."""
    return type(entry.activities(httpx.AsyncClient(), entry.settings()))


#: Each provider's declarations and the class the worker registers for them.
PAIRS = [(entry.calls, implementation_of(entry)) for entry in PROVIDERS]


def activities_of(cls: type) -> dict[str, Any]:
    """Activity name → unbound method, for every ``@activity.defn`` method of ``cls``."""
    found = {}
    for _, method in inspect.getmembers(cls, inspect.isfunction):
        definition = activity._Definition.from_callable(method)
        if definition is not None and definition.name is not None:
            found[definition.name] = method
    return found


def signature_of(method: Any) -> tuple[Any, ...]:
    hints = typing.get_type_hints(method)
    params = list(inspect.signature(method).parameters)[1:]  # without self
    return tuple(hints[p] for p in params), hints["return"]


@pytest.mark.parametrize(("declared", "implemented"), PAIRS, ids=lambda c: c.__name__)
def test_every_declared_activity_is_implemented_alike(declared: type, implemented: type) -> None:
    declarations, implementations = activities_of(declared), activities_of(implemented)

    assert declarations, f"{declared.__name__} declares no activity"
    assert set(declarations) == set(implementations)
    for name, method in declarations.items():
        assert signature_of(method) == signature_of(implementations[name]), name
