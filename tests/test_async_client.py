"""AsyncClient: the same calls over an AsyncConnectionPool, errors, transaction(), the pool."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from tistate import AsyncClient, errors, migrate
from tistate.models import AssetProfile, TIEnterRunningPayload, TISuccessStatePayload

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAG = {
    "dag_id": "producer",
    "tasks": [
        {"task_id": f"t{i}", "outlets": [{"type": "Asset", "name": "a", "uri": "s3://a"}]}
        for i in range(5)
    ],
}
CONSUMER = {"dag_id": "consumer", "schedule": {"assets": [{"name": "a", "uri": "s3://a"}]}}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_lifecycle_and_concurrent_success(db_dsn: str, conn: Any) -> None:
    async def scenario() -> list[Any]:
        async with AsyncClient(db_dsn, max_size=5) as client:
            assert await client.schema_version() == migrate.latest_version()
            await client.define_dag(DAG)
            await client.define_dag(CONSUMER)
            tis = await client.create_dag_run("producer", "r1", now=NOW)
            running = TIEnterRunningPayload(hostname="h", unixname="u", pid=1, start_date=NOW)
            await asyncio.gather(*(client.ti_run(t.ti_id, running) for t in tis))
            done = TISuccessStatePayload(
                end_date=NOW + timedelta(seconds=1),
                task_outlets=[AssetProfile(type="Asset", name="a", uri="s3://a")],
            )
            return list(await asyncio.gather(*(client.ti_update_state(t.ti_id, done) for t in tis)))

    results = run(scenario())
    assert len(results) == 5
    assert all(r.applied and r.new_state == "success" for r in results)
    assert all(r.queued_dag_ids == ["consumer"] for r in results)
    events = conn.execute("SELECT count(*) FROM tistate_test.asset_event").fetchone()[0]
    assert events == 5


def test_async_errors_are_translated(db_dsn: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(db_dsn) as client:
            with pytest.raises(errors.NotFoundError):
                await client.ti_update_state(
                    uuid4(), TISuccessStatePayload(end_date=NOW), lock_timeout=0.1
                )
            with pytest.raises(errors.InvalidPayloadError):
                await client.ti_update_state(uuid4(), {"state": "nonsense"})

    run(scenario())


def test_async_transaction_rolls_back(db_dsn: str, conn: Any) -> None:
    async def scenario() -> None:
        async with AsyncClient(db_dsn) as client:
            await client.define_dag(DAG)
            async with client.transaction() as tx:
                await tx.create_dag_run("producer", "kept", now=NOW)
            with pytest.raises(errors.NotFoundError):
                async with client.transaction() as tx:
                    await tx.create_dag_run("producer", "lost", now=NOW)
                    await tx.create_dag_run("missing", "lost", now=NOW)

    run(scenario())
    assert conn.execute("SELECT run_id FROM dag_run").fetchall() == [("kept",)]


def test_async_pool_exhausted(db_dsn: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(db_dsn, min_size=1, max_size=1, timeout=0.2) as client:
            assert client.pool is not None
            async with client.pool.connection():
                with pytest.raises(errors.PoolExhaustedError):
                    await client.schema_version()
            assert await client.schema_version() == migrate.latest_version()

    run(scenario())


def test_async_schema_outdated(empty_db_dsn: str) -> None:
    async def scenario() -> None:
        await AsyncClient.connect(empty_db_dsn)

    with pytest.raises(errors.SchemaOutdatedError):
        run(scenario())


def test_client_and_async_client_offer_the_same_methods_with_the_same_signatures() -> None:
    """Every public member and the constructor, with the same kind (method, classmethod,
    property) and the same parameters (names, kinds, defaults: the annotations name the sync or
    async connection types); every method of AsyncClient but `transaction` is a coroutine."""
    import inspect

    from tistate import AsyncClient, Client

    def api(cls: type) -> dict[str, Any]:
        return {
            name: inspect.getattr_static(cls, name)
            for name in dir(cls)
            if not name.startswith("_") or name == "__init__"
        }

    def parameters(member: Any) -> list[tuple[str, Any, Any]]:
        function = member.__func__ if isinstance(member, classmethod) else member
        return [
            (p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()
        ]

    sync, asynchronous = api(Client), api(AsyncClient)
    assert sorted(sync) == sorted(asynchronous)
    for name, member in sync.items():
        other = asynchronous[name]
        assert type(member) is type(other), name
        if isinstance(member, property):
            continue
        assert parameters(member) == parameters(other), name
        if name not in {"__init__", "transaction"}:
            function = other.__func__ if isinstance(other, classmethod) else other
            assert inspect.iscoroutinefunction(function), name
