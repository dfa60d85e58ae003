"""The app factory: settings, one bounded connection pool, routes, middleware, handlers, OpenAPI."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import __version__
from ..client import DEFAULT_PREPARE_THRESHOLD, AsyncClient
from ..relay import NotificationRelay
from . import forward
from .auth import TokenCache, make_signer
from .budget import BodyBudget
from .compat import CompatibilityGate, watch_compatibility
from .gc_tuning import tune_gc
from .heartbeats import HeartbeatBatcher
from .memory import tune_malloc
from .metrics import Metrics
from .middleware import RequestMiddleware
from .openapi import build_openapi
from .problems import install_handlers
from .refresh import TokenRefreshMiddleware
from .routes import API_VERSION, execution_docs, execution_routes, ops_router
from .settings import Settings

__all__ = ["create_app", "pool_conninfo"]

log = logging.getLogger("tistate.http")

#: seconds between two updates of a worker's pool gauges (several workers only)
POOL_METRICS_INTERVAL = 1.0

DESCRIPTION = (
    "Task-instance state transitions and asset events, wire-compatible with Apache Airflow 3's "
    "Execution API (task-instances state, run, heartbeat and skip-downstream). Every transition is "
    "one PL/pgSQL call; the service is bounded: saturation and lock timeouts answer 503 with "
    "Retry-After."
)


def pool_conninfo(settings: Settings) -> str:
    """The connection string of the pool: the configured one plus application_name and timeouts."""
    params: dict[str, Any] = conninfo_to_dict(settings.database_url or "")
    params.setdefault("application_name", "tistate-http")
    options = [f"-c tistate.notify_events={settings.notify_events}"]
    if settings.statement_timeout is not None:
        options.append(f"-c statement_timeout={int(settings.statement_timeout * 1000)}")
    params["options"] = " ".join([params.get("options", ""), *options]).strip()
    return make_conninfo(**params)


def _make_client(settings: Settings) -> AsyncClient:
    return AsyncClient(
        pool_conninfo(settings),
        min_size=settings.pool_size,
        max_size=settings.pool_size,
        timeout=settings.pool_timeout,
        max_waiting=settings.pool_max_waiting,
        prepare_threshold=DEFAULT_PREPARE_THRESHOLD if settings.prepared_statements else None,
        check_schema=False,  # /ready reports the schema; the process starts regardless
    )


def _start_relay(settings: Settings, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """The notification relay of this process, when its sessions write to the outbox."""
    if settings.notify_events != "relay" or not settings.database_url:
        return None
    relay = NotificationRelay(settings.database_url, interval=settings.relay_interval)
    return asyncio.create_task(relay.run(stop), name="tistate-notification-relay")


async def _refresh_pool_metrics(metrics: Metrics, stop: asyncio.Event) -> None:
    """With several workers /metrics sums every worker's pool gauges: keep this one's current."""
    while not stop.is_set():
        metrics.refresh_pool()
        try:
            await asyncio.wait_for(stop.wait(), POOL_METRICS_INTERVAL)
        except TimeoutError:
            continue


def _pool_stats(app: FastAPI) -> Mapping[str, int] | None:
    client: AsyncClient | None = getattr(app.state, "client", None)
    if client is None or client.pool is None:
        return None
    return client.pool.get_stats()


def _heartbeats(app: FastAPI, settings: Settings) -> HeartbeatBatcher:
    return HeartbeatBatcher(app.state.client, settings.heartbeat_batch, app.state.metrics)


def create_app(settings: Settings, *, client: AsyncClient | None = None) -> FastAPI:
    """The ASGI app. Without `client`, the lifespan opens (and closes) a pool from `settings`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = client is None
        tune_malloc()
        tune_gc()
        app.state.client = _make_client(settings) if owned else client
        if owned:
            await app.state.client.open()
            app.state.heartbeats = _heartbeats(app, settings)
        if settings.insecure_no_auth:
            log.warning(
                "AUTHENTICATION IS DISABLED (--insecure-no-auth): anyone who can reach this port "
                "can change any task instance. Use only for a local demo."
            )
        log.info(
            "tistate http service ready",
            extra={
                "pool_size": settings.pool_size,
                "pool_max_waiting": settings.pool_max_waiting,
                "pool_timeout": settings.pool_timeout,
                "admission_limit": settings.admission_limit,
                "lock_timeout": settings.lock_timeout,
                "heartbeat_batch": settings.heartbeat_batch,
            },
        )
        relay_stop = asyncio.Event()
        relay = _start_relay(settings, relay_stop)
        watcher = (
            asyncio.create_task(
                watch_compatibility(app, settings.compatibility_interval, relay_stop)
            )
            if settings.compatibility_interval > 0
            else None
        )
        metrics: Metrics = app.state.metrics
        refresher = (
            asyncio.create_task(_refresh_pool_metrics(metrics, relay_stop))
            if metrics.multiprocess
            else None
        )
        try:
            yield
        finally:
            relay_stop.set()
            if relay is not None:
                await relay
            if refresher is not None:
                await refresher
            if watcher is not None:
                await watcher
            await forward.close(app)
            await app.state.heartbeats.aclose()
            if owned:
                await app.state.client.close()
            metrics.worker_stopped()
            log.info("tistate http service stopped")

    app = FastAPI(
        title="tistate",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.client = client
    if not settings.insecure_no_auth:
        # keys are read (a JWKS URL fetched) now, not on the first request
        app.state.token_cache = TokenCache(settings)
    app.state.metrics = Metrics(lambda: _pool_stats(app))
    if client is not None:  # else made with the pool, in the lifespan
        app.state.heartbeats = _heartbeats(app, settings)
    # first: they are most of the requests, and the router tries its routes in order
    app.router.routes[0:0] = execution_routes
    app.include_router(ops_router)
    install_handlers(app)
    forward.install(app)
    refresh_signer = (
        make_signer(settings) if settings.token_refresh and not settings.insecure_no_auth else None
    )
    app.add_middleware(TokenRefreshMiddleware, signer=refresh_signer, metrics=app.state.metrics)
    app.add_middleware(CompatibilityGate, state=app.state, retry_after=settings.retry_after)
    app.state.body_budget = BodyBudget(settings.body_memory_bytes)
    app.add_middleware(
        RequestMiddleware,
        metrics=app.state.metrics,
        budget=app.state.body_budget,
        admission_limit=settings.admission_limit,
        retry_after=settings.retry_after,
        api_version=API_VERSION,
    )

    def openapi() -> dict[str, Any]:
        return build_openapi(app, execution_docs.routes)

    app.openapi = openapi  # type: ignore[method-assign]
    return app
