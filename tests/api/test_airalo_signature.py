"""The webhook signature check against Airalo's official SDK (airalo-sdk 1.0.3)."""

from __future__ import annotations

import json

import pytest
from airalo.helpers import signature as sdk

from starter.api import airalo_signature

SECRET = "partner-client-secret"
FIRED = {
    "request_id": "9d3f5c1b2a7e4f6d8c0b1a2e3",
    "type": "future_order",
    "data": {"package_id": "kallur-digital-7days-1gb", "iccid": "8944465400000267221"},
    "url": "https://example.test/sims/8944465400000267221",
    "name": "Zoë",
}


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(FIRED).encode(),  # spaced, slashes unescaped
        json.dumps(FIRED, separators=(",", ":")).encode(),
        json.dumps(FIRED, indent=2, ensure_ascii=False).encode(),
    ],
    ids=["spaced", "compact", "pretty"],
)
@pytest.mark.parametrize("signed_as", ["parsed", "text"])
def test_what_the_sdk_signs_verifies(body: bytes, signed_as: str) -> None:
    signer = sdk.Signature(SECRET)
    signature = signer.get_signature(FIRED if signed_as == "parsed" else body.decode())

    assert airalo_signature.verify(body, signature, SECRET)
    # ...and the SDK agrees with our signer.
    assert signer.check_signature(airalo_signature.sign(FIRED, SECRET), FIRED)


def test_a_changed_body_a_wrong_key_or_no_signature_is_refused() -> None:
    body = json.dumps(FIRED).encode()
    good = airalo_signature.sign(FIRED, SECRET)
    forged = json.dumps({**FIRED, "request_id": "x" * 25}).encode()

    assert airalo_signature.verify(body, good, SECRET)
    assert not airalo_signature.verify(forged, good, SECRET)
    assert not airalo_signature.verify(body, airalo_signature.sign(FIRED, "other"), SECRET)
    assert not airalo_signature.verify(body, None, SECRET)
    assert not airalo_signature.verify(body, "", SECRET)
    assert not airalo_signature.verify(b"not json", good, SECRET)
    assert not airalo_signature.verify(body, "ü" * 128, SECRET)
    # A lone surrogate escaped in the JSON: text no UTF-8 holds, refused (it was a 500).
    assert not airalo_signature.verify(b'{"request_id": "\\ud800"}', good, SECRET)
