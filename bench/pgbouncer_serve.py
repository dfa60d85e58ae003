"""Serve tistate's own app behind PgBouncer: `tistate serve` with prepare_threshold=None.

PgBouncer in transaction-pooling mode (1.18 here) cannot keep server-side prepared statements, so
the pool must not prepare. `tistate serve` has no option for it yet, so this builds the same app
with tistate.http.create_app(settings, client=AsyncClient(..., prepare_threshold=None)) and runs
it with tistate's own uvicorn configuration. Settings come from the TISTATE_* variables, as for
`python -m tistate.http`.

Run: TISTATE_DATABASE_URL=postgresql://...@127.0.0.1:<pgbouncer port>/db \
     python -m bench.pgbouncer_serve --port 8080
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.types import Message, Receive, Scope, Send

from tistate.client import AsyncClient
from tistate.http import Settings, create_app
from tistate.http.app import pool_conninfo
from tistate.http.logs import configure_logging
from tistate.http.server import uvicorn_config


def main(argv: list[str]) -> None:
    overrides: dict[str, object] = {}
    if "--port" in argv:
        overrides["port"] = int(argv[argv.index("--port") + 1])
    if "--insecure-no-auth" in argv:
        overrides["insecure_no_auth"] = True
    settings = Settings.from_env(**overrides)
    client = AsyncClient(
        pool_conninfo(settings),
        min_size=settings.pool_size,
        max_size=settings.pool_size,
        timeout=settings.pool_timeout,
        max_waiting=settings.pool_max_waiting,
        prepare_threshold=None,
        check_schema=False,
    )
    app = create_app(settings, client=client)

    async def with_pool(scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with our pool opened at lifespan startup and closed after shutdown."""
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return

        async def receive_opening() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await client.open()
            return message

        async def send_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await client.close()
            await send(message)

        await app(scope, receive_opening, send_closing)

    configure_logging(settings.log_level)
    config = uvicorn_config(settings)
    config.app = with_pool
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main(sys.argv[1:])
