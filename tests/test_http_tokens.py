"""Airflow's tokens, unchanged: what Apache Airflow 3.3's own generator issues, tistate accepts (or
refuses) as Airflow's API server does, and re-issues near expiry in `Refreshed-API-Token`.

The tokens and JWKS come from Airflow's code (airflow_tokens.py, in one subprocess per module:
`_jwt_generator()` configured by AIRFLOW__ variables, as Airflow's API server makes them), and
tistate is configured from the same AIRFLOW__ variables (`Settings.from_env`). Rules: HS512 by
default for a secret (HS384 when configured), RS256 and EdDSA keys (a public key file, the private
key file Airflow signs with, Airflow's JWKS), audience list, issuer, 10 s leeway, `scope`
(execution, or none; a workload token answers 403), refresh at max(20% of the lifetime, 30 s).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from http_support import Dags
from tistate import AsyncClient
from tistate.http import Settings, create_app
from tistate.http.auth import TokenCache, authenticate, make_signer
from tistate.http.problems import HTTPProblem
from tistate.http.settings import libpq_url
from tistate.tokens import Signer, needs_refresh

SECRET = "airflow-jwt-secret-for-the-token-tests-" + "s" * 40  # >= 64 bytes: HS512's minimum
AUDIENCE = "urn:airflow.apache.org:task"
TI = UUID("01890000-0000-7000-8000-0000000000aa")
HERE = Path(__file__).resolve().parent


def _airflow_available() -> bool:
    try:
        return importlib.metadata.version("apache-airflow-core").startswith("3.3.")
    except importlib.metadata.PackageNotFoundError:
        return False


needs_airflow = pytest.mark.skipif(not _airflow_available(), reason="needs apache-airflow 3.3")


def write_keys(directory: Path) -> dict[str, Path]:
    """RSA and Ed25519 key pairs as PEM files (private: PKCS8, as Airflow's key_to_pem)."""
    paths: dict[str, Path] = {}
    keys: dict[str, Any] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
        "other_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }
    for name, key in keys.items():
        private = directory / f"{name}.pem"
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        public = directory / f"{name}.pub.pem"
        public.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        paths[name] = private
        paths[f"{name}.pub"] = public
    return paths


def airflow_made(steps: list[dict[str, Any]], home: Path) -> list[Any]:
    """Run airflow_tokens.py once for all steps; its results in order."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env["AIRFLOW_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, str(HERE / "airflow_tokens.py"), json.dumps(steps)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def secret_env(**extra: str) -> dict[str, str]:
    return {"AIRFLOW__API_AUTH__JWT_SECRET": SECRET, **extra}


def execution(ti: UUID = TI, scope: str | None = "execution") -> dict[str, Any]:
    return {"sub": str(ti)} | ({"scope": scope} if scope else {})


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every token and key set the tests use, made by Airflow in one subprocess."""
    if not _airflow_available():
        pytest.skip("needs apache-airflow 3.3")
    directory = tmp_path_factory.mktemp("airflow_tokens")
    keys = write_keys(directory)
    rsa_env = {"AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH": str(keys["rsa"])}
    ed_env = {"AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH": str(keys["ed25519"])}
    steps: dict[str, dict[str, Any]] = {
        "hs512": {"env": secret_env(), "extras": execution()},
        "hs384": {
            "env": secret_env(AIRFLOW__API_AUTH__JWT_ALGORITHM="HS384"),
            "extras": execution(),
        },
        "no_scope": {"env": secret_env(), "extras": execution(scope=None)},
        "workload": {"env": secret_env(), "extras": execution(scope="workload")},
        "other_ti": {"env": secret_env(), "extras": execution(uuid4())},
        "issuer": {
            "env": secret_env(AIRFLOW__API_AUTH__JWT_ISSUER="https://airflow.example"),
            "extras": execution(),
        },
        "audience_b": {
            "env": secret_env(AIRFLOW__EXECUTION_API__JWT_AUDIENCE="urn:b,urn:a"),
            "extras": execution(),
        },
        "audience_c": {
            "env": secret_env(AIRFLOW__EXECUTION_API__JWT_AUDIENCE="urn:c"),
            "extras": execution(),
        },
        "expired_5s": {"env": secret_env(), "extras": execution(), "valid_for": -5},
        "expired_15s": {"env": secret_env(), "extras": execution(), "valid_for": -15},
        "rs256": {"env": rsa_env, "extras": execution()},
        "eddsa": {"env": ed_env, "extras": execution()},
        "rs256_workload": {"env": rsa_env, "extras": execution(scope="workload")},
        "rs256_other_key": {
            "env": {"AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH": str(keys["other_rsa"])},
            "extras": execution(),
        },
        "near_expiry": {"env": secret_env(), "extras": execution(), "valid_for": 40},
        "rs256_near_expiry": {"env": rsa_env, "extras": execution(), "valid_for": 40},
    }
    names = list(steps)
    results = airflow_made([steps[n] for n in names] + [{"jwks": str(keys["rsa"])}], directory)
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps(results[-1]))
    return {"keys": keys, "jwks": jwks, **dict(zip(names, results[:-1], strict=True))}


