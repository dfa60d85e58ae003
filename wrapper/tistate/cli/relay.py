"""`tistate relay`: announce outbox rows on tistate_events (tistate.notify_events = relay)."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from .. import _db
from ..relay import NotificationRelay
from ._common import DatabaseUrl, JsonOutput, console, handle_errors, open_client, print_json


def register(app: typer.Typer) -> None:
    app.command("relay")(relay_command)


@handle_errors
def relay_command(
    database_url: DatabaseUrl = None,
    once: Annotated[
        bool, typer.Option("--once", help="Drain the outbox once, print the count and exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between relay transactions.", min=0.001)
    ] = 0.1,
    batch: Annotated[
        int, typer.Option("--batch", help="Outbox rows per relay transaction.", min=1)
    ] = 1000,
    json_output: JsonOutput = False,
) -> None:
    """Send the notifications of committed transitions written to the outbox
    (tistate.notify_events = relay), until interrupted; `tistate serve` runs the same relay."""
    if once:
        sent = 0
        with open_client(database_url) as client:
            while (count := client.relay_notifications(batch)) > 0:
                sent += count
            backlog = client.notification_backlog()
        if json_output:
            print_json({"sent": sent, "backlog": backlog})
        else:
            console.print(f"sent {sent} notifications; {backlog.transactions} outbox rows remain")
        return
    relay = NotificationRelay(_db.database_url(database_url), interval=interval, batch=batch)
    console.print(f"relaying tistate_events every {interval} s (Ctrl-C stops)")
    asyncio.run(_run_until_signalled(relay))
    console.print(f"stopped; sent {relay.sent} notifications")


async def _run_until_signalled(relay: NotificationRelay) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await relay.run(stop)
