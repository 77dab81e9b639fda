"""Each workflow type's Worker Versioning behaviour, and why (README "Releases").

Declared here rather than in ``@workflow.defn(versioning_behavior=...)``: the SDK sends a
type's declared behaviour with every completed workflow task, from an unversioned worker
too, and the server refuses such a task ("versioning behavior cannot be specified without
deployment options being set with versioned mode"), so a declaration in the decorator
would stop every unversioned worker (``CANCEL_DEPLOYMENT_VERSIONING=false``, the tests'
in-process workers). A versioned worker gives its types :data:`DEFAULT` as its
``default_versioning_behavior``; it refuses to start with a type that is not declared
here, or declared otherwise (:func:`undeclared`).

Every type is AUTO_UPGRADE: each may wait or retry for days (a saga for weeks), and a
PINNED run would hold its version's workers up until it ended, release after release.
An AUTO_UPGRADE run moves to the current version at its next workflow task, so every
change to a workflow goes behind ``workflow.patched`` (``workflows/patches.py``) with a
recorded history that must replay (``tests/test_replay.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from temporalio.common import VersioningBehavior


class Declared(NamedTuple):
    behaviour: VersioningBehavior
    reason: str


#: What a versioned worker declares for every workflow type it runs.
DEFAULT = VersioningBehavior.AUTO_UPGRADE

_SAGA = (
    "a saga waits for weeks on its wish date without continuing as new; pinned, every "
    "release's workers would have to run until its last saga ended"
)

#: Every workflow type the product's worker runs (by its registered name).
BEHAVIOURS: Mapping[str, Declared] = {
    "LineTermination": Declared(VersioningBehavior.AUTO_UPGRADE, _SAGA),
    "OrderCancellation": Declared(VersioningBehavior.AUTO_UPGRADE, _SAGA),
    "FutureOrderCancellation": Declared(VersioningBehavior.AUTO_UPGRADE, _SAGA),
    "CustomerChurn": Declared(VersioningBehavior.AUTO_UPGRADE, _SAGA),
    "OutcomeSubscriptions": Declared(
        VersioningBehavior.AUTO_UPGRADE,
        "the subscription store never ends (it continues as new); pinned, it would hold "
        "its first version's workers forever",
    ),
    "WebhookDelivery": Declared(
        VersioningBehavior.AUTO_UPGRADE,
        "a delivery retries for up to 72 hours while its subscriber is down; pinned, "
        "every release would keep the old workers up for three days",
    ),
    "SubscriberOutbox": Declared(
        VersioningBehavior.AUTO_UPGRADE,
        "a subscriber's outbox runs as long as events come (continuing as new); pinned, "
        "it would hold its first version's workers while its subscriber is busy",
    ),
    "BulkOperation": Declared(
        VersioningBehavior.AUTO_UPGRADE,
        "an operation steers thousands of sagas for hours (continuing as new); pinned, "
        "a release would wait for the longest one",
    ),
}


def undeclared(workflow_types: Iterable[str]) -> list[str]:
    """The types among ``workflow_types`` that a versioned worker cannot run: not in
    :data:`BEHAVIOURS`, or declared other than :data:`DEFAULT` (the SDK takes one
    behaviour per worker unless the decorator declares it, see the module docstring)."""
    return sorted(
        name
        for name in workflow_types
        if name not in BEHAVIOURS or BEHAVIOURS[name].behaviour != DEFAULT
    )
