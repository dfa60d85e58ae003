"""Structured logs: one JSON object per line on stderr, access log records with the request id.

Nothing here ever logs a header value other than the request id: the Authorization header, the
token and the JWT secret never reach a log record.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["ACCESS_LOGGER", "LOGGER", "JsonFormatter", "configure_logging", "log_access"]

LOGGER = logging.getLogger("tistate.http")
ACCESS_LOGGER = logging.getLogger("tistate.http.access")

# Attributes every LogRecord has; anything else passed with `extra=` becomes a JSON field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


# What json.dumps(entry, default=str, separators=(",", ":")) builds on every call.
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


def log_access(fields: dict[str, Any]) -> None:
    """`ACCESS_LOGGER.info("request", extra=fields)` without the search for the caller's frame
    (a record's pathname, lineno and funcName are not part of the JSON line)."""
    logger = ACCESS_LOGGER
    if logger.isEnabledFor(logging.INFO):
        logger.handle(
            logger.makeRecord(
                logger.name, logging.INFO, __file__, 0, "request", (), None, "log_access", fields
            )
        )


def configure_logging(level: str = "info") -> None:
    """Route tistate's and uvicorn's loggers to one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
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
