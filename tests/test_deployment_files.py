"""docker-compose.yml cannot run here (no Docker engine), so check it against the code."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from activities.providers import PROVIDERS
from config.settings import (
    AiraloSettings,
    ApiSettings,
    OrchestratorSettings,
    RebillySettings,
    StnSettings,
    WebhookSettings,
    lane_limit_variable,
)
from config.temporal_server import SERVER_VERSION, UI_SERVER_VERSION
from domain.search_attributes import dev_server_flags
from stacks.cluster.ports import TEMPORAL_SERVICES, ClusterPorts
from stacks.cluster.temporal import DYNAMIC_CONFIG, PLUGIN, SCHEMAS

ROOT = Path(__file__).parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_temporal_registers_exactly_our_search_attributes() -> None:
    command = compose()["services"]["temporal"]["command"]
    registered = {arg.split("=", 1)[1] for arg in command if arg.startswith("--search-attribute=")}
    flags = dev_server_flags()
    assert registered == {flags[i + 1] for i in range(0, len(flags), 2)}


def test_worker_is_configured_for_every_setting_without_defaults_leaking() -> None:
    env = compose()["services"]["worker"]["environment"]
    for settings in (StnSettings, RebillySettings, AiraloSettings):
        prefix = settings.model_config["env_prefix"]
        for name in settings.model_fields:
            if name != "timeout_seconds":
                assert f"{prefix}{name}".upper() in env, f"{prefix}{name} missing in compose"
    for entry in PROVIDERS:
        assert lane_limit_variable(entry.provider) in env, f"{entry.provider}'s lane limit"
    assert env["CANCEL_TASK_QUEUE"] == OrchestratorSettings().task_queue
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    for name in WebhookSettings.model_fields:
        assert f"CANCEL_WEBHOOK_{name}".upper() in env, f"CANCEL_WEBHOOK_{name} missing in compose"


def test_worker_waits_for_a_healthy_server() -> None:
    worker = compose()["services"]["worker"]
    assert worker["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert "healthcheck" in compose()["services"]["temporal"]


def test_image_contains_every_package_the_project_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert packages == copied


def test_api_serves_the_http_api_on_its_published_port_once_temporal_is_healthy() -> None:
    api = compose()["services"]["api"]
    command = api["command"]
    assert command[:3] == ["python", "-m", "starter.api"]
    host = command[command.index("--host") + 1]
    port = command[command.index("--port") + 1]
    assert host == "0.0.0.0"
    assert f"{port}:{port}" in api["ports"]
    assert api["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_api_reaches_the_workers_queue_and_no_provider_secret() -> None:
    services = compose()["services"]
    env = services["api"]["environment"]
    worker_env = services["worker"]["environment"]
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "CANCEL_TASK_QUEUE"):
        assert env[name] == worker_env[name]
    assert "CANCEL_API_KEYS" in env
    for settings in (StnSettings, RebillySettings, AiraloSettings):
        prefix = settings.model_config["env_prefix"].upper()
        assert not [name for name in env if name.startswith(prefix)], "the API needs no provider"
    api_settings = ApiSettings.model_config["env_prefix"].upper()
    assert all(
        name.removeprefix(api_settings).lower() in ApiSettings.model_fields
        for name in env
        if name.startswith(api_settings)
    )


# -- the production profile: the cluster layout of `make cluster` (tests/cluster) --------

COMPOSE_SPEC = ROOT / "tests" / "schemas" / "compose-spec.json"
TEMPORAL_TEMPLATE = ROOT / "deploy" / "temporal" / "cluster.yaml"
UI_TEMPLATE = ROOT / "deploy" / "ui" / "cluster.yaml"
PRODUCTION = {
    "postgresql",
    "temporal-schema",
    *(f"temporal-{name}" for name in TEMPORAL_SERVICES),
    "temporal-setup",
    "temporal-ui",
    "orchestrator-worker-blue",
    "orchestrator-api",
    "orchestrator-codec-server",
}
FRONTEND = f"temporal-frontend:{ClusterPorts().frontend.grpc}"


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def variables_read_by(template: Path) -> set[str]:
    """The environment variables a Go-template config reads (``env "NAME"``)."""
    return set(re.findall(r'env "([A-Z0-9_]+)"', template.read_text()))


def completed(service: dict[str, Any], dependency: str) -> bool:
    return bool(service["depends_on"][dependency]["condition"] == "service_completed_successfully")


def test_compose_file_follows_the_compose_specification() -> None:
    """The Compose Specification's own JSON schema (``tests/schemas``), both profiles."""
    schema = json.loads(COMPOSE_SPEC.read_text())
    errors = list(Draft202012Validator(schema).iter_errors(compose()))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def test_the_two_profiles_never_start_together() -> None:
    profiles = {name: set(service.get("profiles", [])) for name, service in services().items()}
    assert all(profiles.values()), "a service without a profile would join either stack"
    production = {name for name, named in profiles.items() if "production" in named}
    assert production == PRODUCTION
    assert not [name for name in production if profiles[name] != {"production"}]
    # The next release's workers join the production stack only when asked for.
    assert {name for name, named in profiles.items() if "release" in named} == {
        "orchestrator-worker-green"
    }


