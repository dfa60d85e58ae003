"""What every command shares: --database-url, --json, output helpers and error handling."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import psycopg
import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from .. import _db
from ..client import Client
from ..errors import InvalidPayloadError, TistateError, translate_errors
from ..migrate import MigrationError

P = ParamSpec("P")
R = TypeVar("R")

# Not a terminal (pipes, CI logs): wide lines rather than ids folded over several rows.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, width=_WIDTH)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=_db.DATABASE_URL_ENV,
        help="PostgreSQL URL (default: $TISTATE_DATABASE_URL, then libpq's PG* variables).",
        show_envvar=True,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
LockTimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--lock-timeout", help="Seconds to wait for the row lock (default: the SQL's 2 s).", min=0
    ),
]


def report_error(exc: TistateError) -> None:
    code = f" [{exc.code}]" if exc.code else ""
    err_console.print(f"[bold red]error{code}:[/] {exc.message}", markup=True, soft_wrap=True)
    field = exc.detail.get("field")
    if field:
        err_console.print(f"  field: {field}", markup=False)
    extra = {k: v for k, v in exc.detail.items() if k not in {"field", "message", "reason"}}
    if extra:
        err_console.print(f"  detail: {json.dumps(extra, default=str)}", markup=False)
    if exc.hint:
        err_console.print(f"  hint: {exc.hint}", markup=False)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command: a tistate error prints message, code and hint and exits with its code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except TistateError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except MigrationError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(8) from None
        except Exception as exc:  # never a traceback for a user
            err_console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", soft_wrap=True
            )
            raise typer.Exit(1) from None

    return wrapper


@contextmanager
def open_client(database_url: str | None, *, check_schema: bool = True) -> Iterator[Client]:
    """A client over one direct connection (a CLI command makes a handful of calls)."""
    url = _db.database_url(database_url)
    with translate_errors():
        conn = psycopg.connect(url, autocommit=True)
    try:
        client = Client(url, connection=conn, check_schema=check_schema)
        client.open()
        yield client
    finally:
        conn.close()


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    result = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*(_cell(v) for v in row))
    return result


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=str) if value else "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def load_document(path: Path) -> Any:
    """A JSON or YAML file ('-' for stdin); a syntax error is an InvalidPayloadError."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidPayloadError(
            f"cannot read {path}: {exc.strerror}",
            detail={"reason": "invalid_payload", "field": "", "message": "unreadable file"},
        ) from None
    return parse_document(text, str(path))


def parse_document(text: str, source: str) -> Any:
    if source.endswith((".yaml", ".yml")):
        return _yaml(text, source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if source.endswith(".json"):
            raise InvalidPayloadError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                detail={"reason": "invalid_payload", "field": "", "message": exc.msg},
                hint="fix the JSON syntax",
            ) from None
        return _yaml(text, source)


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidPayloadError(
            f"{source} is neither valid JSON nor YAML: {exc}",
            detail={"reason": "invalid_payload", "field": "", "message": "syntax error"},
        ) from None


def parse_json_option(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidPayloadError(
            f"{name} is not valid JSON: {exc.msg}",
            detail={"reason": "invalid_payload", "field": name.lstrip("-"), "message": exc.msg},
        ) from None


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayloadError(
            f"{what} must be a JSON object",
            detail={"reason": "invalid_payload", "field": "", "message": "must be a JSON object"},
        )
    return value
