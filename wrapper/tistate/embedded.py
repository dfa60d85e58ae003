"""A private PostgreSQL from the `pgserver` package, for `tistate demo` and `tistate serve`.

With no database URL configured, `embedded_database()` starts (or joins) a server in a per-user data
directory (TISTATE_DATA_DIR, else the platform's user data dir, e.g. ~/.local/share/tistate/pgdata),
creates the `tistate` database, migrates it and yields its URL. The server listens on a Unix socket
only and is stopped when the last process using it leaves the block. Once `tistate demo` has made
it (`exists()`), the other CLI commands use it when no database URL is configured, starting it for
the command. Resetting or removing it is deleting the directory (nothing else holds its data).

As root, pgserver runs PostgreSQL as the system user `pgserver` (created with useradd if missing)
and makes the directories leading to its binaries and to the data directory traversable (o+rx):
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import migrate
from .errors import DatabaseError, SchemaOutdatedError

__all__ = [
    "DATABASE_NAME",
    "DATA_DIR_ENV",
    "data_dir",
    "default_data_dir",
    "embedded_database",
    "exists",
]

DATA_DIR_ENV = "TISTATE_DATA_DIR"
DATABASE_NAME = "tistate"
log = logging.getLogger("tistate.embedded")


def data_dir() -> Path:
    """Where the embedded server keeps its data."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return default_data_dir()


def default_data_dir() -> Path:
    """Where the embedded server keeps its data when TISTATE_DATA_DIR is not set."""
    import platformdirs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return platformdirs.user_data_path("tistate") / "pgdata"


def exists(directory: Path | None = None) -> bool:
    """Whether an embedded cluster was initialised in `directory` (default: `data_dir()`)."""
    return (directory or data_dir()).expanduser().joinpath("PG_VERSION").is_file()


def _import_pgserver() -> Any:
    # pgserver resolves platformdirs' runtime dir at import time, which warns when XDG_RUNTIME_DIR
    # is unset (containers, CI).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    return pgserver


def _database_url(server_uri: str, database: str) -> str:
    params = conninfo_to_dict(server_uri)
    params["dbname"] = database
    params.pop("password", None)  # pgserver's URI carries an empty password; trust auth
    return make_conninfo(**params)  # type: ignore[arg-type]


@contextmanager
def embedded_database(
    directory: Path | None = None,
    *,
    migrate_schema: bool = True,
    on_applied: Callable[[migrate.Migration], None] | None = None,
) -> Iterator[str]:
    """Start (or join) the embedded server, migrate its `tistate` database, yield the URL."""
    path = (directory or data_dir()).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    pgserver = _import_pgserver()
    try:
        server = pgserver.get_server(path, cleanup_mode="stop")
    except Exception as exc:  # pgserver raises CalledProcessError, TimeoutExpired, OSError...
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {path}: {exc}",
            hint=f"see {path / 'log'}, or set TISTATE_DATABASE_URL to use your own server",
        ) from exc
    with server:
        admin_url = _database_url(server.get_uri(), "postgres")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
        url = _database_url(server.get_uri(), DATABASE_NAME)
        if migrate_schema:
            try:
                migrate.migrate(url, on_applied=on_applied)
            except migrate.MigrationError as exc:
                raise SchemaOutdatedError(
                    f"the embedded database in {path} does not match this tistate: {exc}",
                    hint=f"it was migrated by another version of tistate; remove {path} to start "
                    "afresh (its data is lost), or use that version",
                ) from exc
        log.info("embedded PostgreSQL running in %s", path)
        yield url
