"""docker-compose.yml cannot run here (no Docker engine), so check it against the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from config.settings import (
    AiraloSettings,
    ApiSettings,
    OrchestratorSettings,
    RebillySettings,
    StnSettings,
)
from domain.search_attributes import dev_server_flags

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
    assert env["CANCEL_TASK_QUEUE"] == OrchestratorSettings().task_queue
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"


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
