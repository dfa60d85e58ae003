"""The HTTP hot path's shortcuts answer exactly what the plain path answers.

- The verified-token cache (tistate.http.auth.TokenCache) never accepts what `verify` rejects:
  rejections are not cached, a cached token expires at its `exp` (and is not accepted before its
  `nbf`/`iat`), the leeway counts as in `verify`, the subject is checked on every request.
- An execution request is checked as FastAPI checked its former dependencies: token, then body
  (and the forward to Airflow), then the path id, which accepts what FastAPI's UUID accepted.
- The access log line written straight to configure_logging's handler is the line the logging
  machinery writes (which any other logging configuration still gets).
- A state payload serialized in one pass (`models.json_text`) is the JSON value of
  `payload_json()`, and NUL characters are still refused naming the field.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from uuid import RFC_4122, UUID

import httpx
import jwt
import pytest

from http_support import (
    AUDIENCE,
    SECRET,
    Dags,
    mint,
    success_payload,
)
from tistate import AsyncClient, _db, models
from tistate.errors import InvalidPayloadError
from tistate.http import Settings, create_app
from tistate.http import auth as auth_module
from tistate.http import logs as logs_module
from tistate.http.auth import TokenCache, authenticate
from tistate.http.logs import JsonFormatter, JsonHandler, log_access
from tistate.http.middleware import request_id_for
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


# ---------------------------------------------------------------------------------- access log

ACCESS_FIELDS = {
    "request_id": "r-1",
    "method": "PUT",
    "path": '/execution/task-instances/\u00e9"\n/heartbeat',
    "route": "<unmatched>",
    "status": 204,
    "duration_ms": 1.5,
    "client": None,
}


@pytest.fixture
def tistate_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("tistate")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def _access_line(logger: logging.Logger, handler: logging.Handler, stream: io.StringIO) -> Any:
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    log_access(dict(ACCESS_FIELDS))
    lines = stream.getvalue().splitlines()
    if not lines:
        return None
    (line,) = lines
    entry = json.loads(line)
    assert entry.pop("ts").endswith("+00:00")
    return list(entry.items())


def test_the_direct_access_line_is_the_logged_one(
    tistate_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct, plain, filtered, quiet = (io.StringIO() for _ in range(4))
    expected = [
        ("level", "info"),
        ("logger", "tistate.http.access"),
        ("msg", "request"),
        *ACCESS_FIELDS.items(),
    ]
    with monkeypatch.context() as patched:  # written directly: no LogRecord is made
        patched.setattr(logs_module, "_access_record", None)
        assert _access_line(tistate_logger, JsonHandler(direct), direct) == expected
    assert _access_line(tistate_logger, logging.StreamHandler(plain), plain) == expected
    with_filter = JsonHandler(filtered)
    with_filter.addFilter(lambda record: record.getMessage() == "request")
    assert _access_line(tistate_logger, with_filter, filtered) == expected
    above_info = JsonHandler(quiet)
    above_info.setLevel(logging.WARNING)
    assert _access_line(tistate_logger, above_info, quiet) is None


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


# ---------------------------------------------------------------------------------- request order


@pytest.fixture
def dags(db_dsn: str) -> Dags:
    return Dags(db_dsn)


def _bearer(ti: UUID | str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(ti)}"}


def _sub(sub: str) -> dict[str, str]:
    claims = {"sub": sub, "aud": AUDIENCE, "exp": time.time() + 60}
    return {"Authorization": "Bearer " + jwt.encode(claims, SECRET)}


HEARTBEAT = {"hostname": "worker-1", "pid": 100}
PATH_ERROR = {
    "type": "uuid_parsing",
    "loc": ["path", "task_instance_id"],
    "msg": "Input should be a valid UUID, invalid character: found `n` at 1",
    "input": "not-a-uuid",
    "ctx": {"error": "invalid character: found `n` at 1"},
}


def _cases(ti: UUID) -> list[tuple[str, str, Any, dict[str, str], int, Any]]:
    """(method, path, body, headers, status, detail or None) in order, for a running ti."""
    base = "/execution/task-instances"
    bad = f"{base}/not-a-uuid"
    return [
        # the id is any form FastAPI's UUID parameter accepted, the token's subject canonical
        ("PUT", f"{base}/{str(ti).upper()}/heartbeat", HEARTBEAT, _bearer(ti), 204, None),
        ("PUT", f"{base}/{ti.hex}/heartbeat", HEARTBEAT, _bearer(ti), 204, None),
        ("PUT", f"{base}/{{{ti}}}/heartbeat", HEARTBEAT, _bearer(ti), 204, None),
        ("PUT", f"{base}/urn:uuid:{ti}/heartbeat", HEARTBEAT, _bearer(ti), 204, None),
        ("PUT", f"{base}/{ti.hex}/heartbeat", HEARTBEAT, _sub(ti.hex), 204, None),
        # token first, then body, then id
        ("PUT", f"{bad}/heartbeat", {"x": 1}, {}, 401, {"reason": "missing_token"}),
        ("PUT", f"{bad}/heartbeat", HEARTBEAT, _bearer(ti), 403, {"reason": "forbidden"}),
        ("PUT", f"{bad}/heartbeat", None, _sub("not-a-uuid"), 422, ["body"]),
        ("PUT", f"{bad}/heartbeat", {"hostname": "h"}, _sub("not-a-uuid"), 422, ["body", "pid"]),
        ("PUT", f"{bad}/heartbeat", HEARTBEAT, _sub("not-a-uuid"), 422, [PATH_ERROR]),
        ("PATCH", f"{bad}/state", success_payload(), _sub("not-a-uuid"), 422, [PATH_ERROR]),
        # the forward to Airflow is decided by the body, before the id
        (
            "PATCH",
            f"{bad}/state",
            {"state": "awaiting_input"},
            _sub("not-a-uuid"),
            502,
            {"reason": "no_airflow_api"},
        ),
        # another method of a served path: Starlette's 405, rendered as FastAPI renders it
        ("GET", f"{base}/{ti}/heartbeat", None, _bearer(ti), 405, "Method Not Allowed"),
        ("POST", f"{base}/{ti}/state", None, _bearer(ti), 405, "Method Not Allowed"),
        ("PUT", f"{base}/{ti}/nope", HEARTBEAT, _bearer(ti), 404, "Not Found"),
    ]


def _detail_matches(detail: Any, expected: Any) -> bool:
    if isinstance(expected, dict):  # tistate's detail object: these keys
        return all(detail.get(key) == value for key, value in expected.items())
    if isinstance(expected, list) and expected and isinstance(expected[0], str):
        return detail[0]["loc"] == expected  # FastAPI's list: the first problem's location
    return bool(detail == expected)


def test_the_execution_routes_check_token_then_body_then_id(db_dsn: str, dags: Dags) -> None:
    settings = Settings(database_url=db_dsn, jwt_secret=SECRET)
    ti = dags.running()

    async def answers() -> list[httpx.Response]:
        async with AsyncClient(db_dsn, check_schema=False) as client:
            app = create_app(settings, client=client)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                out = []
                for method, path, body, headers, _, _ in _cases(ti):
                    content = None if body is None else json.dumps(body)
                    headers = {**headers, "content-type": "application/json"}
                    out.append(await http.request(method, path, content=content, headers=headers))
                out.append(await http.get("/metrics"))
                return out

    *responses, metrics = asyncio.run(answers())
    for (method, path, _, _, status, detail), response in zip(_cases(ti), responses, strict=True):
        assert response.status_code == status, (method, path, response.text)
        if detail is not None:
            assert _detail_matches(response.json()["detail"], detail), (path, response.text)
    # requests are counted under their route's template, whatever the id looked like
    template = 'route="/execution/task-instances/{task_instance_id}/heartbeat"'
    assert any(
        template in line and 'status="204"' in line and line.endswith(" 5.0")
        for line in metrics.text.splitlines()
    ), metrics.text


def test_a_fresh_request_id_is_a_uuid4_hex() -> None:
    ids = {request_id_for({"headers": []}) for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = UUID(hex=value)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, RFC_4122, value)
