"""The HTTP API: start, inspect and steer sagas over HTTP, and take CloudEvents.

A thin edge over :mod:`starter.sagas` (the same functions ``cancelctl`` runs) with
the same request models and ``parse_*`` rules; what is its own is authentication,
idempotent deliveries, HTTP status codes and the OpenAPI document.
``starter.api.app.create_app`` builds it; ``python -m starter.api`` serves it.
"""
