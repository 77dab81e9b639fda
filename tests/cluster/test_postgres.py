"""The private PostgreSQL's own rules (``stacks/cluster/postgres.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stacks.cluster.postgres import Postgres, PostgresUnavailable
from stacks.cluster.stack import ClusterStack

pytestmark = pytest.mark.cluster


@pytest.mark.skipif(os.geteuid() != 0, reason="as root only: PostgreSQL then runs as 'postgres'")
def test_a_directory_the_postgres_user_cannot_enter_is_refused_saying_why(
    cluster: ClusterStack, tmp_path: Path
) -> None:
    """pytest's ``tmp_path`` sits under a directory only root may enter."""
    postgres = Postgres(cluster.postgres_binaries, tmp_path / "postgres", 5999)

    with pytest.raises(PostgresUnavailable, match="cannot enter") as error:
        postgres.init()

    assert "'postgres'" in str(error.value) and "chmod o+x" in str(error.value)
    assert not (tmp_path / "postgres").exists()


def test_the_clusters_postgresql_is_private(cluster: ClusterStack) -> None:
    """127.0.0.1 only, its socket in its own directory, a role for Temporal that is no
    superuser, and room for four services' connection pools."""
    postgres = cluster.postgres
    settings = dict(
        line.split("|")
        for line in postgres.psql(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'unix_socket_directories', 'max_connections', 'port')"
        ).splitlines()
    )
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(postgres.directory),
        "max_connections": "300",
        "port": str(cluster.ports.postgres),
    }
    role = postgres.psql("SELECT rolsuper, rolcreatedb FROM pg_roles WHERE rolname = 'temporal'")
    assert role == "f|t"