def test_production_temporal_runs_one_service_per_container_on_our_config() -> None:
    read = variables_read_by(TEMPORAL_TEMPLATE)
    for name in TEMPORAL_SERVICES:
        service = services()[f"temporal-{name}"]
        assert service["command"] == [name]
        assert service["image"] == f"temporalio/server:{SERVER_VERSION.removeprefix('v')}"
        assert "./deploy/temporal:/etc/temporal/cluster:ro" in service["volumes"]
        entry = " ".join(service["entrypoint"])
        assert "--root /etc/temporal --config cluster --env cluster" in entry
        assert '--service "$$0"' in entry and "TEMPORAL_BROADCAST_ADDRESS" in entry
        env = service["environment"]
        assert set(env) <= read, f"{name}: not read by the config: {set(env) - read}"
        assert env["TEMPORAL_DYNAMIC_CONFIG_FILE"] == f"/etc/temporal/cluster/{DYNAMIC_CONFIG.name}"
        assert env["TEMPORAL_FRONTEND_ADDRESS"] == FRONTEND
        assert env["TEMPORAL_POSTGRES_DSN"].startswith(
            "postgres://temporal:${TEMPORAL_POSTGRES_PASSWORD:?"
        )
        assert env["TEMPORAL_POSTGRES_DSN"].endswith("@postgresql:5432")
        assert completed(service, "temporal-schema")


