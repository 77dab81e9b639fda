"""Order cancellation requests the Rebilly contract tests send."""

from __future__ import annotations

from domain.rebilly import OrderCancellationRequest

ORDER = "ord_01HRF27SATGE4Z6PBJE6PD8328"


def every_settable_field(order_id: str = ORDER) -> OrderCancellationRequest:
    """A request that sets every field a caller may set."""
    return OrderCancellationRequest.model_validate(
        {
            "orderId": order_id,
            "churnTime": "2030-07-10T13:55:51Z",
            "reason": "too-expensive",
            "canceledBy": "merchant",
            "prorated": True,
            "description": "Customer moved abroad",
            "lineItems": [
                {
                    "type": "debit",
                    "unitPriceAmount": 49.95,
                    "unitPriceCurrency": "USD",
                    "quantity": 1,
                    "description": "Early termination fee",
                    "periodStartTime": "2030-07-10T13:55:51Z",
                    "periodEndTime": "2030-08-10T13:55:51Z",
                }
            ],
            "draft": True,
            "customerId": "C-1",
        }
    )
