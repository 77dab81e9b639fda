"""The providers' webhook bodies.

Airalo **[doc]**: "the format of the message that is sent to the webhook URL is the same as
the response of the regular order. It only has one additional parameter named
``request_id``". **[assume]** ``request_id`` sits at the top level next to ``data`` and
``meta``; the order (``data``) has the documented Submit-order keys the sandbox can fill
without a package catalogue, one ``sims`` entry per unit with made-up but stable values.

Rebilly **[doc]** (``Rebilly/api-definitions``, ``requestBodies/Webhooks/Subscription.yaml``):
``{subscriptionId, eventType, _embedded: {subscription}, _links: [{href, rel:
"subscription"}]}``. **[assume]** the embedded subscription carries only the order fields
the sandbox models (``id``, ``orderType``, ``status``, ``renewalTime`` and the
cancellation state ``canceledTime``/``canceledBy``/``cancelCategory``/``cancelDescription``,
plus ``endTime`` = the churn time), and the link is the sandbox path
``/rebilly/organizations/{org}/subscriptions/{id}``, which the sandbox does not serve.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sandbox.airalo import FutureOrder
from sandbox.clock import format_seconds
from sandbox.rebilly.model import Cancellation, Order
from sandbox.rebilly.store import SUBSCRIPTION_REACTIVATED

AIRALO_DATETIME = "%Y-%m-%d %H:%M:%S"
SMDP_ADDRESS = "lpa.airalo.com"
AIRALO_SANDBOX_WEB = "https://sandbox.airalo.com"


def _digits(seed: str, length: int) -> str:
    """A stable run of decimal digits derived from ``seed``."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:12], "big")
    return str(number).rjust(length, "0")[-length:]


def _sim(order: FutureOrder, index: int, created_at: str) -> dict[str, Any]:
    seed = f"{order.request_id}/{index}"
    iccid = "8944" + _digits(seed, 15)
    matching_id = _digits(seed + "m", 10)
    lpa = f"LPA:1${SMDP_ADDRESS}${matching_id}"
    return {
        "id": int(_digits(seed + "id", 6)),
        "created_at": created_at,
        "iccid": iccid,
        "lpa": SMDP_ADDRESS,
        "matching_id": matching_id,
        "qrcode": lpa,
        "qrcode_url": f"{AIRALO_SANDBOX_WEB}/qr?expires=1&id={iccid}",
        "direct_apple_installation_url": (
            f"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata={lpa}"
        ),
        "apn_type": "automatic",
        "apn_value": None,
        "is_roaming": True,
        "confirmation_code": None,
    }


def airalo_fired_order(order: FutureOrder, fired_at: datetime) -> dict[str, Any]:
    """The notification of a fired future order: an order response plus ``request_id``."""
    created_at = fired_at.strftime(AIRALO_DATETIME)
    number = int(_digits(order.request_id + "order", 6))
    data = {
        "id": number,
        "code": f"{fired_at:%Y%m%d}-{number:06d}",
        "package_id": order.package_id,
        "quantity": order.quantity,
        "type": "sim",
        "description": order.description,
        "esim_type": "Prepaid",
        "currency": "USD",
        "created_at": created_at,
        "brand_settings_name": order.options.get("brand_settings_name"),
        "installation_guides": {"en": f"{AIRALO_SANDBOX_WEB}/installation-guide"},
        "sims": [_sim(order, index, created_at) for index in range(order.quantity)],
    }
    return {"data": data, "meta": {"message": "success"}, "request_id": order.request_id}


_STATUS_AFTER = {
    "subscription-canceled": "canceled",
    "subscription-churned": "churned",
    SUBSCRIPTION_REACTIVATED: "active",
}


def rebilly_subscription_event(
    event_type: str, order: Order, cancellation: Cancellation | None, organization_id: str
) -> dict[str, Any]:
    """A ``Subscription`` webhook body for ``event_type`` about ``order``."""
    subscription: dict[str, Any] = {
        "id": order.id,
        "orderType": "subscription-order",
        "status": _STATUS_AFTER.get(event_type, "active"),
        "renewalTime": format_seconds(order.next_renewal_time),
    }
    if cancellation is not None and event_type != SUBSCRIPTION_REACTIVATED:
        state = {
            "canceledTime": (
                format_seconds(cancellation.canceled_time) if cancellation.canceled_time else None
            ),
            "canceledBy": cancellation.canceled_by,
            "cancelCategory": cancellation.reason,
            "cancelDescription": cancellation.description,
            "endTime": (
                format_seconds(cancellation.churn_time) if cancellation.churn_time else None
            ),
        }
        # Like the API answers: unset non-nullable fields are left out, not null.
        subscription |= {key: value for key, value in state.items() if value is not None}
    href = f"/rebilly/organizations/{organization_id}/subscriptions/{order.id}"
    return {
        "subscriptionId": order.id,
        "eventType": event_type,
        "_embedded": {"subscription": subscription},
        "_links": [{"href": href, "rel": "subscription"}],
    }