def settings_of(env: dict[str, str]) -> Settings:
    return Settings.from_env({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://x/y", **env})


def check(settings: Settings, token: str, ti: UUID = TI) -> dict[str, Any]:
    return authenticate(settings, f"Bearer {token}", str(ti), TokenCache(settings))


def refused(settings: Settings, token: str) -> tuple[int, str]:
    with pytest.raises(HTTPProblem) as info:
        check(settings, token)
    return info.value.status, info.value.reason


# ---------------------------------------------------------------------------- shared secret


@needs_airflow
def test_airflow_s_hs512_token_with_airflow_s_settings(made: dict[str, Any]) -> None:
    settings = settings_of(secret_env())
    token = made["hs512"]["token"]
    assert jwt.get_unverified_header(token) == {"alg": "HS512", "kid": "not-used", "typ": "JWT"}
    claims = check(settings, token)
    assert claims["scope"] == "execution" and claims["aud"] == AUDIENCE
    assert check(settings, made["no_scope"]["token"])["sub"] == str(TI), "no scope: execution"
    assert refused(settings, made["other_ti"]["token"]) == (403, "forbidden")
    assert refused(settings, made["hs384"]["token"]) == (401, "invalid_algorithm")
    hs384 = settings_of(secret_env(AIRFLOW__API_AUTH__JWT_ALGORITHM="HS384"))
    assert check(hs384, made["hs384"]["token"])["sub"] == str(TI)
    assert refused(hs384, made["hs512"]["token"]) == (401, "invalid_algorithm")


@needs_airflow
def test_a_workload_token_is_refused(made: dict[str, Any]) -> None:
    """Airflow accepts the executor's workload token on /run only: tistate serves no /run."""
    assert refused(settings_of(secret_env()), made["workload"]["token"]) == (403, "invalid_scope")
    rsa_settings = settings_of({"TISTATE_JWT_PUBLIC_KEY_PATH": str(made["keys"]["rsa.pub"])})
    assert refused(rsa_settings, made["rs256_workload"]["token"]) == (403, "invalid_scope")


@needs_airflow
def test_issuer(made: dict[str, Any]) -> None:
    issuer = "https://airflow.example"
    settings = settings_of(secret_env(AIRFLOW__API_AUTH__JWT_ISSUER=issuer))
    assert check(settings, made["issuer"]["token"])["iss"] == issuer
    assert refused(settings, made["hs512"]["token"]) == (401, "invalid_token"), "no iss claim"
    other = settings_of(secret_env(AIRFLOW__API_AUTH__JWT_ISSUER="https://elsewhere"))
    assert refused(other, made["issuer"]["token"]) == (401, "invalid_issuer")
    # no issuer configured: not checked (Airflow's rule)
    assert check(settings_of(secret_env()), made["issuer"]["token"])["sub"] == str(TI)


@needs_airflow
def test_audience_list(made: dict[str, Any]) -> None:
    """Airflow signs with the first audience and accepts any of the list."""
    assert jwt.decode(made["audience_b"]["token"], options={"verify_signature": False})["aud"] == (
        "urn:b"
    )
    listed = settings_of(secret_env(AIRFLOW__EXECUTION_API__JWT_AUDIENCE="urn:a, urn:b"))
    assert check(listed, made["audience_b"]["token"])["aud"] == "urn:b"
    assert refused(listed, made["audience_c"]["token"]) == (401, "invalid_audience")
    assert refused(listed, made["hs512"]["token"]) == (401, "invalid_audience")


@needs_airflow
def test_leeway_is_airflow_s_10_seconds(made: dict[str, Any]) -> None:
    settings = settings_of(secret_env())
    assert settings.jwt_leeway == 10
    assert check(settings, made["expired_5s"]["token"])["sub"] == str(TI)
    assert refused(settings, made["expired_15s"]["token"]) == (401, "token_expired")
    strict = settings_of(secret_env(AIRFLOW__API_AUTH__JWT_LEEWAY="0"))
    assert refused(strict, made["expired_5s"]["token"]) == (401, "token_expired")


# ---------------------------------------------------------------------------- asymmetric keys


@needs_airflow
def test_rs256_and_eddsa_with_a_public_key(made: dict[str, Any]) -> None:
    keys = made["keys"]
    rs256, eddsa = made["rs256"]["token"], made["eddsa"]["token"]
    assert jwt.get_unverified_header(rs256)["alg"] == "RS256"
    assert jwt.get_unverified_header(eddsa)["alg"] == "EdDSA"
    rsa_pub = settings_of({"TISTATE_JWT_PUBLIC_KEY_PATH": str(keys["rsa.pub"])})
    assert check(rsa_pub, rs256)["sub"] == str(TI)
    assert refused(rsa_pub, made["rs256_other_key"]["token"]) == (401, "invalid_signature")
    assert refused(rsa_pub, eddsa)[0] == 401
    ed_pub = settings_of({"TISTATE_JWT_PUBLIC_KEY_PATH": str(keys["ed25519.pub"])})
    assert check(ed_pub, eddsa)["sub"] == str(TI)
    # the shared secret cannot verify a key-signed token (no algorithm confusion)
    assert refused(settings_of(secret_env()), rs256) == (401, "invalid_algorithm")
    # a public key does not accept an HMAC token signed with its PEM text
    forged = jwt.encode(
        {"sub": str(TI), "aud": AUDIENCE, "exp": int(time.time()) + 60, "iat": int(time.time())},
        "x" * 64,
        algorithm="HS256",
    )
    assert refused(rsa_pub, forged) == (401, "invalid_algorithm")


@needs_airflow
def test_airflow_s_private_key_and_jwks(made: dict[str, Any]) -> None:
    """Airflow's own settings: jwt_private_key_path (tistate verifies with its public half and
    signs refreshed tokens with it), trusted_jwks_url (a JWKS file made by Airflow)."""
    keys = made["keys"]
    private = settings_of({"AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH": str(keys["rsa"])})
    assert check(private, made["rs256"]["token"])["sub"] == str(TI)
    jwks = settings_of({"AIRFLOW__API_AUTH__TRUSTED_JWKS_URL": str(made["jwks"])})
    assert check(jwks, made["rs256"]["token"])["sub"] == str(TI)
    assert refused(jwks, made["rs256_other_key"]["token"]) == (401, "invalid_token"), "kid"


# ---------------------------------------------------------------------------- refresh


def test_the_refresh_rule_is_airflow_s() -> None:
    now = 1_000_000.0
    # lifetime 600 s: refresh with at most 120 s left
    assert not needs_refresh({"iat": now, "exp": now + 600}, now + 479)
    assert needs_refresh({"iat": now, "exp": now + 600}, now + 480)
    # lifetime 40 s: 20% is 8 s, so 30 s: refresh from 10 s on
    assert not needs_refresh({"iat": now, "exp": now + 40}, now + 9)
    assert needs_refresh({"iat": now, "exp": now + 40}, now + 10)
    assert needs_refresh({"iat": now, "exp": now + 20}, now), "under 30 s: always"


@needs_airflow
def test_refreshed_tokens_are_airflow_s(made: dict[str, Any]) -> None:
    """Same claims, new jti/iat/nbf/exp (exp = now + jwt_expiration_time), Airflow's kid."""
    settings = settings_of(secret_env(AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME="300"))
    signer = make_signer(settings)
    assert isinstance(signer, Signer) and signer.algorithm == "HS512"
    old = check(settings, made["near_expiry"]["token"])
    fresh_token = signer.reissue(old)
    assert jwt.get_unverified_header(fresh_token)["kid"] == made["near_expiry"]["kid"]
    fresh = check(settings, fresh_token)
    assert fresh["jti"] != old["jti"] and fresh["exp"] - fresh["iat"] == 300
    assert fresh["iat"] >= old["iat"] and fresh["nbf"] == fresh["iat"]
    same = ("sub", "scope", "aud")
    assert {k: fresh[k] for k in same} == {k: old[k] for k in same}

    key_settings = settings_of(
        {"AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH": str(made["keys"]["rsa"])}
    )
    key_signer = make_signer(key_settings)
    assert key_signer is not None and key_signer.algorithm == "RS256"
    old = check(key_settings, made["rs256_near_expiry"]["token"])
    fresh_token = key_signer.reissue(old)
    assert jwt.get_unverified_header(fresh_token)["kid"] == made["rs256_near_expiry"]["kid"]
    pub = settings_of({"TISTATE_JWT_PUBLIC_KEY_PATH": str(made["keys"]["rsa.pub"])})
    assert check(pub, fresh_token)["sub"] == str(TI)
    assert make_signer(pub) is None, "a public key alone cannot sign: no refresh"


@needs_airflow
def test_the_response_carries_refreshed_api_token(
    db_dsn: str, flavor: str, made: dict[str, Any]
) -> None:
    """Through the app: a heartbeat with a token near expiry gets Refreshed-API-Token (which
    then works); one with plenty left does not; an error answer (409) refreshes too."""
    if flavor != "standalone":
        pytest.skip("the standalone flavor makes its own DAGs")
    dags = Dags(db_dsn)
    ti = dags.running()
    made_now = airflow_made(
        [
            {"env": secret_env(), "extras": execution(ti), "valid_for": 25},
            {"env": secret_env(), "extras": execution(ti)},
        ],
        Path(made["jwks"]).parent,
    )
    near, plenty = made_now[0]["token"], made_now[1]["token"]
    settings = settings_of(secret_env()).with_database_url(db_dsn)

    async def heartbeats() -> list[httpx.Response]:
        async with AsyncClient(db_dsn, check_schema=False) as client:
            app = create_app(settings, client=client)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                out = []
                for token, pid in ((near, 100), (plenty, 100), (near, 999)):
                    out.append(
                        await http.put(
                            f"/execution/task-instances/{ti}/heartbeat",
                            json={"hostname": "worker-1", "pid": pid},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                    )
                refreshed = out[0].headers["refreshed-api-token"]
                out.append(
                    await http.put(
                        f"/execution/task-instances/{ti}/heartbeat",
                        json={"hostname": "worker-1", "pid": 100},
                        headers={"Authorization": f"Bearer {refreshed}"},
                    )
                )
                metrics = (await http.get("/metrics")).text
                assert "tistate_tokens_refreshed_total 2.0" in metrics, metrics[-2000:]
                return out

    first, second, conflict, with_refreshed = asyncio.run(heartbeats())
    assert first.status_code == 204 and "refreshed-api-token" in first.headers
    assert second.status_code == 204 and "refreshed-api-token" not in second.headers
    assert conflict.status_code == 409 and "refreshed-api-token" in conflict.headers
    assert with_refreshed.status_code == 204
    claims = jwt.decode(first.headers["refreshed-api-token"], SECRET, ["HS512"], audience=AUDIENCE)
    assert claims["exp"] - claims["iat"] == 600 and claims["sub"] == str(ti)


# ---------------------------------------------------------------------------- settings


def test_airflow_s_variable_names_are_the_fallback() -> None:
    env = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://af:pw@db:5433/airflow",
        "AIRFLOW__API_AUTH__JWT_SECRET": SECRET,
        "AIRFLOW__API_AUTH__JWT_ALGORITHM": "GUESS",
        "AIRFLOW__API_AUTH__JWT_ISSUER": "https://airflow.example",
        "AIRFLOW__EXECUTION_API__JWT_AUDIENCE": "urn:a,urn:b",
        "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME": "120",
    }
    settings = Settings.from_env(env)
    assert settings.database_url == "postgresql://af:pw@db:5433/airflow"
    assert settings.jwt_secret == SECRET and settings.jwt_algorithms is None  # GUESS
    assert settings.jwt_issuer == "https://airflow.example"
    assert settings.jwt_audience == "urn:a,urn:b" and settings.jwt_expiration_time == 120
    # a TISTATE_ variable wins, and so does an option
    mine = Settings.from_env(
        {**env, "TISTATE_DATABASE_URL": "postgresql://me@here/db", "TISTATE_JWT_ISSUER": "me"},
        jwt_audience="urn:option",
    )
    assert mine.database_url == "postgresql://me@here/db" and mine.jwt_issuer == "me"
    assert mine.jwt_audience == "urn:option"
    assert libpq_url("postgresql://a@b/c") == "postgresql://a@b/c"
    assert libpq_url("postgres+asyncpg://a@b/c?sslmode=require") == (
        "postgresql://a@b/c?sslmode=require"
    )
    with pytest.raises(ValueError, match="PostgreSQL"):
        Settings.from_env({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "mysql+mysqldb://a@b/c"})


def test_serve_help_lists_airflow_s_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tistate", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
        check=True,
    )
    text = " ".join(done.stdout.split())
    for name in (
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API_AUTH__JWT_ALGORITHM",
        "AIRFLOW__API_AUTH__JWT_ISSUER",
        "AIRFLOW__EXECUTION_API__JWT_AUDIENCE",
        "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME",
        "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH",
        "AIRFLOW__API_AUTH__TRUSTED_JWKS_URL",
        "TISTATE_AIRFLOW_API_URL",
    ):
        assert name in text, name
