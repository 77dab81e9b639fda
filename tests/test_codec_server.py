"""The codec server over real HTTP, against the history of a real saga.

A LineTermination with a phone number runs on the real dev server, worker and
sandbox; its history, fetched by a client *without* keys, is what the Temporal
server holds: encrypted. The codec server (uvicorn on a free port) turns those very
payloads back into clear for a caller with a token or a signed-in browser, and for
the real ``temporal`` CLI (``--codec-endpoint``/``--codec-auth``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import History
from temporalio.client import Client

from config.codec import ENCODING, KEY_ID_METADATA, EncryptionCodec, load_codec
from config.settings import CodecServerSettings, OrchestratorSettings
from config.temporal import converter_with
from config.temporal_cli import ensure_temporal_cli
from domain.common import SagaKind
from domain.stn import TerminationRequest
from stacks import banner as make_run
from stacks.devstack import dev_server
from stacks.environment import Role, Wiring, environment
from starter import sagas
from starter.codec_server import create_app
from starter.codec_server.credentials import SESSION_COOKIE, Credentials
from tests.conftest import TEST_CODEC_CURRENT_KEY_ID
from tests.helpers import eventually_sync
from tests.test_codec import client_with
from worker import ProductWorkers

ROOT = Path(__file__).parent.parent
TOKEN = "codec-test-token-" + uuid.uuid4().hex
UI_ORIGIN = "http://127.0.0.1:8233"
ENCRYPTED_B64 = base64.b64encode(ENCODING).decode()  # how proto-JSON shows the encoding
STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServedApp:
    """An ASGI app served by uvicorn in a thread on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self._thread.start()

        def serving() -> None:
            assert self._thread.is_alive(), "the codec server thread died"
            assert self._server.started, "not serving yet"

        eventually_sync(serving, within=STARTUP_SECONDS, interval=0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def codec_under_test() -> EncryptionCodec:
    return load_codec()  # the keys tests/conftest.py put in the environment


@pytest.fixture(scope="module")
def codec_server() -> Iterator[str]:
    settings = CodecServerSettings(
        tokens=[SecretStr(TOKEN)], allowed_origins=[UI_ORIGIN], max_body_bytes=64 * 1024
    )
    with ServedApp(create_app(settings, codec_under_test())) as served:
        yield served.base_url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Namespace": "default"}


def as_json(payloads: Any) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=list(payloads)))


def data_of(answer: dict[str, Any]) -> list[Any]:
    """The JSON values inside a ``/decode`` answer's payloads."""
    return [json.loads(base64.b64decode(p["data"])) for p in answer["payloads"]]


@pytest.fixture
def phone_digits() -> str:
    return str(uuid.uuid4().int)[:8]


@pytest.fixture
async def saga_history(
    client: Client,
    worker: ProductWorkers,
    settings: OrchestratorSettings,
    phone_digits: str,
    uid: str,
) -> tuple[str, History]:
    """A LineTermination for 06<digits> that ran to the end; its history as the server
    holds it, read by a client without keys."""
    request = TerminationRequest.model_validate(
        {"phoneNumber": f"06{phone_digits}", "customerId": f"C-{uid}"}
    )
    # Started as the API starts a delivery, so the run has a memo too.
    delivery = sagas.Delivery(key=uuid.uuid4().hex * 2, request_digest=uuid.uuid4().hex * 2)
    started = await sagas.start(
        client, SagaKind.LINE_TERMINATION, request, settings, delivery=delivery
    )
    assert (await client.get_workflow_handle(started.workflow_id).result())["phase"] == "COMPLETED"
    # The redelivery is recognised: the encrypted memo reads back through the codec.
    again = await sagas.start(
        client, SagaKind.LINE_TERMINATION, request, settings, delivery=delivery
    )
    assert again.duplicate_delivery and again.run_id == started.run_id
    keyless = client_with(client, converter_with(None))
    history = await keyless.get_workflow_handle(started.workflow_id).fetch_history()
    return started.workflow_id, History(events=history.events)


def started_input(history: History) -> list[Payload]:
    return list(history.events[0].workflow_execution_started_event_attributes.input.payloads)


# -- at rest ---------------------------------------------------------------------------


