"""Client (sync) and AsyncClient: one method per public SQL function, over a psycopg 3 pool.

    with tistate.Client("postgresql://...") as client:
        run = client.create_dag_run("producer", "manual__1")
        client.ti_run(run[0].ti_id, TIEnterRunningPayload(hostname=..., unixname=..., pid=...,
                                                           start_date=...))
        result = client.ti_update_state(run[0].ti_id, TISuccessStatePayload(end_date=...))

Each call is one statement on an autocommit connection, so one transaction and one round trip.
`client.transaction()` yields a client bound to one connection inside BEGIN ... COMMIT, so a caller
can group calls atomically. Opening compares `schema_version()` with the bundled migrations and
raises SchemaOutdatedError ("run `tistate db migrate`") when the database is behind.

The pool waits at most `timeout` seconds for a free connection, then raises PoolExhaustedError (a
RetryableError); `prepare_threshold=None` disables server-side prepared statements for PgBouncer in
transaction-pooling mode.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from . import _db, migrate, models
from .errors import (
    SchemaOutdatedError,
    translate_errors,
)

__all__ = ["AsyncClient", "Client", "check_schema_version"]

log = logging.getLogger("tistate")
T = TypeVar("T")
Row = dict[str, Any]
AnyConnection = psycopg.Connection[Any]
AnyAsyncConnection = psycopg.AsyncConnection[Any]
LockTimeout = timedelta | float | None

DEFAULT_PREPARE_THRESHOLD: int | None = 5


def check_schema_version(found: int, expected: int | None = None) -> None:
    """SchemaOutdatedError if the database is behind the bundled migrations; a warning if ahead."""
    expected = migrate.latest_version() if expected is None else expected
    if found < expected:
        raise SchemaOutdatedError(
            f"the database schema is at version {found}, this tistate needs {expected}",
            detail={"reason": "schema_outdated", "found": found, "expected": expected},
            hint="run `tistate db migrate`",
        )
    if found > expected:
        log.warning(
            "the database schema (version %s) is newer than this tistate (%s); upgrade tistate",
            found,
            expected,
        )


def _connect_kwargs(prepare_threshold: int | None) -> dict[str, Any]:
    return {"autocommit": True, "prepare_threshold": prepare_threshold}


async def _fetch(conn: AnyAsyncConnection, call: _db.Call[Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(call.query, call.params)
        return await cur.fetchall()


class Client:
    """Synchronous tistate client over a psycopg_pool.ConnectionPool (or one bound connection)."""

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        max_waiting: int = 0,
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
        check_schema: bool = True,
        connection: AnyConnection | None = None,
    ) -> None:
        """`conninfo` falls back to TISTATE_DATABASE_URL, then libpq's PG* variables.

        `timeout` bounds the wait for a pooled connection; `max_waiting` (0: unbounded) bounds the
        queue of waiting callers. With `connection`, the client uses that connection only.
        """
        self.conninfo = _db.database_url(conninfo)
        self._check_schema = check_schema
        self._prepare_threshold = prepare_threshold
        self._connection_: AnyConnection | None = connection
        self._pool: ConnectionPool[AnyConnection] | None = None
        if connection is None:
            self._pool = ConnectionPool(
                self.conninfo,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                max_waiting=max_waiting,
                kwargs=_connect_kwargs(prepare_threshold),
                open=False,
                name="tistate",
            )

    @classmethod
    def connect(cls, conninfo: str | None = None, **options: Any) -> Client:
        """A new client, opened (schema version checked)."""
        client = cls(conninfo, **options)
        client.open()
        return client

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        if self._check_schema:
            if self._connection_ is not None:
                check_schema_version(self.schema_version())
            else:
                # A direct connection first: an unreachable server then reports libpq's own
                # message instead of a pool timeout.
                with (
                    translate_errors(),
                    psycopg.connect(
                        self.conninfo, **_connect_kwargs(self._prepare_threshold)
                    ) as conn,
                ):
                    row = conn.execute(_db.SCHEMA_VERSION).fetchone()
                check_schema_version(int(row[0]) if row else 0)
        if self._pool is not None:
            with translate_errors():
                self._pool.open()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Self:
        if self._pool is not None and self._pool.closed:
            self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pool(self) -> ConnectionPool[AnyConnection] | None:
        return self._pool

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _connection(self) -> Iterator[AnyConnection]:
        if self._connection_ is not None:
            yield self._connection_
            return
        assert self._pool is not None
        with self._pool.connection() as conn:
            yield conn

    def _run(self, call: _db.Call[T]) -> T:
        with (
            translate_errors(),
            self._connection() as conn,
            conn.cursor(row_factory=dict_row) as cur,
        ):
            cur.execute(call.query, call.params)
            rows: list[Row] = cur.fetchall()
        return call.parse(rows)

    @contextmanager
    def transaction(self) -> Iterator[Client]:
        """A client bound to one connection inside one transaction (committed on success)."""
        with translate_errors(), self._connection() as conn, conn.transaction():
            yield Client(
                self.conninfo,
                connection=conn,
                check_schema=False,
                prepare_threshold=self._prepare_threshold,
            )

    # ------------------------------------------------------------------ the SQL API
    def schema_version(self) -> int:
        return self._run(_db.schema_version())

    def compatibility_problems(self) -> list[str]:
        """Why tistate cannot run safely on this database now (empty when it can)."""
        return self._run(_db.compatibility_problems())

    def define_dag(self, dag: models.DagDefinition | Mapping[str, Any]) -> models.DefineDagResult:
        return self._run(_db.define_dag(dag))

    def create_dag_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        logical_date: datetime | None = None,
        conf: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        partition_key: str | None = None,
    ) -> list[models.DagRunTask]:
        return self._run(_db.create_dag_run(dag_id, run_id, logical_date, conf, now, partition_key))

    def ti_run(
        self,
        ti_id: UUID | str,
        payload: models.TIEnterRunningPayload | Mapping[str, Any],
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.RunContext:
        return self._run(_db.ti_run(ti_id, payload, now, lock_timeout))

    def ti_update_state(
        self,
        ti_id: UUID | str,
        payload: models.TIStateUpdate | Mapping[str, Any],
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.StateUpdateResult:
        return self._run(_db.ti_update_state(ti_id, payload, now, lock_timeout))

    def ti_heartbeat(
        self,
        ti_id: UUID | str,
        hostname: str,
        pid: int,
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> None:
        self._run(_db.ti_heartbeat(ti_id, hostname, pid, now, lock_timeout))

    def ti_heartbeat_batch(
        self, items: Sequence[tuple[UUID | str, str, int]], *, now: datetime | None = None
    ) -> list[bool]:
        """Heartbeats (ti_id, hostname, pid) in one statement, without waiting for a row: whether
        each was recorded. Send the others alone with `ti_heartbeat` (it waits, or explains)."""
        return self._run(_db.ti_heartbeat_batch(items, now))

    def ti_queue(
        self,
        ti_id: UUID | str,
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.StateUpdateResult:
        return self._run(_db.ti_queue(ti_id, now, lock_timeout))

    def ti_skip_downstream(
        self,
        ti_id: UUID | str,
        tasks: models.TISkippedDownstreamTasksStatePayload | Sequence[str | tuple[str, int]],
        *,
        now: datetime | None = None,
    ) -> int:
        return self._run(_db.ti_skip_downstream(ti_id, tasks, now))

    def ti_mark(
        self,
        ti_id: UUID | str,
        state: str,
        *,
        reason: str | None = None,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.StateUpdateResult:
        return self._run(_db.ti_mark(ti_id, state, reason, now, lock_timeout))

    def emit_asset_event(
        self,
        name: str | None,
        uri: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        partition_key: str | None = None,
        now: datetime | None = None,
    ) -> models.AssetEventResult:
        return self._run(_db.emit_asset_event(name, uri, extra, partition_key, now))

    # ------------------------------------------------------------------ reads
    def ti_get(self, ti_id: UUID | str, *, log_limit: int = 20) -> models.TaskInstanceDetail:
        return self._run(_db.ti_get(ti_id, log_limit))

    def ti_list(
        self,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[models.TaskInstanceSummary]:
        return self._run(_db.ti_list(dag_id, run_id, state, limit))

    def dag_list(self) -> list[models.DagInfo]:
        return self._run(_db.dag_list())

    def asset_list(self) -> list[models.AssetInfo]:
        return self._run(_db.asset_list())

    def asset_events(
        self,
        *,
        name: str | None = None,
        uri: str | None = None,
        ti_id: UUID | str | None = None,
        limit: int = 50,
    ) -> list[models.AssetEventInfo]:
        return self._run(_db.asset_events(name, uri, ti_id, limit))

    def relay_notifications(self, limit: int = 1000) -> int:
        """Announce up to `limit` committed outbox rows on tistate_events; the count sent."""
        return self._run(_db.relay_notifications(limit))

    def notification_backlog(self) -> models.NotificationBacklog:
        return self._run(_db.notification_backlog())


class AsyncClient:
    """The asyncio twin of Client, over psycopg_pool.AsyncConnectionPool.

    `async with AsyncClient(url) as client: ...`, or `await client.open()` / `await client.close()`.
    """

    def __init__(
        self,
        conninfo: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        max_waiting: int = 0,
        prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
        check_schema: bool = True,
        connection: AnyAsyncConnection | None = None,
    ) -> None:
        self.conninfo = _db.database_url(conninfo)
        self._check_schema = check_schema
        self._prepare_threshold = prepare_threshold
        self._connection_: AnyAsyncConnection | None = connection
        self._pool: AsyncConnectionPool[AnyAsyncConnection] | None = None
        if connection is None:
            self._pool = AsyncConnectionPool(
                self.conninfo,
                min_size=min_size,
                max_size=max_size,
                timeout=timeout,
                max_waiting=max_waiting,
                kwargs=_connect_kwargs(prepare_threshold),
                open=False,
                name="tistate-async",
            )

    @classmethod
    async def connect(cls, conninfo: str | None = None, **options: Any) -> AsyncClient:
        client = cls(conninfo, **options)
        await client.open()
        return client

    # ------------------------------------------------------------------ lifecycle
    async def open(self) -> None:
        if self._check_schema:
            if self._connection_ is not None:
                check_schema_version(await self.schema_version())
            else:
                with translate_errors():
                    async with await psycopg.AsyncConnection.connect(
                        self.conninfo, **_connect_kwargs(self._prepare_threshold)
                    ) as conn:
                        cur = await conn.execute(_db.SCHEMA_VERSION)
                        row = await cur.fetchone()
                check_schema_version(int(row[0]) if row else 0)
        if self._pool is not None:
            with translate_errors():
                await self._pool.open()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def __aenter__(self) -> Self:
        if self._pool is not None and self._pool.closed:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def pool(self) -> AsyncConnectionPool[AnyAsyncConnection] | None:
        return self._pool

    # ------------------------------------------------------------------ plumbing
    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AnyAsyncConnection]:
        if self._connection_ is not None:
            yield self._connection_
            return
        assert self._pool is not None
        async with self._pool.connection() as conn:
            yield conn

    async def _run(self, call: _db.Call[T]) -> T:
        # What `with translate: async with self._connection() as conn, cursor` does, one context
        # manager fewer on the hot path (every HTTP request runs this once). translate_errors is a
        # plain context manager: it catches what the awaits inside it raise, sync or async.
        with translate_errors():
            if self._connection_ is not None:
                rows = await _fetch(self._connection_, call)
            else:
                assert self._pool is not None
                async with self._pool.connection() as conn:
                    rows = await _fetch(conn, call)
        return call.parse(rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncClient]:
        """A client bound to one connection inside one transaction (committed on success)."""
        with translate_errors():
            async with self._connection() as conn, conn.transaction():
                yield AsyncClient(
                    self.conninfo,
                    connection=conn,
                    check_schema=False,
                    prepare_threshold=self._prepare_threshold,
                )

    # ------------------------------------------------------------------ the SQL API
    async def schema_version(self) -> int:
        return await self._run(_db.schema_version())

    async def compatibility_problems(self) -> list[str]:
        """Why tistate cannot run safely on this database now (empty when it can)."""
        return await self._run(_db.compatibility_problems())

    async def define_dag(
        self, dag: models.DagDefinition | Mapping[str, Any]
    ) -> models.DefineDagResult:
        return await self._run(_db.define_dag(dag))

    async def create_dag_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        logical_date: datetime | None = None,
        conf: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        partition_key: str | None = None,
    ) -> list[models.DagRunTask]:
        return await self._run(
            _db.create_dag_run(dag_id, run_id, logical_date, conf, now, partition_key)
        )

    async def ti_run(
        self,
        ti_id: UUID | str,
        payload: models.TIEnterRunningPayload | Mapping[str, Any],
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.RunContext:
        return await self._run(_db.ti_run(ti_id, payload, now, lock_timeout))

    async def ti_update_state(
        self,
        ti_id: UUID | str,
        payload: models.TIStateUpdate | Mapping[str, Any],
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.StateUpdateResult:
        return await self._run(_db.ti_update_state(ti_id, payload, now, lock_timeout))

    async def ti_heartbeat(
        self,
        ti_id: UUID | str,
        hostname: str,
        pid: int,
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> None:
        await self._run(_db.ti_heartbeat(ti_id, hostname, pid, now, lock_timeout))

    async def ti_heartbeat_batch(
        self, items: Sequence[tuple[UUID | str, str, int]], *, now: datetime | None = None
    ) -> list[bool]:
        """Heartbeats (ti_id, hostname, pid) in one statement, without waiting for a row: whether
        each was recorded. Send the others alone with `ti_heartbeat` (it waits, or explains)."""
        return await self._run(_db.ti_heartbeat_batch(items, now))

    async def ti_queue(
        self,
        ti_id: UUID | str,
        *,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.StateUpdateResult:
        return await self._run(_db.ti_queue(ti_id, now, lock_timeout))

    async def ti_skip_downstream(
        self,
        ti_id: UUID | str,
        tasks: models.TISkippedDownstreamTasksStatePayload | Sequence[str | tuple[str, int]],
        *,
        now: datetime | None = None,
    ) -> int:
        return await self._run(_db.ti_skip_downstream(ti_id, tasks, now))

    async def ti_mark(
        self,
        ti_id: UUID | str,
        state: str,
        *,
        reason: str | None = None,
        now: datetime | None = None,
        lock_timeout: LockTimeout = None,
    ) -> models.StateUpdateResult:
        return await self._run(_db.ti_mark(ti_id, state, reason, now, lock_timeout))

    async def emit_asset_event(
        self,
        name: str | None,
        uri: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        partition_key: str | None = None,
        now: datetime | None = None,
    ) -> models.AssetEventResult:
        return await self._run(_db.emit_asset_event(name, uri, extra, partition_key, now))

    # ------------------------------------------------------------------ reads
    async def ti_get(self, ti_id: UUID | str, *, log_limit: int = 20) -> models.TaskInstanceDetail:
        return await self._run(_db.ti_get(ti_id, log_limit))

    async def ti_list(
        self,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        state: str | None = None,
        limit: int = 100,
    ) -> list[models.TaskInstanceSummary]:
        return await self._run(_db.ti_list(dag_id, run_id, state, limit))

    async def dag_list(self) -> list[models.DagInfo]:
        return await self._run(_db.dag_list())

    async def asset_list(self) -> list[models.AssetInfo]:
        return await self._run(_db.asset_list())

    async def asset_events(
        self,
        *,
        name: str | None = None,
        uri: str | None = None,
        ti_id: UUID | str | None = None,
        limit: int = 50,
    ) -> list[models.AssetEventInfo]:
        return await self._run(_db.asset_events(name, uri, ti_id, limit))

    async def relay_notifications(self, limit: int = 1000) -> int:
        """Announce up to `limit` committed outbox rows on tistate_events; the count sent."""
        return await self._run(_db.relay_notifications(limit))

    async def notification_backlog(self) -> models.NotificationBacklog:
        return await self._run(_db.notification_backlog())
