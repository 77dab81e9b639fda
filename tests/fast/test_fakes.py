"""The fakes stand in for every activity the workflows can call, under its own name."""

from __future__ import annotations

from temporalio import activity

from domain.airalo import AiraloActivity
from domain.rebilly import RebillyActivity
from domain.stn import StnActivity
from tests.fast.fakes import FakeProviders


def test_every_activity_name_has_a_fake() -> None:
    """A new activity without a fake would leave a fast test retrying it until timeout."""
    fakes = FakeProviders()
    registered: list[str] = []
    for fn in fakes.activities():
        definition = activity._Definition.from_callable(fn)
        assert definition is not None and definition.name is not None, fn
        registered.append(definition.name)

    wanted = {*StnActivity, *RebillyActivity, *AiraloActivity}
    assert sorted(registered) == sorted(wanted)
