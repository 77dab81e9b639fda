"""Log lines for the worker and the API: one JSON object per line, or a pretty line.

Every line carries what is known about where it was written: the saga (``workflow_id``,
``run_id``, ``workflow_type``), the activity (``activity_type``, ``activity_id``,
``attempt``), the ``provider`` an activity calls and the OpenTelemetry ``trace_id``
when a span is active. The fields come from what temporalio's loggers put on each
record (``temporal_workflow`` / ``temporal_activity`` extras) and, for any other
logger used inside an activity, from the running activity itself.

Phone numbers are PII: every message and traceback passes :func:`redact` (Dutch mobile
numbers in any notation become ``[phone]``), and httpx's per-request INFO lines, which
would carry a provider URL and its query (sTN lookups by phone number), stay silenced.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TextIO

from opentelemetry import trace
from temporalio import activity, workflow

from domain.common import Provider


class LogFormat(StrEnum):
    JSON = "json"
    PRETTY = "pretty"


#: Loggers whose INFO lines name request URLs (and so may name a phone number).
QUIET_LOGGERS = ("httpx", "httpcore")

#: A Dutch mobile number however written: 0612345678, 06-12345678, +31 6 1234 5678.
_PHONE = re.compile(r"(?<!\d)(?:\+31|0031|0)[ -]?6(?:[ -]?\d){8}(?!\d)")

#: The order of the context fields on a line.
CONTEXT_FIELDS = (
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity_type",
    "activity_id",
    "attempt",
    "provider",
    "task_queue",
    "namespace",
    "trace_id",
    "span_id",
)
_PROVIDERS = frozenset(provider.value for provider in Provider)


def redact(text: str) -> str:
    """``text`` with every phone number replaced by ``[phone]``."""
    return _PHONE.sub("[phone]", text)


def provider_of(activity_type: str | None) -> str | None:
    """The provider an activity calls, from its name (``stn.submit_termination`` → ``stn``)."""
    prefix = (activity_type or "").partition(".")[0]
    return prefix if prefix in _PROVIDERS else None


def _activity_details() -> Mapping[str, Any]:
    """The running activity's details, for records from loggers other than temporalio's."""
    if not activity.in_activity():
        return {}
    info = activity.info()
    return {
        "activity_id": info.activity_id,
        "activity_type": info.activity_type,
        "attempt": info.attempt,
        "namespace": info.namespace,
        "task_queue": info.task_queue,
        "workflow_id": info.workflow_id,
        "workflow_run_id": info.workflow_run_id,
        "workflow_type": info.workflow_type,
    }


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The context fields of ``record`` that are known, in :data:`CONTEXT_FIELDS` order."""
    found: dict[str, Any] = {}
    saga: Mapping[str, Any] = getattr(record, "temporal_workflow", None) or {}
    step: Mapping[str, Any] = getattr(record, "temporal_activity", None) or _activity_details()
    core = getattr(getattr(record, "temporal_log", None), "fields", None) or {}
    for source in (core, saga, step):
        for key, value in source.items():
            name = "run_id" if key == "workflow_run_id" else key
            if name in CONTEXT_FIELDS and value is not None:
                found[name] = value
    provider = getattr(record, "provider", None) or provider_of(found.get("activity_type"))
    if provider:
        found["provider"] = str(provider)
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        found["trace_id"] = format(span.trace_id, "032x")
        found["span_id"] = format(span.span_id, "016x")
    return {name: found[name] for name in CONTEXT_FIELDS if name in found}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the
    context fields, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **context_of(record),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        return json.dumps(line, default=str, ensure_ascii=False)


class PrettyFormatter(logging.Formatter):
    """For a person at a terminal (``make run``): time, level, logger, message, then
    the context fields as ``key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        context = " ".join(f"{key}={value}" for key, value in context_of(record).items())
        line = f"{at} {record.levelname:<7} {record.name}: {redact(record.getMessage())}"
        if context:
            line += f"  [{context}]"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


def install(log_format: LogFormat, level: str, stream: TextIO | None = None) -> logging.Handler:
    """Route every logger of the process through one handler in ``log_format``.

    Replaces the root logger's handlers (so it is safe to call twice) and returns the
    new one. temporalio's loggers stop appending their context dict to the message:
    the formatter writes it as fields instead.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == LogFormat.JSON else PrettyFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    return handler
