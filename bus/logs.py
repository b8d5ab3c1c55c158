"""Worker logs: one JSON object per line when AGENTBUS_LOG_FORMAT=json, and on every line
logged while a request is served, the request's id, its tenant and the worker.

The middleware opens a request_scope() for each request (the id comes from the caller's
X-Request-Id when it is a sane one, else a new one; forwarded requests keep it, so one
request reads the same on both workers). configure() runs once the worker has set up its
logging (Faust replaces the root handlers as it starts).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

__all__ = [
    "ACCESS",
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "ProducerFlowControl",
    "RequestFields",
    "configure",
    "request_id_from",
    "request_scope",
    "set_tenant",
]

REQUEST_ID_HEADER = "X-Request-Id"
ACCESS = logging.getLogger("bus.access")  # one line per answered request, when asked for
_REQUEST_ID: ContextVar[str | None] = ContextVar("agentbus_request_id", default=None)
_TENANT: ContextVar[str | None] = ContextVar("agentbus_tenant", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Attributes every LogRecord has: anything else on a record came as `extra` and is logged too.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is a sane one, else a fresh one."""
    return header if header is not None and _SANE_ID.match(header) else os.urandom(8).hex()


@contextmanager
def request_scope(request_id: str, tenant: str | None) -> Iterator[None]:
    id_token, tenant_token = _REQUEST_ID.set(request_id), _TENANT.set(tenant)
    try:
        yield
    finally:
        _REQUEST_ID.reset(id_token)
        _TENANT.reset(tenant_token)


def set_tenant(tenant: str | None) -> None:
    """Name the request's tenant once it is known (after authentication)."""
    if tenant is not None:
        _TENANT.set(tenant)


class RequestFields(logging.Filter):
    """Puts request_id, tenant and worker on every record."""

    def __init__(self, worker: str) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _REQUEST_ID.get()
        record.tenant = _TENANT.get()
        record.worker = self.worker
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields, any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and v is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ProducerFlowControl(logging.Filter):
    """Drops faust's lines about its producer buffer filling and draining: a view's
    processor writes several changelog records per record it applies, so the buffer fills
    and drains many times a second under load (thousands of WARNING lines an hour, none of
    them news). Anything else faust's producer logs passes."""

    ROUTINE = ("producer buffer full size", "producer flush took")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.ROUTINE)


def configure(log_format: Literal["text", "json"], worker: str) -> None:
    """Add the request fields to every handler of the root logger (and JSON lines if asked)."""
    producer_log = logging.getLogger("faust.transport.producer")
    if not any(isinstance(f, ProducerFlowControl) for f in producer_log.filters):
        producer_log.addFilter(ProducerFlowControl())
    fields = RequestFields(worker)
    for handler in logging.getLogger().handlers:
        handler.addFilter(fields)
        if log_format == "json":
            handler.setFormatter(JsonFormatter())
