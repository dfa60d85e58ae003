"""`python -m tistate ...`: the same CLI as the `tistate` console script."""

from tistate.cli import app

if __name__ == "__main__":
    app(prog_name="tistate")
