"""`tistate token mint`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

import typer

from .. import tokens
from ._common import handle_errors

token_app = typer.Typer(help="Per-task-instance JWTs for the HTTP service.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")


@token_app.command("mint")
@handle_errors
def mint_command(
    ti_id: Annotated[UUID, typer.Argument(help="Task instance id (the token's subject).")],
    ttl: Annotated[int, typer.Option("--ttl", help="Validity in seconds.", min=1)] = 600,
    audience: Annotated[str, typer.Option("--audience")] = tokens.DEFAULT_AUDIENCE,
    issuer: Annotated[str | None, typer.Option("--issuer")] = None,
    algorithm: Annotated[str, typer.Option("--algorithm", help="HS256, HS384 or HS512.")] = "HS256",
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", envvar=tokens.SECRET_ENV, show_envvar=True, help="Signing secret."
        ),
    ] = None,
) -> None:
    """Print a signed token for one task instance."""
    token = tokens.mint(
        ti_id,
        secret=secret,
        ttl=timedelta(seconds=ttl),
        audience=audience or None,
        issuer=issuer,
        algorithm=algorithm,
    )
    typer.echo(token)
