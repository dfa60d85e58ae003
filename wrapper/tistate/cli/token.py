"""`tistate token mint`."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated
from uuid import UUID

import typer

from .. import tokens
from ..errors import UsageError
from ._common import handle_errors

#: The algorithms `tistate serve` accepts unless told otherwise (Settings.jwt_algorithms).
SERVED_ALGORITHMS = ("HS256", "HS512")
ALGORITHMS_ENV = "TISTATE_JWT_ALGORITHMS"

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
    algorithm: Annotated[
        str,
        typer.Option(
            "--algorithm",
            help=f"{' or '.join(SERVED_ALGORITHMS)}: what `tistate serve` accepts by default "
            f"(or what {ALGORITHMS_ENV} lists).",
        ),
    ] = "HS256",
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", envvar=tokens.SECRET_ENV, show_envvar=True, help="Signing secret."
        ),
    ] = None,
) -> None:
    """Print a signed token for one task instance (sign with the secret `serve` has)."""
    served = (
        tuple(a.strip().upper() for a in os.environ.get(ALGORITHMS_ENV, "").split(",") if a.strip())
        or SERVED_ALGORITHMS
    )
    if algorithm.upper() not in served:
        raise UsageError(
            f"--algorithm {algorithm}: `tistate serve` accepts {', '.join(served)}",
            hint=f"use {' or '.join(served)}, or set {ALGORITHMS_ENV} for both serve and this",
        )
    algorithm = algorithm.upper()
    token = tokens.mint(
        ti_id,
        secret=secret,
        ttl=timedelta(seconds=ttl),
        audience=audience or None,
        issuer=issuer,
        algorithm=algorithm,
    )
    typer.echo(token)
