"""Run the app on uvicorn: one event loop per process, bounded everywhere, graceful on SIGTERM.

With `workers` > 1, uvicorn's supervisor binds the port once and runs that many worker processes
on it (the kernel spreads the connections); each worker is the single-process server below, with
its own pool, relay and admission limit, and /metrics adds all workers up (Prometheus multiprocess
mode, in a directory the supervisor owns). A worker that dies is replaced.

On SIGTERM/SIGINT uvicorn stops accepting connections, lets in-flight requests finish for up to
`Settings.graceful_timeout` seconds, then runs the lifespan shutdown (which closes the pool).
`max_connections` caps the open client connections (uvicorn's limit_concurrency), so memory stays
flat however many clients connect; admission control and the pool bound the work behind them. The
process's open-file limit is raised (up to its hard limit) to fit that many connections: the usual
soft limit of 1024 would otherwise make accept() fail long before the cap.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import SIGNALS

from .app import create_app
from .logs import configure_logging
from .metrics import MULTIPROC_DIR_ENV
from .protocol import ServerConfig
from .settings import Settings

__all__ = ["FD_HEADROOM", "raise_open_file_limit", "serve", "uvicorn_config", "worker_app"]

log = logging.getLogger("tistate.http")


def worker_app(settings: Settings) -> FastAPI:
    """The app of one worker process (uvicorn's factory: the supervisor pickles this call)."""
    configure_logging(settings.log_level)
    raise_open_file_limit(settings.max_connections + FD_HEADROOM)
    return create_app(settings)


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration for these settings (no uvicorn logging config: ours is JSON), on
    httptools with a cap on request heads and read deadlines (tistate.http.protocol)."""
    workers = settings.workers > 1
    return ServerConfig(
        functools.partial(worker_app, settings) if workers else create_app(settings),
        max_header_bytes=settings.max_header_bytes,
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        factory=workers,
        workers=settings.workers,
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


#: descriptors besides client connections: the pool, the relay, logs, the embedded server's files
FD_HEADROOM = 256


def raise_open_file_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to `needed` (at most the hard limit); the result."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "the open-file limit is below what max_connections needs; raise the hard limit "
            "(ulimit -Hn, LimitNOFILE=) or lower TISTATE_MAX_CONNECTIONS",
            extra={"open_file_limit": target, "needed": needed},
        )
    return target


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
    raise_open_file_limit(settings.max_connections + FD_HEADROOM)
    log.info(
        "starting",
        extra={"host": settings.host, "port": settings.port, "workers": settings.workers},
    )
    if settings.workers > 1:
        _serve_workers(settings)
        return
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, _stop) for sig in stop_signals}
    try:
        uvicorn.Server(uvicorn_config(settings)).run()
    except _Stopped as stopped:
        log.info("stopped by signal", extra={"signal": signal.Signals(stopped.args[0]).name})
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _metrics_directory() -> Iterator[Path]:
    """A fresh Prometheus multiprocess directory, in the environment the workers inherit."""
    previous = os.environ.get(MULTIPROC_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix="tistate-metrics-") as directory:
        os.environ[MULTIPROC_DIR_ENV] = directory
        try:
            yield Path(directory)
        finally:
            if previous is None:
                os.environ.pop(MULTIPROC_DIR_ENV, None)
            else:
                os.environ[MULTIPROC_DIR_ENV] = previous


def _serve_workers(settings: Settings) -> None:
    """uvicorn's supervisor: bind once, run `settings.workers` workers until SIGTERM/SIGINT."""
    config = uvicorn_config(settings)
    sock = config.bind_socket()
    # The supervisor installs its own handlers (it queues the signals it gets); the caller's
    # come back afterwards, so e.g. the embedded PostgreSQL's cleanup runs as usual.
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    try:
        with _metrics_directory():
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped", extra={"workers": settings.workers})
