"""The AES-GCM payload codec: unit tests, and key rotation over a real saga's history.

The rotation test runs a real LineTermination (real dev server, worker, sandbox) with
key A current, then proves that a converter holding {A, B} with B current decodes and
replays that whole history, and that what it writes from then on carries B.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from activities.providers import PROVIDERS
from config import settings as settings_module
from config.codec import (
    ENCODING,
    KEY_ID_METADATA,
    CodecConfigurationError,
    CodecError,
    EncryptionCodec,
    UnknownKeyId,
    dev_key,
    load_codec,
    resolve_keys,
)
from config.deployment import DeploymentSettings
from config.settings import CodecSettings, Environment, OrchestratorSettings, lane_limit_variable
from config.temporal import converter_with, data_converter
from domain.common import SagaKind
from domain.stn import TerminationRequest
from starter import sagas
from tests.conftest import TEST_CODEC_CURRENT_KEY_ID, TestSandbox, provider_settings_for
from tests.helpers import wait_for_phase
from worker import WORKFLOWS, build_worker, provider_clients

KEY_A = os.urandom(32)
KEY_B = os.urandom(32)


def codec(keys: dict[str, bytes], current: str) -> EncryptionCodec:
    return EncryptionCodec(keys, current)


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


# -- the codec itself ------------------------------------------------------------------


async def test_round_trip_restores_every_payload_exactly() -> None:
    only_a = codec({"A": KEY_A}, "A")
    originals = [json_payload({"phoneNumber": "06-12345678"}), json_payload([1, 2, 3])]
    originals[1].metadata["messageType"] = b"custom"

    encoded = await only_a.encode(originals)
    decoded = await only_a.decode(encoded)

    assert decoded == originals
    for payload in encoded:
        assert dict(payload.metadata) == {"encoding": ENCODING, KEY_ID_METADATA: b"A"}
        assert b"12345678" not in payload.data and b"json/plain" not in payload.data


async def test_each_payload_gets_its_own_nonce() -> None:
    only_a = codec({"A": KEY_A}, "A")
    same = json_payload({"phoneNumber": "06-12345678"})

    first, second = await only_a.encode([same, same])

    assert first.data[:12] != second.data[:12]
    assert first.data != second.data
    assert await only_a.decode([first, second]) == [same, same]


async def test_tampered_ciphertext_is_refused() -> None:
    only_a = codec({"A": KEY_A}, "A")
    [sealed] = await only_a.encode([json_payload({"customerId": "C-1"})])
    for position in (0, 12, len(sealed.data) - 1):  # nonce, ciphertext, tag
        tampered = Payload()
        tampered.CopyFrom(sealed)
        data = bytearray(sealed.data)
        data[position] ^= 0x01
        tampered.data = bytes(data)

        with pytest.raises(CodecError, match=r"key id 'A'\) failed authentication"):
            await only_a.decode([tampered])


async def test_truncated_payload_is_refused() -> None:
    only_a = codec({"A": KEY_A}, "A")
    [sealed] = await only_a.encode([json_payload(1)])
    sealed.data = sealed.data[:20]

    with pytest.raises(CodecError, match="truncated"):
        await only_a.decode([sealed])


async def test_unknown_key_id_names_the_id_and_never_a_key() -> None:
    [sealed] = await codec({"A": KEY_A}, "A").encode([json_payload(1)])
    only_b = codec({"B": KEY_B}, "B")

    with pytest.raises(UnknownKeyId) as refused:
        await only_b.decode([sealed])

    message = str(refused.value)
    assert "'A'" in message and "CANCEL_CODEC_KEYS" in message
    for key in (KEY_A, KEY_B):
        assert b64(key) not in message and key.hex() not in message


async def test_payload_without_the_encrypted_encoding_passes_through_unchanged() -> None:
    legacy = [json_payload({"phoneNumber": "06-12345678"}), Payload(metadata={}, data=b"")]
    legacy[1].metadata["encoding"] = b"binary/null"

    assert await codec({"A": KEY_A}, "A").decode(legacy) == legacy


async def test_rotation_old_payloads_decrypt_new_ones_use_the_current_key() -> None:
    written_under_a = await codec({"A": KEY_A}, "A").encode([json_payload("before")])
    rotated = codec({"A": KEY_A, "B": KEY_B}, "B")

    assert await rotated.decode(written_under_a) == [json_payload("before")]
    [fresh] = await rotated.encode([json_payload("after")])
    assert fresh.metadata[KEY_ID_METADATA] == b"B"
    # Once A is dropped, B still reads what B wrote, and A's payloads are refused by id.
    only_b = codec({"B": KEY_B}, "B")
    assert await only_b.decode([fresh]) == [json_payload("after")]
    with pytest.raises(UnknownKeyId, match="'A'"):
        await only_b.decode(written_under_a)


def test_codec_refuses_a_current_key_it_does_not_hold_and_short_keys() -> None:
    with pytest.raises(CodecConfigurationError, match="'B'"):
        EncryptionCodec({"A": KEY_A}, "B")
    with pytest.raises(CodecConfigurationError, match="'A' has 16 bytes"):
        EncryptionCodec({"A": KEY_A[:16]}, "A")


# -- the one converter -----------------------------------------------------------------


class Sample(BaseModel):
    phone_number: str


async def test_data_converter_is_pydantic_plus_encryption_and_built_once() -> None:
    converter = data_converter()

    assert converter is data_converter()  # cached: connect() asks on every call
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert converter.payload_codec.current_key_id == TEST_CODEC_CURRENT_KEY_ID
    [encoded] = await converter.encode([Sample(phone_number="06-12345678")])
    assert encoded.metadata["encoding"] == ENCODING
    assert b"12345678" not in encoded.SerializeToString()
    [decoded] = await converter.decode([encoded], [Sample])
    assert decoded == Sample(phone_number="06-12345678")
    # Without the codec the same value is plain pydantic JSON (what legacy runs hold).
    [plain] = await converter_with(None).encode([Sample(phone_number="06-12345678")])
    assert plain.metadata["encoding"] == b"json/plain"
    assert await converter.decode([plain], [Sample]) == [Sample(phone_number="06-12345678")]


# -- keys from settings ----------------------------------------------------------------


@pytest.fixture
def no_keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tests/conftest.py's keys: settings see only what the test gives them."""
    monkeypatch.delenv("CANCEL_CODEC_KEYS")
    monkeypatch.delenv("CANCEL_CODEC_CURRENT_KEY_ID")