async def test_the_server_holds_the_input_encrypted_and_no_phone_number(
    saga_history: tuple[str, History], phone_digits: str, uid: str
) -> None:
    _, history = saga_history
    [payload] = started_input(history)
    raw = history.SerializeToString()

    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == TEST_CODEC_CURRENT_KEY_ID.encode()
    assert phone_digits.encode() not in raw  # nowhere: input, results, queries, summaries
    assert f"C-{uid}".encode() not in payload.SerializeToString()
    started = history.events[0].workflow_execution_started_event_attributes
    assert started.memo.fields  # the delivery's key and request digest
    for field, value in started.memo.fields.items():
        assert value.metadata["encoding"] == ENCODING, field
    summary = history.events[0].user_metadata.summary
    assert summary.metadata["encoding"] == ENCODING  # "Terminate … for customer C-…"


# -- /decode and /encode ---------------------------------------------------------------


async def test_decode_with_the_token_returns_the_input_in_clear(
    codec_server: str,
    http: httpx.AsyncClient,
    saga_history: tuple[str, History],
    phone_digits: str,
    uid: str,
) -> None:
    _, history = saga_history

    answer = await http.post(
        f"{codec_server}/decode", json=as_json(started_input(history)), headers=bearer()
    )

    assert answer.status_code == 200, answer.text
    [request] = data_of(answer.json())
    assert request["phoneNumber"] == f"06-{phone_digits}"
    assert request["customerId"] == f"C-{uid}"
    metadata = answer.json()["payloads"][0]["metadata"]
    assert base64.b64decode(metadata["encoding"]) == b"json/plain"


async def test_decode_without_or_with_a_wrong_token_is_401_and_says_nothing_secret(
    codec_server: str, http: httpx.AsyncClient, saga_history: tuple[str, History]
) -> None:
    body = as_json(started_input(saga_history[1]))
    refusals = [
        await http.post(f"{codec_server}/decode", json=body),
        await http.post(f"{codec_server}/decode", json=body, headers=bearer("wrong-" + TOKEN)),
        await http.post(f"{codec_server}/decode", json=body, headers=bearer(TOKEN[:-1])),
        await http.post(
            f"{codec_server}/decode", json=body, headers={"Authorization": f"Basic {TOKEN}"}
        ),
        await http.post(f"{codec_server}/encode", json=body),
    ]

    for answer in refusals:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in answer.text and TOKEN[:12] not in answer.text
        assert "payloads" not in answer.json()


async def test_encode_then_decode_round_trips_with_the_current_key(
    codec_server: str, http: httpx.AsyncClient
) -> None:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"reason": "moving abroad"}')

    encoded = await http.post(f"{codec_server}/encode", json=as_json([plain]), headers=bearer())
    assert encoded.status_code == 200
    [sealed] = encoded.json()["payloads"]
    assert sealed["metadata"]["encoding"] == ENCRYPTED_B64
    assert base64.b64decode(sealed["metadata"][KEY_ID_METADATA]).decode() == (
        TEST_CODEC_CURRENT_KEY_ID
    )
    assert b"moving abroad" not in base64.b64decode(sealed["data"])
    decoded = await http.post(f"{codec_server}/decode", json=encoded.json(), headers=bearer())
    assert data_of(decoded.json()) == [{"reason": "moving abroad"}]


async def test_broken_bodies_and_payloads_are_refused_with_the_reason(
    codec_server: str, http: httpx.AsyncClient
) -> None:
    [sealed] = await codec_under_test().encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b"1")]
    )
    tampered = bytearray(sealed.data)
    tampered[-1] ^= 1
    sealed.data = bytes(tampered)
    foreign = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"retired-2020"}, data=b"x")

    not_json = await http.post(f"{codec_server}/decode", content=b"{", headers=bearer())
    altered = await http.post(f"{codec_server}/decode", json=as_json([sealed]), headers=bearer())
    unknown = await http.post(f"{codec_server}/decode", json=as_json([foreign]), headers=bearer())
    too_big = await http.post(
        f"{codec_server}/decode", content=b" " * (64 * 1024 + 1), headers=bearer()
    )

    assert not_json.status_code == 400 and "Payloads" in not_json.json()["detail"]
    assert altered.status_code == 400 and "failed authentication" in altered.json()["detail"]
    assert unknown.status_code == 400 and "'retired-2020'" in unknown.json()["detail"]
    assert too_big.status_code == 413


