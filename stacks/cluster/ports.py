"""Where every process of the cluster listens, from the environment or found free.

The variable names are the ones ``deploy/temporal/cluster.yaml`` reads, so the values
``make cluster`` resolves are passed on to the Temporal services unchanged
(:meth:`ClusterPorts.temporal_env`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from stacks.ports import free_port

#: PostgreSQL keeps membership ports in a smallint column (``cluster_membership``).
MEMBERSHIP_PORT_CEILING = 32768


@dataclass(frozen=True)
class ServicePorts:
    """One Temporal service: its gRPC port, its membership (ringpop) port, and for the
    frontend its HTTP API port."""

    grpc: int
    membership: int
    http: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.membership < MEMBERSHIP_PORT_CEILING:
            raise ValueError(
                f"membership port {self.membership} must be below {MEMBERSHIP_PORT_CEILING}: "
                "Temporal stores it in PostgreSQL as a smallint"
            )


TEMPORAL_SERVICES = ("history", "matching", "frontend", "worker")
"""In start order: the frontend answers once history and matching can take its calls."""

_DEFAULTS = {
    "frontend": ServicePorts(7233, 6933, 7243),
    "history": ServicePorts(7234, 6934),
    "matching": ServicePorts(7235, 6935),
    "worker": ServicePorts(7239, 6939),
}


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass(frozen=True)
class ClusterPorts:
    postgres: int = 5433
    frontend: ServicePorts = field(default_factory=lambda: _DEFAULTS["frontend"])
    history: ServicePorts = field(default_factory=lambda: _DEFAULTS["history"])
    matching: ServicePorts = field(default_factory=lambda: _DEFAULTS["matching"])
    worker: ServicePorts = field(default_factory=lambda: _DEFAULTS["worker"])
    ui: int = 8233
    sandbox: int = 8099
    api: int = 8080
    codec: int = 8089
    #: Product worker *i* (from 0) serves its metrics on ``worker_metrics + i``.
    worker_metrics: int = 9470
    api_metrics: int = 9465

    @classmethod
    def from_env(cls) -> ClusterPorts:
        """``make run``'s variables for what both have (UI, sandbox, API, codec server),
        the config template's for the Temporal services, ``CLUSTER_*`` for the rest."""
        services = {}
        for name, default in _DEFAULTS.items():
            prefix = f"TEMPORAL_{name.upper()}"
            services[name] = ServicePorts(
                _env_port(f"{prefix}_PORT", default.grpc),
                _env_port(f"{prefix}_MEMBERSHIP_PORT", default.membership),
                None if default.http is None else _env_port(f"{prefix}_HTTP_PORT", default.http),
            )
        return cls(
            postgres=_env_port("CLUSTER_POSTGRES_PORT", 5433),
            ui=_env_port("TEMPORAL_UI_PORT", 8233),
            sandbox=_env_port("SANDBOX_PORT", 8099),
            api=_env_port("CANCEL_API_PORT", 8080),
            codec=_env_port("CANCEL_CODEC_SERVER_PORT", 8089),
            worker_metrics=_env_port("CLUSTER_WORKER_METRICS_PORT", 9470),
            api_metrics=_env_port("CLUSTER_API_METRICS_PORT", 9465),
            **services,
        )

    @classmethod
    def free(cls) -> ClusterPorts:
        """Ports nobody listens on now (membership ports below 32768), e.g. for tests."""
        taken: set[int] = set()

        def low() -> int:
            return free_port(taken, low=True)

        def any_port() -> int:
            return free_port(taken)

        return cls(
            postgres=any_port(),
            frontend=ServicePorts(any_port(), low(), any_port()),
            history=ServicePorts(any_port(), low()),
            matching=ServicePorts(any_port(), low()),
            worker=ServicePorts(any_port(), low()),
            ui=any_port(),
            sandbox=any_port(),
            api=any_port(),
            codec=any_port(),
            # A run of free ports is not guaranteed: tests serve no worker metrics.
            worker_metrics=0,
            api_metrics=0,
        )

    def service(self, name: str) -> ServicePorts:
        ports: ServicePorts = getattr(self, name)
        return ports

    @property
    def frontend_address(self) -> str:
        return f"127.0.0.1:{self.frontend.grpc}"

    def temporal_env(self) -> dict[str, str]:
        """The Temporal services' ports, as ``deploy/temporal/cluster.yaml`` reads them."""
        env: dict[str, str] = {}
        for name in TEMPORAL_SERVICES:
            ports = self.service(name)
            prefix = f"TEMPORAL_{name.upper()}"
            env[f"{prefix}_PORT"] = str(ports.grpc)
            env[f"{prefix}_MEMBERSHIP_PORT"] = str(ports.membership)
            if ports.http is not None:
                env[f"{prefix}_HTTP_PORT"] = str(ports.http)
        return env

    def listening(self) -> list[tuple[int, str]]:
        """Every port a process of the cluster will listen on, with its owner's name."""
        named: list[tuple[int, str]] = [(self.postgres, "PostgreSQL")]
        for name in TEMPORAL_SERVICES:
            ports = self.service(name)
            named += [(ports.grpc, f"Temporal {name}"), (ports.membership, f"{name} membership")]
            if ports.http is not None:
                named.append((ports.http, f"Temporal {name} HTTP"))
        for item in fields(self):
            if item.name in ("ui", "sandbox", "api", "codec"):
                named.append((getattr(self, item.name), item.name))
        return named
