"""The codec server: Temporal's remote codec protocol over our payload codec.

``temporal workflow show --codec-endpoint … --codec-auth "Bearer <token>"`` and the
Web UI (Remote Codec Endpoint) send encrypted payloads to ``POST /decode`` and get
them back in clear; ``POST /encode`` does the reverse (the UI uses it when an
operator types a signal or update argument). Run it with
``python -m starter.codec_server``; ``make run`` starts one. See docs/security.md.
"""

from starter.codec_server.app import create_app

__all__ = ["create_app"]
