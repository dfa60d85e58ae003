"""The HTTP hot path's shortcuts answer exactly what the plain path answers.

- The verified-token cache (tistate.http.auth.TokenCache) never accepts what `verify` rejects:
  rejections are not cached, a cached token expires at its `exp` (and is not accepted before its
  `nbf`/`iat`), the leeway counts as in `verify`, the subject is checked on every request.
- ExecutionRoute's direct handler gives the same status, body and headers as FastAPI's dependency
  resolution (forced here with a dependency override) for good and bad requests alike.
- A state payload serialized in one pass (`models.json_text`) is the JSON value of
  `payload_json()`, and NUL characters are still refused naming the field.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import fastapi.routing
import httpx
import jwt
import pytest

from http_support import (
    AUDIENCE,
    SECRET,
    Dags,
    mint,
    running_payload,
    success_payload,
)
from tistate import AsyncClient, _db, models
from tistate.errors import InvalidPayloadError
from tistate.http import Settings, create_app
from tistate.http import auth as auth_module
from tistate.http.auth import TokenCache, authenticate
from tistate.http.problems import HTTPProblem
from tistate.tokens import TokenError

SETTINGS = Settings(database_url="postgresql://unused", jwt_secret=SECRET, jwt_leeway=0)


# ---------------------------------------------------------------------------------- token cache


@pytest.fixture
def verify_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = auth_module.verify

    def counting(token: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return real(token, **kwargs)

    monkeypatch.setattr(auth_module, "verify", counting)
    return calls


TI = UUID("01890000-0000-7000-8000-000000000001")
OTHER = UUID("01890000-0000-7000-8000-000000000002")


def test_a_verified_token_is_verified_once(verify_calls: list[str]) -> None:
    cache = TokenCache(SETTINGS)
    token = mint(TI)
    first = authenticate(SETTINGS, f"Bearer {token}", str(TI), cache)
    again = authenticate(SETTINGS, f"Bearer {token}", str(TI).upper(), cache)
    assert first == again and first["sub"] == str(TI)
    assert verify_calls == [token]


def test_rejections_are_not_cached(verify_calls: list[str]) -> None:
    cache = TokenCache(SETTINGS)
    bad = mint(TI, secret="another-secret-" + "x" * 32)
    for _ in range(2):
        with pytest.raises(HTTPProblem) as info:
            authenticate(SETTINGS, f"Bearer {bad}", str(TI), cache)
        assert (info.value.status, info.value.reason) == (401, "invalid_signature")
    assert verify_calls == [bad, bad]
    assert len(cache) == 0


def test_the_subject_is_checked_on_every_use() -> None:
    cache = TokenCache(SETTINGS)
    token = mint(TI)
    authenticate(SETTINGS, f"Bearer {token}", str(TI), cache)
    for _ in range(2):
        with pytest.raises(HTTPProblem) as info:
            authenticate(SETTINGS, f"Bearer {token}", str(OTHER), cache)
        assert info.value.status == 403


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The moment TokenCache and verify see, set by the test: no sleeping until a token expires."""
    moment = [float(int(time.time()))]
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(time=lambda: moment[0]))
    real = auth_module.verify

    def at_the_moment(token: str, **kwargs: Any) -> dict[str, Any]:
        return real(token, now=moment[0], **kwargs)

    monkeypatch.setattr(auth_module, "verify", at_the_moment)
    return moment


def test_a_cached_token_is_refused_before_nbf_and_from_exp_on(clock: list[float]) -> None:
    cache = TokenCache(SETTINGS)
    now = int(clock[0])
    token = jwt.encode(
        {"sub": str(TI), "aud": AUDIENCE, "iat": now, "nbf": now + 2, "exp": now + 4},
        SECRET,
        algorithm="HS256",
    )
    clock[0] = now + 1.999
    with pytest.raises(TokenError) as info:
        cache.verify(token)  # not yet valid: verify refuses, nothing is cached
    assert info.value.reason == "invalid_token" and len(cache) == 0
    clock[0] = now + 2
    assert cache.verify(token).claims["sub"] == str(TI)
    clock[0] = now + 3.999
    assert cache.verify(token).claims["sub"] == str(TI)  # from the cache
    clock[0] = now + 4
    with pytest.raises(TokenError) as info:
        cache.verify(token)
    assert info.value.reason == "token_expired"
    assert len(cache) == 0


