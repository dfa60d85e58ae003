"""`tistate bench ...`: runs `python -m bench ...` of the source checkout, as a child process.

The bench (load generator, baselines, report) is not part of the product: it lives in the
repository's `bench/` folder, needs the checkout's extras (`pip install -e '.[bench]'`) and writes
its results next to it. From an editable install this command finds that checkout from the
installed package (never from the current directory, which would run whatever `bench/` a folder
holds) and runs `python -m bench` there in a child process, in the caller's directory (relative
paths mean what the user typed) with its exit code. A child, not an import: nothing of the bench
(matplotlib, uvloop, its sys.path) enters the product's process, and the bench runs exactly as
`python -m bench` does. Without a checkout it says where the bench lives.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from ._common import err_console

__all__ = ["register"]

_HELP = "Benchmarks of a source checkout: runs `python -m bench ...` there (not in the package)."


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


def bench_command(ctx: typer.Context) -> None:
    root = _checkout_root()
    if root is None:
        err_console.print(
            "[bold red]error:[/] the benchmarks are not part of the installed package: they live "
            "in a source checkout's bench/ folder and run as `python -m bench ...` there.",
            soft_wrap=True,
        )
        err_console.print(
            "  hint: git clone the repository, pip install -e '.[bench]' in it, then run "
            "python -m bench --help there",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    env = dict(os.environ)
    # The checkout first: its bench package and the tistate beside it, whatever the directory.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root), str(root / "wrapper"), env.get("PYTHONPATH")) if p
    )
    try:
        # -P: not the current directory first on sys.path (a folder of its own bench/).
        code = subprocess.call([sys.executable, "-P", "-m", "bench", *ctx.args], env=env)
    except KeyboardInterrupt:  # the child got the same SIGINT and ends on its own
        code = 130
    raise typer.Exit(code)
