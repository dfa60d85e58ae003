"""Run the app on uvicorn: one process, one event loop, bounded everywhere, graceful on SIGTERM.

On SIGTERM/SIGINT uvicorn stops accepting connections, lets in-flight requests finish for up to
`Settings.graceful_timeout` seconds, then runs the lifespan shutdown (which closes the pool).
`max_connections` caps the open client connections (uvicorn's limit_concurrency), so memory stays
flat however many clients connect; admission control and the pool bound the work behind them.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from .app import create_app
from .logs import configure_logging
from .settings import Settings

__all__ = ["serve"]

log = logging.getLogger("tistate.http")


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for these settings (no uvicorn logging config: ours is JSON)."""
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        limit_concurrency=settings.max_connections,
        server_header=False,
        proxy_headers=False,
    )


class _Stopped(Exception):
    """A stop signal, re-raised by uvicorn after its graceful shutdown."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def serve(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT, then return normally.

    `settings.database_url` must be set (the CLI starts the embedded PostgreSQL when it is not).
    uvicorn finishes in-flight requests, runs the lifespan shutdown, restores the signal handlers
    it found and re-raises the signal it caught; the handlers installed here turn that into a
    normal return, so the caller's cleanup (e.g. stopping the embedded PostgreSQL) still runs and
    the process exits 0.
    """
    configure_logging(settings.log_level)
    if not settings.database_url:
        raise ValueError("no database: set TISTATE_DATABASE_URL or pass --database-url")
    log.info("starting", extra={"host": settings.host, "port": settings.port})
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, _stop) for sig in stop_signals}
    try:
        uvicorn.Server(uvicorn_config(settings)).run()
    except _Stopped as stopped:
        log.info("stopped by signal", extra={"signal": signal.Signals(stopped.args[0]).name})
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
