"""A state update tistate does not implement (awaiting_input, human in the loop) is forwarded to
Airflow's API server, never answered 422; the real forward to a real Airflow is in
tests/airflow_e2e/test_airflow_live.py. Here: the answers when Airflow cannot be reached, and that
what tistate implements is not forwarded."""

from __future__ import annotations

import asyncio
import socket
from typing import Any
from uuid import UUID

import httpx
import pytest

from http_support import SECRET, Dags, mint
from tistate import AsyncClient
from tistate.http import Settings, create_app

AWAITING_INPUT = {"state": "awaiting_input", "next_method": "execute_complete", "next_kwargs": {}}


@pytest.fixture
def dags(db_dsn: str, flavor: str) -> Dags:
    if flavor != "standalone":
        pytest.skip("the standalone flavor makes its own DAGs")
    return Dags(db_dsn)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed when the socket is


def patch_state(db_dsn: str, ti: UUID, body: Any, **settings: Any) -> httpx.Response:
    config = Settings(database_url=db_dsn, jwt_secret=SECRET, **settings)

    async def call() -> httpx.Response:
        async with AsyncClient(db_dsn, check_schema=False) as client:
            app = create_app(config, client=client)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                response = await http.patch(
                    f"/execution/task-instances/{ti}/state",
                    json=body,
                    headers={"Authorization": f"Bearer {mint(ti)}"},
                )
                metrics = (await http.get("/metrics")).text
                response.extensions["metrics"] = metrics
                return response

    return asyncio.run(call())


def test_awaiting_input_without_airflow_s_url_is_502_not_422(db_dsn: str, dags: Dags) -> None:
    ti = dags.running()
    response = patch_state(db_dsn, ti, AWAITING_INPUT)
    assert response.status_code == 502
    assert response.json()["detail"]["reason"] == "no_airflow_api"
    assert "TISTATE_AIRFLOW_API_URL" in response.json()["detail"]["message"]


def test_awaiting_input_to_an_unreachable_airflow_is_502(db_dsn: str, dags: Dags) -> None:
    ti = dags.running()
    url = f"http://127.0.0.1:{closed_port()}"
    response = patch_state(db_dsn, ti, AWAITING_INPUT, airflow_api_url=url)
    assert response.status_code == 502, response.text
    assert response.json()["detail"]["reason"] == "upstream_unreachable"
    assert 'tistate_forwarded_requests_total{status="502"} 1.0' in response.extensions["metrics"]


def test_what_tistate_implements_is_not_forwarded(db_dsn: str, dags: Dags) -> None:
    """A wrong body of another state is tistate's own 422; a success is tistate's 204."""
    ti = dags.running()
    url = f"http://127.0.0.1:{closed_port()}"
    wrong = patch_state(db_dsn, ti, {"state": "success"}, airflow_api_url=url)
    assert wrong.status_code == 422
    unknown = patch_state(db_dsn, ti, {"state": "no_such_state"}, airflow_api_url=url)
    assert unknown.status_code == 422
    done = patch_state(
        db_dsn, ti, {"state": "success", "end_date": "2026-01-01T00:00:00Z"}, airflow_api_url=url
    )
    assert done.status_code == 204


def test_a_deeply_nested_invalid_body_naming_awaiting_input_is_a_422(
    db_dsn: str, dags: Dags
) -> None:
    """Too deep for json.loads: not forwarded, tistate's own 422 (never a 500)."""
    ti = dags.running()
    body = '{"state": "awaiting_input", "next_kwargs": ' + "[" * 5000 + "]" * 5000 + "}"
    config = Settings(database_url=db_dsn, jwt_secret=SECRET)

    async def call() -> httpx.Response:
        async with AsyncClient(db_dsn, check_schema=False) as client:
            transport = httpx.ASGITransport(app=create_app(config, client=client))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                return await http.patch(
                    f"/execution/task-instances/{ti}/state",
                    content=body,
                    headers={"Authorization": f"Bearer {mint(ti)}"},
                )

    response = asyncio.run(call())
    assert response.status_code in (422, 502), response.text
