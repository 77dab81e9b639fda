"""AES-256-GCM encryption of every Temporal payload, with key ids for rotation.

Workflow input, results, signals, updates, queries, memos and summaries leave the
process encrypted, so the Temporal server (its database, its Web UI without a codec
server, ``temporal workflow show``) holds no phone number or customer id in clear.

The format is the one of Temporal's samples (``samples-python/encryption``) and
their Go/TypeScript twins: the whole serialized ``temporal.api.common.v1.Payload``
(metadata and data) is the plaintext; the encrypted payload carries
``encoding: binary/encrypted`` and ``encryption-key-id: <id>`` and its data is
``nonce (12 random bytes) || ciphertext || tag``. A random 96-bit nonce per payload
is safe for far more payloads than one key will ever see (NIST SP 800-38D's 2^32
limit per key for random nonces); rotate keys long before that.

Decoding picks the key by the payload's id, so payloads written under an older key
still decrypt after a newer one becomes current; payloads without
``binary/encrypted`` (runs started before encryption, the committed test histories)
pass through unchanged.

Keys come from :class:`config.settings.CodecSettings`. Without one, production
refuses to start and development generates one local key file, shared by every
process of the checkout (:func:`load_codec`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from config.settings import (
    AES_256_KEY_BYTES,
    CodecSettings,
    Environment,
    OrchestratorSettings,
)

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12  # 96 bits, GCM's native nonce size
TAG_BYTES = 16

logger = logging.getLogger(__name__)


class CodecError(Exception):
    """A payload that cannot be decrypted. Messages name key ids, never keys."""


class UnknownKeyId(CodecError):
    pass


class CodecConfigurationError(Exception):
    """The process cannot encrypt: no key where one is required, or a broken key file."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the current key; decrypts with whichever key a payload names."""

    def __init__(self, keys: Mapping[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise CodecConfigurationError(
                f"current key id {current_key_id!r} is not one of {sorted(keys)}"
            )
        for key_id, key in keys.items():
            if len(key) != AES_256_KEY_BYTES:
                raise CodecConfigurationError(
                    f"key {key_id!r} has {len(key)} bytes; AES-256 needs {AES_256_KEY_BYTES}"
                )
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.current_key_id].encrypt(
            nonce, payload.SerializeToString(), None
        )
        return Payload(
            metadata={
                "encoding": ENCODING,
                KEY_ID_METADATA: self.current_key_id.encode(),
            },
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one that is not ``binary/encrypted`` is returned as is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if raw_id is None:
            raise CodecError(f"encrypted payload has no {KEY_ID_METADATA!r} metadata")
        key_id = raw_id.decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownKeyId(
                f"payload is encrypted with key id {key_id!r}, which is not configured "
                f"(known key ids: {', '.join(self.key_ids)}); add that key to "
                "CANCEL_CODEC_KEYS"
            )
        data = payload.data
        if len(data) < NONCE_BYTES + TAG_BYTES:
            raise CodecError(f"encrypted payload (key id {key_id!r}) is truncated")
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)
        except InvalidTag:
            raise CodecError(
                f"encrypted payload (key id {key_id!r}) failed authentication: it was "
                "altered, or encrypted with another key under the same id"
            ) from None
        return Payload.FromString(plain)


# -- where keys come from -------------------------------------------------------------


@dataclass(frozen=True)
class CodecKeys:
    keys: dict[str, bytes]
    current_key_id: str
    # Set when the keys are a generated local development key (where it lives).
    dev_key_file: Path | None = None


def resolve_keys(
    settings: CodecSettings | None = None, environment: Environment | None = None
) -> CodecKeys:
    """The configured keys; else a start-up error in production; else the dev key file."""
    settings = settings if settings is not None else CodecSettings()
    environment = environment if environment is not None else OrchestratorSettings().environment
    current = settings.current()
    if current is not None:
        return CodecKeys(settings.key_bytes(), current)
    if environment == Environment.PRODUCTION:
        raise CodecConfigurationError(
            "CANCEL_ENVIRONMENT=production and no payload encryption key is configured: set "
            'CANCEL_CODEC_KEYS (JSON, key id -> base64 of 32 bytes, e.g. {"2026-11": "..."}) '
            "and CANCEL_CODEC_CURRENT_KEY_ID (see docs/security.md)"
        )
    key_id, key = dev_key(settings.dev_key_file)
    return CodecKeys({key_id: key}, key_id, settings.dev_key_file)


def load_codec(
    settings: CodecSettings | None = None, environment: Environment | None = None
) -> EncryptionCodec:
    """The codec from configuration; warns when it runs on a generated dev key."""
    keys = resolve_keys(settings, environment)
    if keys.dev_key_file is not None:
        logger.warning(
            "using a generated local development key at %s; not for production "
            "(set CANCEL_CODEC_KEYS and CANCEL_CODEC_CURRENT_KEY_ID)",
            keys.dev_key_file,
        )
    return EncryptionCodec(keys.keys, keys.current_key_id)


def dev_key(path: Path) -> tuple[str, bytes]:
    """The development key stored at ``path``, generated there (mode 0600) if absent.

    Concurrent first starts (worker, API, codec server, cancelctl) agree on one key:
    each writes a complete candidate file and links it into place; the link fails
    for all but the first, and the others read the winner's file.
    """
    if not path.exists():
        try:
            _generate_dev_key(path)
        except OSError as error:
            raise CodecConfigurationError(
                f"cannot create the development key file {path} ({error.strerror}); set "
                "CANCEL_CODEC_KEYS and CANCEL_CODEC_CURRENT_KEY_ID, or CANCEL_CODEC_DEV_KEY_FILE "
                "to a writable path"
            ) from None
    return _read_dev_key(path)


def _generate_dev_key(path: Path) -> None:
    """Write a new key to a private candidate file, then link it into place (no overwrite)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key_id = "dev-" + datetime.now(UTC).strftime("%Y%m%d") + "-" + secrets.token_hex(3)
    document = {
        "keyId": key_id,
        "key": base64.b64encode(os.urandom(AES_256_KEY_BYTES)).decode(),
        "note": "generated local development key for payload encryption; not for production",
    }
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            json.dump(document, out, indent=1)
            out.write("\n")
        # Fails if another process was first: then its key is the one.
        with contextlib.suppress(FileExistsError):
            os.link(candidate, path)
    finally:
        candidate.unlink(missing_ok=True)


def _read_dev_key(path: Path) -> tuple[str, bytes]:
    try:
        document = json.loads(path.read_text())
        key_id, key = str(document["keyId"]), base64.b64decode(document["key"], validate=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CodecConfigurationError(
            f"the development key file {path} is unreadable ({type(error).__name__}); "
            "delete it to generate a new one (payloads encrypted with the old key are then lost)"
        ) from None
    if len(key) != AES_256_KEY_BYTES:
        raise CodecConfigurationError(f"the development key in {path} is not 32 bytes")
    if path.stat().st_mode & 0o077:
        logger.warning("the development key file %s is readable by other users (chmod 600)", path)
    return key_id, key
