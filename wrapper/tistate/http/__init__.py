"""tistate's HTTP service: Airflow Execution API compatible, async, bounded, authenticated.

`create_app(Settings(...))` builds the ASGI app; `serve(settings)` runs it on uvicorn (what
`tistate serve` calls).
"""

from __future__ import annotations

from .app import create_app
from .settings import Settings

__all__ = ["Settings", "create_app"]
