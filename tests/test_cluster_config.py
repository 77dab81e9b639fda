"""``make cluster``'s pieces that need no cluster: ports, the DSN, the binary resolver.

The cluster itself is proven in ``tests/cluster`` (``make test-cluster``).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from config import temporal_server
from config.temporal_server import (
    SERVER,
    SQL_TOOL,
    UI_SERVER,
    TemporalServerUnavailable,
    ensure_binary,
    find_binary,
)
from stacks.cluster import postgres
from stacks.cluster.ports import (
    MEMBERSHIP_PORT_CEILING,
    TEMPORAL_SERVICES,
    ClusterPorts,
    ServicePorts,
)
from stacks.cluster.temporal import PostgresLogin

TEMPLATE = Path(__file__).parent.parent / "deploy" / "temporal" / "cluster.yaml"


def template_variables() -> set[str]:
    return set(re.findall(r'env "([A-Z0-9_]+)"', TEMPLATE.read_text()))


def test_membership_ports_must_fit_postgresqls_smallint() -> None:
    ServicePorts(7233, MEMBERSHIP_PORT_CEILING - 1)
    with pytest.raises(ValueError, match="smallint"):
        ServicePorts(7233, MEMBERSHIP_PORT_CEILING)


def test_free_ports_are_distinct_and_membership_ports_stay_low() -> None:
    ports = ClusterPorts.free()
    numbers = [port for port, _name in ports.listening()]
    assert len(numbers) == len(set(numbers))
    assert all(ports.service(s).membership < MEMBERSHIP_PORT_CEILING for s in TEMPORAL_SERVICES)


def test_ports_come_from_the_variables_the_server_config_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEMPORAL_HISTORY_PORT", "17234")
    monkeypatch.setenv("TEMPORAL_MATCHING_MEMBERSHIP_PORT", "16935")
    monkeypatch.setenv("TEMPORAL_FRONTEND_HTTP_PORT", "17243")

    ports = ClusterPorts.from_env()
    env = ports.temporal_env()

    assert (ports.history.grpc, ports.matching.membership) == (17234, 16935)
    assert ports.frontend == ServicePorts(7233, 6933, 17243)
    assert env["TEMPORAL_HISTORY_PORT"] == "17234"
    assert set(env) <= template_variables(), set(env) - template_variables()
    assert len(env) == 2 * len(TEMPORAL_SERVICES) + 1


def test_the_dsn_refuses_a_password_the_template_cannot_carry() -> None:
    login = PostgresLogin("127.0.0.1", 5433, "temporal", "0123abcd")
    assert login.dsn == "postgres://temporal:0123abcd@127.0.0.1:5433"
    with pytest.raises(ValueError, match="URL-safe"):
        _ = PostgresLogin("127.0.0.1", 5433, "temporal", "p@ss:word").dsn


# -- the binary resolver (config/temporal_server.py) -----------------------------------


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for binary in (SERVER, SQL_TOOL, UI_SERVER):
        monkeypatch.delenv(binary.env, raising=False)
    return tmp_path / "cancellation-orchestrator"


def test_server_and_schema_tool_share_a_cache_the_ui_server_does_not(empty_cache: Path) -> None:
    assert SERVER.cached() == empty_cache / "temporal-server-v1.29.1" / "server"
    assert SQL_TOOL.cached() == empty_cache / "temporal-server-v1.29.1" / "sql"
    # Both modules build a binary called `server`: one directory each.
    assert UI_SERVER.cached() == empty_cache / "temporal-ui-server-v2.42.1" / "server"
    assert SERVER.spec == "go.temporal.io/server/cmd/server@v1.29.1"
    assert UI_SERVER.spec == "github.com/temporalio/ui-server/v2/cmd/server@v2.42.1"


def test_a_cached_build_is_used_without_go(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(temporal_server, "find_go", lambda: None)
    SQL_TOOL.cache_dir().mkdir(parents=True)
    SQL_TOOL.cached().write_text("#!/bin/sh\n")

    assert find_binary(SQL_TOOL) == SQL_TOOL.cached()
    assert ensure_binary(SQL_TOOL) == SQL_TOOL.cached()


def test_without_go_or_a_build_the_error_says_what_to_do(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(temporal_server, "find_go", lambda: None)

    with pytest.raises(TemporalServerUnavailable) as error:
        ensure_binary(SERVER)

    assert "go install go.temporal.io/server/cmd/server@v1.29.1" in str(error.value)
    assert "TEMPORAL_SERVER=" in str(error.value)


def test_an_explicit_binary_must_be_executable(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "temporal-server"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("TEMPORAL_SERVER", str(binary))
    with pytest.raises(TemporalServerUnavailable, match="not an executable"):
        find_binary(SERVER)

    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    assert find_binary(SERVER) == binary
    assert os.access(binary, os.X_OK)


def test_no_postgresql_installed_is_found_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes the cluster suite skip (and ``make test-cluster`` build nothing)."""
    monkeypatch.delenv("POSTGRES_BINDIR", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("glob.glob", lambda pattern: [])

    assert postgres.find_postgres() is None
    with pytest.raises(postgres.PostgresUnavailable, match="apt-get install postgresql"):
        postgres.require_postgres()


def test_an_explicit_postgresql_directory_must_hold_the_programs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("POSTGRES_BINDIR", str(tmp_path))
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr("glob.glob", lambda pattern: [])
    with pytest.raises(postgres.PostgresUnavailable, match="no initdb"):
        postgres.find_postgres()
    for program in ("initdb", "pg_ctl", "postgres", "psql"):
        (tmp_path / program).write_text("")
    assert postgres.find_postgres() == postgres.PostgresBinaries(tmp_path)