def test_settings_read_keys_and_the_current_id_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "CANCEL_CODEC_KEYS", json.dumps({"2026-05": b64(KEY_A), "2026-11": b64(KEY_B)})
    )
    monkeypatch.setenv("CANCEL_CODEC_CURRENT_KEY_ID", "2026-11")

    loaded = load_codec()

    assert loaded.current_key_id == "2026-11" and loaded.key_ids == ["2026-05", "2026-11"]
    assert "2026" not in repr(CodecSettings().keys["2026-11"])  # SecretStr hides the value


@pytest.mark.parametrize(
    ("keys", "current", "expected"),
    [
        ({"k1": b64(b"short")}, "k1", "key 'k1' must be the base64 of exactly 32 bytes"),
        ({"k1": "not base64!!"}, "k1", "key 'k1' is not valid base64"),
        ({"k1": b64(KEY_A)}, "k2", "CANCEL_CODEC_CURRENT_KEY_ID 'k2' is not one of"),
        ({"k1": b64(KEY_A), "k2": b64(KEY_B)}, None, "CANCEL_CODEC_CURRENT_KEY_ID must name"),
        ({}, "k1", "CANCEL_CODEC_KEYS is empty"),
        ({"bad id": b64(KEY_A)}, "bad id", "key id 'bad id' must be"),
    ],
)
def test_broken_key_settings_name_the_key_id_and_never_echo_a_key(
    no_keys_in_env: None, keys: dict[str, str], current: str | None, expected: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        CodecSettings.model_validate({"keys": keys, "current_key_id": current})

    message = str(refused.value)
    assert expected in message
    for value in keys.values():
        assert value not in message


def test_one_key_needs_no_current_id(no_keys_in_env: None) -> None:
    settings = CodecSettings.model_validate({"keys": {"only": b64(KEY_A)}})

    assert resolve_keys(settings, Environment.PRODUCTION).current_key_id == "only"


def test_production_without_a_key_is_a_start_up_error(no_keys_in_env: None, tmp_path: Path) -> None:
    settings = CodecSettings(dev_key_file=tmp_path / "key.json")

    with pytest.raises(CodecConfigurationError) as refused:
        load_codec(settings, Environment.PRODUCTION)

    message = str(refused.value)
    assert "CANCEL_CODEC_KEYS" in message and "CANCEL_CODEC_CURRENT_KEY_ID" in message
    assert not (tmp_path / "key.json").exists()


def test_environment_setting_reads_cancel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OrchestratorSettings().environment == Environment.DEVELOPMENT
    monkeypatch.setenv("CANCEL_ENVIRONMENT", "production")
    assert OrchestratorSettings().environment == Environment.PRODUCTION


def test_development_without_a_key_generates_one_shared_private_key_file(
    no_keys_in_env: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "nested" / "dev-codec-key.json"
    settings = CodecSettings(dev_key_file=path)

    with caplog.at_level(logging.WARNING, logger="config.codec"):
        first = load_codec(settings, Environment.DEVELOPMENT)
    second = load_codec(settings, Environment.DEVELOPMENT)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.key_ids == second.key_ids and first.key_ids[0].startswith("dev-")
    warning = caplog.text
    assert f"using a generated local development key at {path}; not for production" in warning
    stored = json.loads(path.read_text())["key"]
    assert stored not in warning
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no candidate left behind


async def test_processes_starting_together_agree_on_one_dev_key(tmp_path: Path) -> None:
    path = tmp_path / "dev-codec-key.json"
    results: list[tuple[str, bytes]] = []
    start = threading.Barrier(8)

    def first_start() -> None:
        start.wait()
        results.append(dev_key(path))

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 8 and len(set(results)) == 1


def test_a_broken_dev_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "dev-codec-key.json"
    path.write_text('{"keyId": "dev-x", "key": "c2hvcnQ="}')

    with pytest.raises(CodecConfigurationError, match="not 32 bytes"):
        dev_key(path)
    path.write_text("{broken")
    with pytest.raises(CodecConfigurationError, match="unreadable"):
        dev_key(path)
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    with pytest.raises(CodecConfigurationError, match="cannot create the development key file"):
        dev_key(not_a_directory / "dev-codec-key.json")


# -- rotation over a whole real history ------------------------------------------------


def client_with(client: Client, converter: DataConverter) -> Client:
    """The same connection to the test server, through another data converter."""
    config = client.config()
    config["data_converter"] = converter
    return Client(**config)


@pytest.fixture
async def client_under_key_a(client: Client) -> Client:
    """The test server, through a converter whose only (so current) key is A."""
    return client_with(client, converter_with(codec({"A": KEY_A}, "A")))


@pytest.fixture
async def worker_under_key_a(
    client_under_key_a: Client, sandbox: TestSandbox, task_queue: str
) -> AsyncIterator[None]:
    async with (
        provider_clients(provider_settings_for(sandbox)) as clients,
        build_worker(client_under_key_a, task_queue, clients),
    ):
        yield


async def test_history_written_under_key_a_decodes_and_replays_once_b_is_current(
    client_under_key_a: Client,
    worker_under_key_a: None,
    settings: OrchestratorSettings,
) -> None:
    number = "06" + str(uuid.uuid4().int)[:8]
    started = await sagas.start(
        client_under_key_a,
        SagaKind.LINE_TERMINATION,
        TerminationRequest.model_validate({"phoneNumber": number}),
        settings,
    )
    handle = client_under_key_a.get_workflow_handle(started.workflow_id)
    assert (await handle.result())["phase"] == "COMPLETED"
    history = await handle.fetch_history()

    first = history.events[0]
    assert first.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    [raw_input] = first.workflow_execution_started_event_attributes.input.payloads
    assert raw_input.metadata[KEY_ID_METADATA] == b"A"
    assert number[2:].encode() not in history.events[0].SerializeToString()

    rotated = converter_with(codec({"A": KEY_A, "B": KEY_B}, "B"))
    [request] = await rotated.decode([raw_input], [TerminationRequest])
    assert request.phone_number == f"06-{number[2:]}"
    replayed = await Replayer(workflows=list(WORKFLOWS), data_converter=rotated).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert replayed.replay_failure is None
    [new] = await rotated.encode([request])
    assert new.metadata[KEY_ID_METADATA] == b"B"

    # The control: without A the same history cannot even be read.
    only_b = converter_with(codec({"B": KEY_B}, "B"))
    failed = await Replayer(workflows=list(WORKFLOWS), data_converter=only_b).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert failed.replay_failure is not None


async def test_a_saga_started_before_encryption_finishes_under_the_codec(
    client: Client, sandbox: TestSandbox, settings: OrchestratorSettings
) -> None:
    """The roll-out: a saga a codec-less release started (plain JSON input in its
    history) is picked up by the encrypting worker and completes; what that worker
    writes from then on is encrypted."""
    plain = client_with(client, converter_with(None))
    wish = datetime.now(UTC) + timedelta(seconds=4)
    async with provider_clients(provider_settings_for(sandbox)) as clients:
        async with build_worker(plain, settings.task_queue, clients):
            started = await sagas.start(
                plain,
                SagaKind.LINE_TERMINATION,
                TerminationRequest(subscription_id=f"SUB-{uuid.uuid4().hex[:10]}", wish_date=wish),
                settings,
            )
            await wait_for_phase(plain, started.workflow_id, "WAITING")
        # The old release is gone; the encrypting worker takes over the waiting saga.
        async with build_worker(client, settings.task_queue, clients):
            final = await client.get_workflow_handle(started.workflow_id).result()
    assert final["phase"] == "COMPLETED"

    history = await plain.get_workflow_handle(started.workflow_id).fetch_history()
    [raw_input] = history.events[0].workflow_execution_started_event_attributes.input.payloads
    assert raw_input.metadata["encoding"] == b"json/plain"
    [*_, last] = history.events
    assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    [raw_result] = last.workflow_execution_completed_event_attributes.result.payloads
    assert raw_result.metadata["encoding"] == ENCODING


# -- .env.example ------------------------------------------------------------------------


def test_env_example_lists_every_setting_with_a_comment() -> None:
    lines = (Path(__file__).parent.parent / ".env.example").read_text().splitlines()
    listed = {}
    for index, line in enumerate(lines):
        name, equals, _ = line.partition("=")
        if equals and not line.startswith("#"):
            assert lines[index - 1].startswith("# "), f"{name} has no comment above it"
            listed[name] = line
    expected = {
        f"{settings.model_config['env_prefix']}{field}".upper()
        for settings in vars(settings_module).values()
        if isinstance(settings, type)
        and issubclass(settings, BaseSettings)
        and settings is not BaseSettings
        for field in settings.model_fields
    }
    # Each provider lane's limit, read by name (config.settings.lane_limits).
    expected |= {lane_limit_variable(entry.provider) for entry in PROVIDERS}
    # The worker's deployment version (README "Releases").
    prefix = DeploymentSettings.model_config["env_prefix"]
    expected |= {f"{prefix}{field}".upper() for field in DeploymentSettings.model_fields}

    assert set(listed) == expected
    assert "CANCEL_CODEC_KEYS" in expected and "CANCEL_CODEC_SERVER_TOKENS" in expected
