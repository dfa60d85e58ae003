"""`python -m tistate.http`: serve with settings from TISTATE_* variables only.

`python -m tistate.http openapi [PATH]` writes the OpenAPI document instead (default
docs/openapi.json, the committed copy that tests/test_http.py compares with the served one).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .app import create_app
from .openapi import write_openapi
from .server import serve
from .settings import Settings


def main(argv: list[str]) -> None:
    if argv[:1] == ["openapi"]:
        path = Path(argv[1] if len(argv) > 1 else "docs/openapi.json")
        settings = Settings(database_url="postgresql://unused", insecure_no_auth=True)
        write_openapi(create_app(settings), path)
        print(f"wrote {path}")
        return
    serve(Settings.from_env())


if __name__ == "__main__":
    main(sys.argv[1:])
