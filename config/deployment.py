"""Which Worker Deployment version a worker process is (README "Releases").

Workers run as a version of a Temporal Worker Deployment: the deployment's name and a
build id per release. The server sends new runs to the deployment's *current* version
(or a share of them to a *ramping* one) and moves each AUTO_UPGRADE run to it at its next
workflow task; every workflow type is AUTO_UPGRADE, with its reason, in
``workflows/versioning.py``.

Env prefix ``CANCEL_DEPLOYMENT_``: ``NAME`` (default ``cancellation-orchestrator``),
``BUILD_ID`` (default: the release, ``<package version>-<git commit>``),
``VERSIONING`` (default on; off: an unversioned worker, as before Worker Versioning),
``ON_START`` (``first``, the default: the worker makes its version current only when
the deployment has none yet, i.e. the very first release; ``current``: it always
does, which the local stacks use, one version at a time).
"""

from __future__ import annotations

import re
import subprocess
from enum import StrEnum
from functools import cache
from importlib import metadata

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.common import WorkerDeploymentVersion

from config.settings import PROJECT_ROOT

PACKAGE = "cancellation-orchestrator"
DEFAULT_DEPLOYMENT_NAME = "cancellation-orchestrator"
#: Build ids and deployment names: what a shell, a compose file and a visibility query
#: take without quoting. A deployment name has no ``.`` (the canonical version string is
#: ``<name>.<build id>``).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")


class OnStart(StrEnum):
    """What a worker does with its version once it polls."""

    #: Make it current only when the deployment has no current version (the first release).
    FIRST = "first"
    #: Always make it current (local stacks: one version at a time, the one just started).
    CURRENT = "current"


def name_problem(name: str) -> str | None:
    """Why ``name`` is no deployment name (``None``: it is one)."""
    if _NAME.fullmatch(name):
        return None
    return "1 to 100 letters, digits, '-' or '_', starting with a letter or digit (no '.')"


def build_id_problem(build_id: str) -> str | None:
    """Why ``build_id`` is no build id (``None``: it is one)."""
    if _BUILD_ID.fullmatch(build_id):
        return None
    return "1 to 100 letters, digits, '-', '_', '.' or '+', starting with a letter or digit"


@cache
def checkout_commit() -> str | None:
    """The git commit of this checkout (12 hex digits); ``None`` outside one (an image)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit or None


def release_build_id() -> str:
    """This release: the package version and, in a git checkout, its commit
    (``0.1.0-1a2b3c4d5e6f``). An image built without ``.git`` passes its own
    ``CANCEL_DEPLOYMENT_BUILD_ID`` (the Dockerfile's ``BUILD_ID`` argument)."""
    version = metadata.version(PACKAGE)
    commit = checkout_commit()
    return f"{version}-{commit}" if commit else version


class MissingBuildId(ValueError):
    """A production worker that cannot tell its release from another one."""


class DeploymentSettings(BaseSettings):
    """The worker's deployment version (module docstring). Env prefix ``CANCEL_DEPLOYMENT_``."""

    model_config = SettingsConfigDict(
        env_prefix="CANCEL_DEPLOYMENT_", extra="ignore", env_ignore_empty=True
    )

    name: str = DEFAULT_DEPLOYMENT_NAME
    build_id: str | None = None
    versioning: bool = True
    on_start: OnStart = OnStart.FIRST

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("build_id")
    @classmethod
    def _check_build_id(cls, value: str | None) -> str | None:
        problem = None if value is None else build_id_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def version(self, *, production: bool = False) -> WorkerDeploymentVersion | None:
        """This worker's version; ``None`` when versioning is off.

        In production a build id is required unless the worker runs from a git checkout:
        the package version alone is the same for two builds of one version, and two
        releases under one build id would replay each other's runs with the wrong code.
        """
        if not self.versioning:
            return None
        if self.build_id is None and production and checkout_commit() is None:
            raise MissingBuildId(
                "CANCEL_DEPLOYMENT_BUILD_ID: required in production outside a git checkout "
                "(the release's build id, e.g. the Dockerfile's BUILD_ID argument)"
            )
        return WorkerDeploymentVersion(self.name, self.build_id or release_build_id())