def test_the_window_is_verify_s_own_with_the_leeway() -> None:
    settings = Settings(database_url="postgresql://unused", jwt_secret=SECRET, jwt_leeway=30)
    cache = TokenCache(settings)
    now = int(time.time())
    recent = mint(TI, expires_in=-10)  # expired 10 s ago: inside the leeway
    entry = cache.verify(recent)
    assert entry.valid_until == now - 10 + 30 or entry.valid_until == now - 9 + 30
    future = jwt.encode(
        {"sub": str(TI), "aud": AUDIENCE, "iat": now + 20, "exp": now + 600},
        SECRET,
        algorithm="HS256",
    )
    assert cache.verify(future).valid_from == now + 20 - 30


def test_the_cache_is_bounded_lru(verify_calls: list[str]) -> None:
    cache = TokenCache(SETTINGS, size=2)
    a, b, c = (mint(TI, jti=str(i)) for i in range(3))
    cache.verify(a)
    cache.verify(b)
    cache.verify(a)  # a is now the most recently used
    cache.verify(c)  # evicts b
    assert len(cache) == 2
    cache.verify(a)
    cache.verify(b)
    assert verify_calls == [a, b, c, b]


# ---------------------------------------------------------------------------------- payload text


@pytest.mark.parametrize(
    "payload",
    [
        success_payload(),
        success_payload(
            outlet_events=[
                {
                    "dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"},
                    "extra": {"f": 1e-07, "big": 10**30, "q": 'a"\\b\n', "n": None},
                }
            ],
            rendered_map_index="\\u0000 is not a NUL",
        ),
        success_payload(rendered_map_index="Ünïcødé 🚀"),
        {"state": "up_for_retry", "end_date": "2025-06-01T12:00:00+02:00"},
        {"state": "deferred", "classpath": "a.B", "next_method": "m", "trigger_timeout": 90},
        {"state": "queued"},
    ],
)
def test_the_payload_text_is_the_payload_json(payload: dict[str, Any]) -> None:
    model = models.STATE_UPDATE_ADAPTER.validate_json(json.dumps(payload))
    sent = _db.ti_update_state(TI, model, None, None).params["payload"]
    value = json.loads(sent.obj) if isinstance(sent.obj, str) else sent.obj
    assert value == model.payload_json()


def test_a_payload_built_in_python_gets_its_state() -> None:
    model = models.TISuccessStatePayload(end_date="2025-06-01T12:00:00Z")
    sent = {"state": "success", "end_date": "2025-06-01T12:00:00Z"}
    assert json.loads(models.json_text(model, "payload")) == model.payload_json() == sent
    queued = models.TITargetStatePayload(state="queued")
    assert models.json_text(queued, "payload") == '{"state":"queued"}'


def test_nul_is_still_refused_naming_the_field() -> None:
    model = models.STATE_UPDATE_ADAPTER.validate_json(
        json.dumps(success_payload(rendered_map_index="a\u0000b"))
    )
    with pytest.raises(InvalidPayloadError) as info:
        _db.ti_update_state(TI, model, None, None)
    assert info.value.detail["field"] == "rendered_map_index"


# ---------------------------------------------------------------------------------- direct handler


def _generic_only() -> None:
    """Overridden below: any dependency override sends every request the generic way."""


@pytest.fixture
def dags(db_dsn: str) -> Dags:
    return Dags(db_dsn)


def _bearer(ti: UUID | str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(ti, **kwargs)}"}


def _other(ti: UUID) -> dict[str, str]:
    return _bearer(OTHER)