def test_production_schema_job_sets_up_both_databases_as_make_cluster_does() -> None:
    job = services()["temporal-schema"]
    script = job["command"][0]
    for database, schema in SCHEMAS.items():
        assert f"--database {database} create-database" in script
        assert f"--database {database} setup-schema --version 0.0" in script
        assert f"--database {database} update-schema --schema-name {schema}" in script
    env = job["environment"]
    postgresql = services()["postgresql"]
    assert env["SQL_PLUGIN"] == PLUGIN and env["SQL_HOST"] == "postgresql"
    assert env["SQL_USER"] == postgresql["environment"]["POSTGRES_USER"] == "temporal"
    password = "${TEMPORAL_POSTGRES_PASSWORD:?"
    assert env["SQL_PASSWORD"].startswith(password)
    assert postgresql["environment"]["POSTGRES_PASSWORD"].startswith(password)
    assert job["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert "healthcheck" in postgresql


def test_production_registers_exactly_our_search_attributes() -> None:
    script = services()["temporal-setup"]["command"][0]
    registered = dict(re.findall(r"--name (\w+) --type (\w+)", script))
    flags = dev_server_flags()
    assert registered == dict(flags[i + 1].split("=") for i in range(0, len(flags), 2))
    assert "search-attribute create --namespace default" in script
    assert "namespace create --namespace default" in script
    assert services()["temporal-setup"]["environment"]["TEMPORAL_ADDRESS"] == FRONTEND


def test_production_workers_reach_the_frontend_with_every_setting() -> None:
    worker = services()["orchestrator-worker-blue"]
    env = worker["environment"]
    for settings in (StnSettings, RebillySettings, AiraloSettings):
        prefix = settings.model_config["env_prefix"]
        for name in settings.model_fields:
            if name != "timeout_seconds":
                assert f"{prefix}{name}".upper() in env, f"{prefix}{name} missing in production"
    for entry in PROVIDERS:
        assert lane_limit_variable(entry.provider) in env, f"{entry.provider}'s lane limit"
    assert env["TEMPORAL_ADDRESS"] == FRONTEND
    assert env["CANCEL_TASK_QUEUE"] == OrchestratorSettings().task_queue
    for name in WebhookSettings.model_fields:
        assert f"CANCEL_WEBHOOK_{name}".upper() in env, f"CANCEL_WEBHOOK_{name} in production"
    assert env["CANCEL_ENVIRONMENT"] == "production"
    assert "CANCEL_WORKFLOW_ID_KEY" in env and "CANCEL_CODEC_KEYS" in env
    assert worker["deploy"]["replicas"] == "${CLUSTER_WORKERS:-2}"
    assert "ports" not in worker, "replicas cannot share a published port"
    assert completed(worker, "temporal-setup")


def test_production_api_and_ui_reach_the_same_frontend() -> None:
    api, worker = services()["orchestrator-api"], services()["orchestrator-worker-blue"]
    env = api["environment"]
    for name in (
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "CANCEL_TASK_QUEUE",
        "CANCEL_WORKFLOW_ID_KEY",
    ):
        assert env[name] == worker["environment"][name]
    api_prefix = ApiSettings.model_config["env_prefix"].upper()
    assert all(
        name.removeprefix(api_prefix).lower() in ApiSettings.model_fields
        for name in env
        if name.startswith(api_prefix)
    )
    for settings in (StnSettings, RebillySettings, AiraloSettings):
        prefix = settings.model_config["env_prefix"].upper()
        assert not [name for name in env if name.startswith(prefix)], "the API needs no provider"
    assert completed(api, "temporal-setup")
    ui = services()["temporal-ui"]
    assert set(ui["environment"]) <= variables_read_by(UI_TEMPLATE)
    assert ui["environment"]["TEMPORAL_ADDRESS"] == FRONTEND
    assert ui["image"] == f"temporalio/ui:{UI_SERVER_VERSION.removeprefix('v')}"
    codec = services()["orchestrator-codec-server"]
    port = codec["command"][codec["command"].index("--port") + 1]
    assert ui["environment"]["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{port}"
    origins = json.loads(codec["environment"]["CANCEL_CODEC_SERVER_ALLOWED_ORIGINS"])
    assert ui["environment"]["TEMPORAL_CORS_ORIGINS"] in origins


def test_production_releases_blue_green_each_colour_its_own_build_id() -> None:
    """README "Releases": two colours of one worker, each built with its release's build
    id (the Dockerfile turns BUILD_ID into CANCEL_DEPLOYMENT_BUILD_ID), never one service
    restarted in place."""
    blue, green = services()["orchestrator-worker-blue"], services()["orchestrator-worker-green"]
    assert blue["environment"] == green["environment"]
    assert blue["command"] == green["command"] == ["python", "worker.py"]
    assert blue["build"]["args"] == {"BUILD_ID": "${BLUE_BUILD_ID:-}"}
    assert green["build"]["args"] == {"BUILD_ID": "${GREEN_BUILD_ID:-}"}
    assert blue["image"] != green["image"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BUILD_ID=" in dockerfile
    assert "ENV CANCEL_DEPLOYMENT_BUILD_ID=${BUILD_ID}" in dockerfile
    assert "CANCEL_DEPLOYMENT_BUILD_ID" not in blue["environment"], "the image carries it"