# -- the browser: CORS and the session cookie ------------------------------------------


async def test_preflight_is_answered_for_the_ui_origin_only(
    codec_server: str, http: httpx.AsyncClient
) -> None:
    asking = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
    }

    allowed = await http.options(f"{codec_server}/decode", headers={"Origin": UI_ORIGIN, **asking})
    other = await http.options(
        f"{codec_server}/decode", headers={"Origin": "http://evil.example:8233", **asking}
    )

    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == UI_ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    granted = {
        h.strip().lower() for h in allowed.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-namespace"} <= granted
    assert other.status_code == 403
    assert not [h for h in other.headers if h.lower().startswith("access-control-")]


async def test_answers_carry_cors_headers_for_the_ui_origin_only(
    codec_server: str, http: httpx.AsyncClient
) -> None:
    body = as_json([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])

    ui = await http.post(
        f"{codec_server}/decode", json=body, headers={**bearer(), "Origin": UI_ORIGIN}
    )
    ui_refused = await http.post(f"{codec_server}/decode", json=body, headers={"Origin": UI_ORIGIN})
    other = await http.post(
        f"{codec_server}/decode", json=body, headers={**bearer(), "Origin": "http://evil.example"}
    )

    assert ui.status_code == 200 and ui.headers["access-control-allow-origin"] == UI_ORIGIN
    # The UI can read a 401 (and tell the operator to sign in) rather than a network error.
    assert ui_refused.status_code == 401
    assert ui_refused.headers["access-control-allow-origin"] == UI_ORIGIN
    assert other.status_code == 200  # a non-browser caller with the token is fine...
    assert not [
        h for h in other.headers if h.lower().startswith("access-control-")
    ]  # ...a page not


async def test_a_browser_signs_in_once_and_then_decodes_with_its_session_cookie(
    codec_server: str, saga_history: tuple[str, History], phone_digits: str
) -> None:
    body = as_json(started_input(saga_history[1]))
    async with httpx.AsyncClient(base_url=codec_server, timeout=10.0) as browser:
        form = await browser.get("/login")
        assert form.status_code == 200 and 'name="token"' in form.text
        assert "script-src" not in form.headers["content-security-policy"]  # no script at all

        wrong = await browser.post("/login", data={"token": "not-the-token-at-all"})
        assert wrong.status_code == 401 and SESSION_COOKIE not in browser.cookies
        assert (await browser.post("/decode", json=body)).status_code == 401

        signed_in = await browser.post("/login", data={"token": TOKEN})
        assert signed_in.status_code == 200 and "Include cross-origin credentials" in signed_in.text
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        assert TOKEN not in cookie and TOKEN not in signed_in.text

        decoded = await browser.post("/decode", json=body, headers={"Origin": UI_ORIGIN})
        assert decoded.status_code == 200
        assert data_of(decoded.json())[0]["phoneNumber"] == f"06-{phone_digits}"

        session = browser.cookies[SESSION_COOKIE]
        forged = session[:-1] + ("0" if session[-1] != "0" else "1")
        stretched = str(int(session.split(".")[0]) + 3600) + session[session.index(".") :]
        async with httpx.AsyncClient(base_url=codec_server, timeout=10.0) as other_browser:
            for cookie in (session, forged, stretched):
                answer = await other_browser.post(
                    "/decode", json=body, headers={"Cookie": f"{SESSION_COOKIE}={cookie}"}
                )
                assert answer.status_code == (200 if cookie == session else 401)

        signed_out = await browser.post("/logout")
        assert signed_out.status_code == 200 and SESSION_COOKIE not in browser.cookies
        assert (await browser.post("/decode", json=body)).status_code == 401


def test_sessions_end_at_their_expiry_and_with_their_token() -> None:
    now = [1_000_000.0]
    credentials = Credentials([SecretStr(TOKEN)], session_seconds=60, clock=lambda: now[0])
    opened = credentials.open_session(TOKEN)
    assert opened is not None and credentials.open_session("x" * 20) is None
    cookie, max_age = opened

    assert max_age == 60 and credentials.session_ok(cookie)
    now[0] += 61
    assert not credentials.session_ok(cookie)
    now[0] -= 61
    revoked = Credentials([SecretStr("another-token-000000")], 60, clock=lambda: now[0])
    assert not revoked.session_ok(cookie)  # the token that opened it is gone
    for broken in ("", "x", "1.2", "a.b.c", f"{cookie}.extra"):
        assert not credentials.session_ok(broken)


# -- the real temporal CLI ------------------------------------------------------------


async def temporal_show(client: Client, workflow_id: str, *flags: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(ensure_temporal_cli()),
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--address",
        client.service_client.config.target_host,
        "--namespace",
        client.namespace,
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    return out.decode()


def shown_start(output: str) -> tuple[str, Any, str]:
    """From ``--output json``: the start event's input encoding and value, and the
    summary's text, each base64-decoded as the CLI leaves them."""
    started = json.loads(output)["events"][0]
    [payload] = started["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
    encoding = base64.b64decode(payload["metadata"]["encoding"]).decode()
    summary = base64.b64decode(started["userMetadata"]["summary"]["data"])
    data = base64.b64decode(payload["data"])
    value = json.loads(data) if encoding == "json/plain" else data
    return encoding, value, summary.decode(errors="replace")


async def test_temporal_workflow_show_decrypts_through_the_codec_server(
    client: Client,
    codec_server: str,
    saga_history: tuple[str, History],
    phone_digits: str,
    uid: str,
) -> None:
    workflow_id, _ = saga_history
    codec = ("--codec-endpoint", codec_server, "--codec-auth", f"Bearer {TOKEN}")

    decoded = await temporal_show(client, workflow_id, "--output", "json", *codec)
    sealed = await temporal_show(client, workflow_id, "--output", "json")
    text = await temporal_show(client, workflow_id, "--detailed", *codec)

    encoding, request, summary = shown_start(decoded)
    assert encoding == "json/plain"
    assert request["phoneNumber"] == f"06-{phone_digits}" and request["customerId"] == f"C-{uid}"
    assert summary.startswith('"Terminate sTN line 06-****') and f"C-{uid}" in summary
    encoding, ciphertext, _ = shown_start(sealed)
    assert encoding == "binary/encrypted"
    assert phone_digits.encode() not in ciphertext and phone_digits not in sealed
    assert f"input[0].phoneNumber: 06-{phone_digits}" in text
    assert f"userMetadata.summary: Terminate sTN line 06-****{phone_digits[-4:]}" in text


# -- python -m starter.codec_server, as make run starts it -----------------------------


def run_codec_server(port: int, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "starter.codec_server"],
        cwd=ROOT,
        env={**os.environ, "CANCEL_CODEC_SERVER_PORT": str(port), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_python_m_codec_server_serves_the_configured_tokens_and_keys() -> None:
    port = free_port()
    process = run_codec_server(
        port,
        CANCEL_CODEC_SERVER_TOKENS=json.dumps([TOKEN]),
        CANCEL_CODEC_SERVER_ALLOWED_ORIGINS=json.dumps([UI_ORIGIN]),
    )
    try:

        def healthy() -> None:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError as error:
                raise AssertionError(str(error)) from None

        eventually_sync(healthy, within=STARTUP_SECONDS)
        [sealed] = asyncio.run(
            codec_under_test().encode([Payload(metadata={"encoding": b"json/plain"}, data=b"42")])
        )
        answer = httpx.post(
            f"http://127.0.0.1:{port}/decode", json=as_json([sealed]), headers=bearer(), timeout=5
        )
        assert answer.status_code == 200 and data_of(answer.json()) == [42]
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0].decode()
    assert TOKEN not in output  # the token is never logged


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CANCEL_CODEC_SERVER_TOKENS": "[]"}, "CANCEL_CODEC_SERVER_TOKENS is empty"),
        ({"CANCEL_CODEC_SERVER_TOKENS": '["short"]'}, "shorter than 16 characters"),
        (
            {
                "CANCEL_CODEC_SERVER_TOKENS": json.dumps([TOKEN]),
                "CANCEL_ENVIRONMENT": "production",
                "CANCEL_CODEC_KEYS": "{}",
                "CANCEL_CODEC_CURRENT_KEY_ID": "",
            },
            "CANCEL_CODEC_KEYS",
        ),
    ],
    ids=["no-token", "short-token", "production-without-key"],
)
def test_python_m_codec_server_refuses_to_start_misconfigured(
    env: dict[str, str], expected: str
) -> None:
    process = run_codec_server(free_port(), **env)
    output = process.communicate(timeout=30)[0].decode()

    assert process.returncode == 1
    assert expected in output and "Traceback" not in output


# -- make run's wiring ------------------------------------------------------------------


def test_make_run_points_the_ui_and_the_codec_server_at_each_other(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TEMPORAL_UI_PORT", "18233")
    monkeypatch.setenv("CANCEL_CODEC_SERVER_PORT", "18089")
    ports = make_run.Ports.from_env()
    wiring = Wiring(
        temporal_address="127.0.0.1:7233",
        sandbox_url="http://127.0.0.1:8099",
        codec_port=ports.codec,
        codec_token="per-run-token-0123456789",
        ui_port=ports.ui,
    )

    env = environment(wiring, Role.CODEC_SERVER, base={"KEEP": "1"})
    cli, database = tmp_path / "temporal", tmp_path / "temporal.db"
    on = dev_server(cli, 7233, database, ui_port=ports.ui, codec_endpoint=ports.codec_endpoint)
    off = dev_server(cli, 7233, database, ui_port=ports.ui)

    assert ports.codec == 18089 and ports.codec_endpoint == "http://127.0.0.1:18089"
    assert on.argv[-2:] == ["--ui-codec-endpoint", "http://127.0.0.1:18089"]
    assert "--ui-codec-endpoint" not in off.argv
    assert env["KEEP"] == "1" and env["CANCEL_CODEC_SERVER_PORT"] == "18089"
    assert json.loads(env["CANCEL_CODEC_SERVER_ALLOWED_ORIGINS"]) == [
        "http://127.0.0.1:18233",
        "http://localhost:18233",
    ]
    assert json.loads(env["CANCEL_CODEC_SERVER_TOKENS"]) == ["per-run-token-0123456789"]
    settings = CodecServerSettings.model_validate(
        {
            "port": env["CANCEL_CODEC_SERVER_PORT"],
            "allowed_origins": json.loads(env["CANCEL_CODEC_SERVER_ALLOWED_ORIGINS"]),
            "tokens": json.loads(env["CANCEL_CODEC_SERVER_TOKENS"]),
        }
    )
    assert settings.port == 18089
    theirs = Wiring("127.0.0.1:7233", "http://127.0.0.1:8099", codec_port=ports.codec)
    kept = environment(theirs, Role.CODEC_SERVER, base={"CANCEL_CODEC_SERVER_TOKENS": '["mine"]'})
    assert kept["CANCEL_CODEC_SERVER_TOKENS"] == '["mine"]'


def test_make_run_banner_says_how_to_decode_and_which_key_is_in_use(tmp_path: Path) -> None:
    from config.codec import CodecKeys

    ports = make_run.Ports(temporal=7233, ui=8233, sandbox=8099, api=8080, codec=8089)
    dev = CodecKeys({"dev-x": b"k" * 32}, "dev-x", tmp_path / "dev-codec-key.json")
    configured = CodecKeys({"2026-11": b"k" * 32}, "2026-11")

    text = make_run.banner(
        ports, "127.0.0.1:7233", "api-key", make_run.codec_banner(ports, "tok-123", dev, cli="/t")
    )
    encrypted_ui = make_run.codec_banner(ports, None, configured, ui_codec=False)

    assert "Codec server      http://127.0.0.1:8089" in text
    assert "Codec token       tok-123" in text
    assert f"generated local development key at {tmp_path / 'dev-codec-key.json'}" in text
    assert "not for production" in text
    assert "http://127.0.0.1:8089/login" in text and "Include cross-origin credentials" in text
    assert "/t workflow show" in text and "--codec-auth 'Bearer tok-123'" in text
    assert text.rstrip().endswith("Ctrl-C stops everything.")
    assert "from CANCEL_CODEC_KEYS (current: 2026-11)" in encrypted_ui
    assert (
        "DEVSTACK_UI_CODEC=off" in encrypted_ui
        and "from CANCEL_CODEC_SERVER_TOKENS" in encrypted_ui
    )
    assert b"k".hex() * 32 not in text and "a2tr" not in text  # the key bytes never shown
