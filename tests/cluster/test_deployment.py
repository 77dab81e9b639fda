"""The deployment files, run for real: the server config as Temporal Server renders it,
and the production profile's two jobs (``docker-compose.yml``) executed here with the
same tools the admin-tools image carries (Temporal's ``sql`` tool of the server's
version, the Temporal CLI). ``tests/test_deployment_files.py`` checks their shape.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from config.temporal_cli import ensure_temporal_cli
from domain import search_attributes as sa
from stacks.cluster.postgres import Postgres
from stacks.cluster.stack import ClusterMismatch, ClusterStack
from stacks.cluster.temporal import CONFIG_DIR, CONFIG_ENV, SCHEMAS
from stacks.ports import free_port
from stacks.service import ROOT

pytestmark = pytest.mark.cluster


def render(cluster: ClusterStack, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(cluster.binaries.server),
            "--root",
            str(ROOT),
            "--config",
            str(CONFIG_DIR.relative_to(ROOT)),
            "--env",
            CONFIG_ENV,
            "render-config",
        ],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_server_renders_our_config_from_the_environment(cluster: ClusterStack) -> None:
    rendered = render(
        cluster,
        TEMPORAL_POSTGRES_DSN="postgres://someone:s3cret@db.internal:6543",
        TEMPORAL_NUM_HISTORY_SHARDS="512",
        TEMPORAL_HISTORY_PORT="17234",
        TEMPORAL_BROADCAST_ADDRESS="10.0.0.7",
    )
    assert rendered.returncode == 0, rendered.stderr
    config: dict[str, Any] = yaml.safe_load(rendered.stdout)

    persistence = config["persistence"]
    assert persistence["numHistoryShards"] == 512
    stores = persistence["datastores"]
    default = stores[persistence["defaultStore"]]["sql"]
    visibility = stores[persistence["visibilityStore"]]["sql"]
    assert [default["databaseName"], visibility["databaseName"]] == list(SCHEMAS)
    for store in (default, visibility):
        assert store["pluginName"] == "postgres12"
        assert store["connectAddr"] == "db.internal:6543"
        assert store["user"] == "someone"
        assert store["password"] == "******"  # set, and masked by render-config itself
    assert config["services"]["history"]["rpc"]["grpcPort"] == 17234
    assert config["services"]["frontend"]["rpc"]["grpcPort"] == 7233
    assert config["global"]["membership"]["broadcastAddress"] == "10.0.0.7"
    active = config["clusterMetadata"]["clusterInformation"]["active"]
    assert active["rpcAddress"] == "10.0.0.7:7233"


def test_without_a_dsn_the_server_says_what_to_set(cluster: ClusterStack) -> None:
    rendered = render(cluster)
    assert rendered.returncode != 0
    said = rendered.stdout + rendered.stderr
    assert "set TEMPORAL_POSTGRES_DSN=postgres://user:password@host:port" in said


def test_a_directory_set_up_with_another_shard_count_is_refused(
    cluster: ClusterStack, tmp_path: Path
) -> None:
    """Temporal cannot change numHistoryShards on a database: said before anything starts."""
    directory = tmp_path / "cluster"
    first = ClusterStack(
        directory, cluster.binaries, cluster.postgres_binaries, num_history_shards=4
    )
    first._check_shards(created=True)
    again = ClusterStack(
        directory, cluster.binaries, cluster.postgres_binaries, num_history_shards=8
    )

    with pytest.raises(ClusterMismatch, match="set up with 4 history shards"):
        again._check_shards(created=False)
    assert again.login.password == first.login.password  # generated once, then kept


def compose_job(name: str) -> tuple[str, dict[str, str]]:
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"][name]
    assert service["entrypoint"] == ["sh", "-ec"]
    # Compose turns `$$` into `$`; the scripts use no other interpolation.
    return service["command"][0].replace("$$", "$"), service["environment"]


def tools_on_path(directory: Path, **links: Path) -> str:
    directory.mkdir()
    for name, target in links.items():
        (directory / name.replace("_", "-")).symlink_to(target)
    return f"{directory}:{os.environ['PATH']}"


def test_the_production_schema_job_sets_up_an_empty_postgresql(
    cluster: ClusterStack, tmp_path: Path, reachable_dir: Path
) -> None:
    """The job's script, as the admin-tools container runs it, on a new PostgreSQL."""
    postgres = Postgres(cluster.postgres_binaries, reachable_dir / "postgres", free_port())
    postgres.init()
    postgres.start()
    try:
        postgres.ensure_role("temporal", "job-password")
        script, env = compose_job("temporal-schema")
        env = {
            **env,
            "SQL_HOST": "127.0.0.1",
            "SQL_PORT": str(postgres.port),
            "SQL_PASSWORD": "job-password",
            "PATH": tools_on_path(tmp_path / "bin", temporal_sql_tool=cluster.binaries.sql),
        }
        for _run in range(2):  # it runs on every `docker compose up`: idempotent
            job = subprocess.run(
                ["sh", "-ec", script], env=env, capture_output=True, text=True, check=False
            )
            assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
        for database in SCHEMAS:
            assert postgres.has_database(database)
            version = postgres.psql("SELECT curr_version FROM schema_version", database)
            assert version and version != "0.0", f"{database} at schema {version!r}"
    finally:
        postgres.stop()


async def test_the_production_setup_job_registers_against_the_cluster(
    cluster: ClusterStack, cluster_client: Client, tmp_path: Path
) -> None:
    """The namespace and search-attribute job with the Temporal CLI, on the running
    cluster (it found both registered already: the job must take that in its stride)."""
    script, env = compose_job("temporal-setup")
    env = {
        **env,
        "TEMPORAL_ADDRESS": cluster.address,
        "PATH": tools_on_path(tmp_path / "bin", temporal=ensure_temporal_cli()),
        "HOME": str(tmp_path),
    }
    job = await asyncio.to_thread(
        subprocess.run,
        ["sh", "-ec", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert job.returncode == 0, job.stdout[-2000:] + job.stderr[-2000:]
    listed = await cluster_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert {key.name: int(key.indexed_value_type) for key in sa.ALL}.items() <= dict(
        listed.custom_attributes
    ).items()
