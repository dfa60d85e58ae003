"""What every command shares: --database-url, --json, output helpers and error handling."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import psycopg
import typer
import yaml
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

from .. import _db, embedded, models
from ..client import Client
from ..errors import InvalidPayloadError, TistateError, UsageError, translate_errors
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
        help="PostgreSQL URL (default: $TISTATE_DATABASE_URL, else the embedded database "
        "`tistate demo` created, if there is one, else libpq's PG* variables).",
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


#: Hints the SQL gives in its own terms, said as the CLI command that does it.
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


#: libpq variables that name a server: when one is set, the user means libpq's defaults.
_LIBPQ_TARGET_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGSERVICE")


def embedded_fallback(database_url: str | None) -> Path | None:
    """The embedded data directory to use: none configured, no PG* target, and `demo` made one."""
    if _db.database_url(database_url) or any(os.environ.get(v) for v in _LIBPQ_TARGET_ENV):
        return None
    directory = embedded.data_dir()
    return directory if embedded.exists(directory) else None


@contextmanager
def database(database_url: str | None) -> Iterator[str]:
    """The URL a command uses; the embedded server is started for the block when it is that."""
    directory = embedded_fallback(database_url)
    if directory is None:
        yield _db.database_url(database_url)
        return
    with embedded.embedded_database(directory) as url:
        yield url


@contextmanager
def open_client(database_url: str | None, *, check_schema: bool = True) -> Iterator[Client]:
    """A client over one direct connection (a CLI command makes a handful of calls)."""
    with ExitStack() as stack:
        url = stack.enter_context(database(database_url))
        with translate_errors():
            conn = psycopg.connect(url, autocommit=True)
        stack.callback(conn.close)
        client = Client(url or None, connection=conn, check_schema=check_schema)
        client.open()
        yield client


# ------------------------------------------------------------------------------ timestamps
#: An ISO 8601 timestamp with an offset, as PostgreSQL's jsonb and pydantic write them.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:?\d\d)?)")
#: Keys whose values are the user's own data: printed as given, never reformatted.
_USER_DATA_KEYS = frozenset({"extra", "conf", "payload"})


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def utc_text(moment: datetime, *, seconds_only: bool) -> str:
    """RFC 3339 in UTC with `Z`: to the second for people, to the microsecond for scripts."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if not seconds_only and moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def to_jsonable(value: Any) -> Any:
    """JSON-ready data; every timestamp (outside user data) as `2026-01-02T03:04:05.678901Z`."""
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(mode="json"))
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: v if k in _USER_DATA_KEYS else to_jsonable(v) for k, v in value.items()}
    moment = _as_datetime(value)
    if moment is not None and moment.tzinfo is not None:
        return utc_text(moment, seconds_only=False)
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


#: A UUID, printed whole on one line (36 characters).
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


#: Narrowest a folded column gets before the table drops columns to fit the terminal.
_MIN_FOLDED = 12


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A table for people: ids and timestamps never wrapped, other cells folded to fit.

    Columns are given most important first; when even folded they do not fit the terminal, the
    last ones are left out and the caption says which (`--json` has every field).
    """
    cells = [[cell(v) for v in row] for row in rows]
    whole: list[bool] = []
    needed: list[int] = []
    for index, column in enumerate(columns):
        values = [row[index] for row in cells]
        keep = any(_UUID.fullmatch(v) or _TIMESTAMP.fullmatch(v) for v in values)
        natural = max([len(column), *(len(v) for v in values)])
        whole.append(keep)
        needed.append(natural if keep else min(natural, max(_MIN_FOLDED, len(column) // 2)))
    shown = len(columns)
    while shown > 1 and sum(needed[:shown]) + 2 * shown + 1 > console.width:
        shown -= 1
    hidden = list(columns[shown:])
    result = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1),
        caption=f"not shown at this width: {', '.join(hidden)} (see --json)" if hidden else None,
        caption_justify="left",
    )
    for index, column in enumerate(columns[:shown]):
        if whole[index]:
            result.add_column(column, no_wrap=True, min_width=needed[index])
        else:
            result.add_column(column, overflow="fold", min_width=needed[index])
    for row in cells:
        result.add_row(*row[:shown])
    return result


def cell(value: Any) -> str:
    """One value as a table shows it: '-' for none, yes/no, timestamps to the second in UTC."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=str) if value else "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    moment = _as_datetime(value)
    if moment is not None and moment.tzinfo is not None:
        return utc_text(moment, seconds_only=True)
    return str(value)


def load_document(path: Path) -> Any:
    """A JSON or YAML file ('-' for stdin); a missing file is a UsageError, a syntax error (or
    NaN, Infinity, a YAML alias) an InvalidPayloadError."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="give the path of a JSON or YAML file, or '-' to read standard input",
        ) from None
    except UnicodeDecodeError:
        raise UsageError(f"cannot read {path}: not UTF-8 text") from None
    return parse_document(text, str(path))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def _finite(value: Any, source: str) -> Any:
    found = models.json_problem(value, models.non_finite)  # YAML's .nan/.inf: jsonb has none
    if found is not None:
        path = found[0].lstrip(".") or "(root)"
        raise InvalidPayloadError(
            f"{source}: {path}: NaN and infinite numbers cannot be stored (JSON has none)",
            detail={"reason": "invalid_payload", "field": path, "message": "not a finite number"},
            hint="use a finite number, null or a string",
        )
    return value


def parse_document(text: str, source: str) -> Any:
    if source.endswith((".yaml", ".yml")):
        return _finite(_yaml(text, source), source)
    try:
        return _finite(json.loads(text, parse_constant=_refuse_constant), source)
    except ValueError as exc:
        if not isinstance(exc, json.JSONDecodeError):
            raise InvalidPayloadError(
                f"{source}: {exc}",
                detail={"reason": "invalid_payload", "field": "", "message": str(exc)},
            ) from None
        if source.endswith(".json"):
            raise InvalidPayloadError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                detail={"reason": "invalid_payload", "field": "", "message": exc.msg},
                hint="fix the JSON syntax",
            ) from None
        return _finite(_yaml(text, source), source)


class _AliasRefused(yaml.composer.ComposerError):
    pass


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without aliases: `*name` is refused, so a small file cannot expand into
    gigabytes (nested aliases, the "billion laughs"). tistate documents never need one."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _AliasRefused(
                None, None, "YAML aliases (*name) are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)


def _yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader subclass
    except _AliasRefused as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise InvalidPayloadError(
            f"{source}: line {line}: YAML aliases (*name) are not accepted",
            detail={"reason": "invalid_payload", "field": "", "message": "YAML alias"},
            hint="write the value out where the alias stands (aliases can expand a small file "
            "into gigabytes, so tistate refuses them)",
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidPayloadError(
            f"{source} is neither valid JSON nor YAML: {exc}",
            detail={"reason": "invalid_payload", "field": "", "message": "syntax error"},
        ) from None


def parse_json_option(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidPayloadError(
            f"{name} is not valid JSON: {exc.msg}",
            detail={"reason": "invalid_payload", "field": name.lstrip("-"), "message": exc.msg},
        ) from None
    except ValueError as exc:
        raise InvalidPayloadError(
            f"{name}: {exc}",
            detail={"reason": "invalid_payload", "field": name.lstrip("-"), "message": str(exc)},
            hint="use a finite number, null or a string",
        ) from None


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayloadError(
            f"{what} must be a JSON object",
            detail={"reason": "invalid_payload", "field": "", "message": "must be a JSON object"},
        )
    return value