def _requests(ti: UUID) -> Iterator[tuple[str, str, Any, dict[str, str]]]:
    """(method, path, body, headers) for one running task instance, in order."""
    base = f"/execution/task-instances/{ti}"
    ok = _bearer(ti)
    yield "PUT", f"{base}/heartbeat", {"hostname": "h"}, ok
    yield "PUT", f"{base}/heartbeat", {"hostname": "h", "pid": 1}, {}
    yield "PUT", f"{base}/heartbeat", {"hostname": "h", "pid": 1}, {"Authorization": "Basic x"}
    yield "PUT", f"{base}/heartbeat", {"hostname": "h", "pid": 1}, _bearer(ti, expires_in=-5)
    yield "PUT", f"{base}/heartbeat", {"hostname": "h", "pid": 1}, _other(ti)
    yield "PUT", f"{base}/heartbeat", {"hostname": "other", "pid": 7}, ok  # 409
    yield "PUT", f"{base}/heartbeat", {"hostname": "worker-1", "pid": 100}, ok
    again = {"hostname": "worker-1", "pid": 100}
    yield "PUT", f"/execution/task-instances/{str(ti).upper()}/heartbeat", again, ok
    yield "PUT", f"/execution/task-instances/{ti.hex}/heartbeat", again, ok  # generic either way
    yield (
        "PUT",
        "/execution/task-instances/not-a-uuid/heartbeat",
        {"hostname": "h", "pid": 1},
        {
            "Authorization": "Bearer "
            + jwt.encode({"sub": "not-a-uuid", "aud": AUDIENCE, "exp": time.time() + 60}, SECRET)
        },
    )
    yield "PATCH", f"{base}/state", None, ok
    yield "PATCH", f"{base}/state", "{not json", ok
    yield "PATCH", f"{base}/state", success_payload(rendered_map_index="x" * 3000), ok  # 413
    yield "PATCH", f"{base}/state", {"state": "success"}, ok
    yield "PATCH", f"{base}/state", {"state": "nope", "end_date": "x"}, ok
    yield "PATCH", f"{base}/state", success_payload(rendered_map_index="a\u0000b"), ok
    yield "PATCH", f"{base}/state", success_payload(), ok  # 204
    yield "PATCH", f"{base}/state", success_payload(), ok  # 200 no-op
    yield "PATCH", f"{base}/run", running_payload(), ok  # 409
    yield "PATCH", f"{base}/skip-downstream", {"tasks": ["t1", ["t2", -1]]}, ok
    yield "PATCH", f"{base}/skip-downstream", {"tasks": "t1"}, ok


def _answer(response: httpx.Response, ti: UUID) -> tuple[int, str, dict[str, str]]:
    headers = {
        k: v for k, v in response.headers.items() if k not in ("x-request-id", "content-length")
    }
    if "refreshed-api-token" in headers:  # a fresh jti each time
        headers["refreshed-api-token"] = "<refreshed>"
    text = response.text.replace(str(ti), "<ti>").replace(ti.hex, "<ti>")
    text = text.replace(str(ti).upper(), "<TI>")
    # run-dependent values of a state result: event ids and lock timings
    text = re.sub(
        r'"(asset_event_ids|lock_wait_ms|lock_held_ms)":(\[[0-9,]*\]|[0-9.]+|null)', r'"\1":_', text
    )
    return response.status_code, text, headers


def test_direct_and_generic_handlers_answer_alike(
    db_dsn: str, dags: Dags, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[str] = []
    real_solve = fastapi.routing.solve_dependencies

    async def counting_solve(*, request: Any, **kwargs: Any) -> Any:
        solved.append(request.url.path)
        return await real_solve(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting_solve)
    settings = Settings(database_url=db_dsn, jwt_secret=SECRET, max_body_bytes=2000)

    async def answers(generic: bool, ti: UUID) -> list[tuple[int, str, dict[str, str]]]:
        async with AsyncClient(db_dsn, check_schema=False) as client:
            app = create_app(settings, client=client)
            if generic:
                app.dependency_overrides[_generic_only] = _generic_only
            transport = httpx.ASGITransport(app=app)
            out = []
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                for method, path, body, headers in _requests(ti):
                    content = body if isinstance(body, str) or body is None else json.dumps(body)
                    response = await http.request(
                        method,
                        path,
                        content=content,
                        headers={**headers, "content-type": "application/json"},
                    )
                    out.append(_answer(response, ti))
            return out

    fast = asyncio.run(answers(False, dags.running()))
    # FastAPI resolved dependencies only for the two ids that are not canonical UUIDs
    assert len(solved) == 2 and solved[1] == "/execution/task-instances/not-a-uuid/heartbeat"
    del solved[:]
    slow = asyncio.run(answers(True, dags.running()))
    assert len(solved) == len(fast)
    statuses = [a[0] for a in fast]
    assert 204 in statuses and 200 in statuses and 401 in statuses and 403 in statuses
    assert 409 in statuses and 413 in statuses and 422 in statuses
    for i, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a == b, (i, a, b)
