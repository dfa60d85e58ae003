"""`tistate bench ...`: the benchmarks of a source checkout (`python -m bench ...`).

The bench (load generator, baselines, report) lives in the repository's `bench/` folder, not in
the wheel: it needs the checkout's extras (`pip install -e '.[bench]'`) and writes its results
next to it. This command finds that folder from the installed package (an editable install
points into the checkout), never from the current directory (which would run whatever `bench/` a
folder holds), and hands the arguments to its CLI.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer

from ._common import err_console

__all__ = ["register"]

_HELP = "Load and micro benchmarks of a source checkout (the same as `python -m bench ...`)."


def register(app: typer.Typer) -> None:
    app.command(
        "bench",
        help=_HELP,
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            "help_option_names": [],  # --help goes to the bench's own CLI
        },
        add_help_option=False,
    )(bench_command)


def _checkout_root() -> Path | None:
    """The checkout holding `bench/__main__.py` that this package was installed from (editable)."""
    checkout = Path(__file__).resolve().parents[3]  # wrapper/tistate/cli -> the checkout
    return checkout if (checkout / "bench" / "__main__.py").is_file() else None


def _bench_app() -> Any:
    root = _checkout_root()
    if root is None:
        err_console.print(
            "[bold red]error:[/] tistate bench runs the benchmarks of a source checkout, and none "
            "was found (the bench is not part of the installed package).",
            soft_wrap=True,
        )
        err_console.print(
            "  hint: in a clone of the repository, pip install -e '.[bench]', then run "
            "tistate bench --help there",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module("bench.__main__").app
    except ImportError as exc:
        err_console.print(
            f"[bold red]error:[/] the bench in {root} cannot be imported: {exc}", soft_wrap=True
        )
        err_console.print(
            "  hint: install its extras: pip install -e '.[bench]'", markup=False, soft_wrap=True
        )
        raise typer.Exit(2) from None


def bench_command(ctx: typer.Context) -> None:
    app = _bench_app()
    command = typer.main.get_command(app)
    command.main(args=list(ctx.args), prog_name="tistate bench", standalone_mode=True)
