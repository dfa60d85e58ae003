"""Structured logs: one JSON object per line on stderr, access log records with the request id.

Nothing here ever logs a header value other than the request id: the Authorization header, the
token and the JWT secret never reach a log record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ACCESS_LOGGER",
    "LOGGER",
    "JsonFormatter",
    "JsonHandler",
    "configure_logging",
    "log_access",
]

LOGGER = logging.getLogger("tistate.http")
ACCESS_LOGGER = logging.getLogger("tistate.http.access")

# Attributes every LogRecord has; anything else passed with `extra=` becomes a JSON field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


# What json.dumps(entry, default=str, separators=(",", ":")) builds on every call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def _head(created: float, level: str, logger: str, msg: str) -> dict[str, Any]:
    return {
        "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "msg": msg,
    }


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = _head(record.created, record.levelname.lower(), record.name, record.getMessage())
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs: JsonFormatter lines on a stream."""


def _plain_json_handler(logger: logging.Logger) -> JsonHandler | None:
    """The only handler a record of `logger` reaches, when that is a JsonHandler as
    configure_logging left it (no filters on the way, nothing else handling it); else None."""
    found: JsonHandler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (
                found is not None
                or type(handler) is not JsonHandler
                or handler.filters
                or type(handler.formatter) is not JsonFormatter
            ):
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or found.level > logging.INFO:
        return None
    return found


def log_access(fields: dict[str, Any]) -> None:
    """`ACCESS_LOGGER.info("request", extra=fields)`, the same JSON line, made cheaply: without
    the search for the caller's frame (pathname, lineno and funcName are not in the line), and,
    with configure_logging's own handler, written as StreamHandler writes it without building a
    LogRecord (a third of a heartbeat's work in this layer otherwise)."""
    logger = ACCESS_LOGGER
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _plain_json_handler(logger)
    if handler is None:
        logger.handle(_access_record(fields))
        return
    entry = _head(time.time(), "info", logger.name, "request")
    entry.update(fields)
    with handler.lock or contextlib.nullcontext():
        try:
            handler.stream.write(_ENCODER.encode(entry) + handler.terminator)
            handler.flush()
        except RecursionError:
            raise
        except Exception:
            handler.handleError(_access_record(fields))


def _access_record(fields: dict[str, Any]) -> logging.LogRecord:
    logger = ACCESS_LOGGER
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 0, "request", (), None, "log_access", fields
    )


def configure_logging(level: str = "info") -> None:
    """Route tistate's and uvicorn's loggers to one JSON handler on stderr."""
    handler = JsonHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    for name in ("tistate", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(numeric)
        logger.propagate = False
    # uvicorn's own access log is replaced by ours (which has the request id and route).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
