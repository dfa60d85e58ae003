"""The `tistate` command line (typer).

Every module of this package that does not start with "_" defines `register(app)`, which adds its
command group or commands; a new module (e.g. `serve.py`, `bench.py`) is picked up without editing
this file. Common options and the error handling live in `_common.py`.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from .. import __version__

__all__ = ["app"]

app = typer.Typer(
    name="tistate",
    help="Task-instance state transitions and asset events inside PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tistate {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """tistate: Airflow 3 task-instance transitions as single PostgreSQL function calls."""


for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}").register(app)
