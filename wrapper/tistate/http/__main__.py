"""`python -m tistate.http`: serve with settings from TISTATE_* variables only."""

from __future__ import annotations

from .server import serve
from .settings import Settings

if __name__ == "__main__":
    serve(Settings.from_env())
