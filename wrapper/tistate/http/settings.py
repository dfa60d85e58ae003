"""Settings of the HTTP service: command-line options, then TISTATE_* variables, then Airflow's own
variables (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, AIRFLOW__API_AUTH__JWT_SECRET, ...:
`AIRFLOW_NAMES`), then defaults, so an Airflow deployment's configuration works as it is.

Every limit that keeps the service bounded lives here, so one place says how much the process may
hold at once: `pool_size` database connections (fixed: min = max), at most `pool_max_waiting`
requests queued for one of them for at most `pool_timeout` seconds, at most `max_in_flight` requests
admitted in total (the rest answer 503 with Retry-After at once), and every row-lock wait bounded
by `lock_timeout` inside the SQL functions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..tokens import ASYMMETRIC_ALGORITHMS, DEFAULT_AUDIENCE, HMAC_ALGORITHMS
from .budget import BYTE_COST, read_charge

__all__ = ["AIRFLOW_NAMES", "DEFAULT_AUDIENCE", "SUPPORTED_ALGORITHMS", "Settings", "libpq_url"]

#: The algorithms a token may use (never `none`): HMAC with the secret, the others with a key.
SUPPORTED_ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS

#: Airflow's variable read when the TISTATE_ one is unset: (TISTATE_ name, Airflow's name).
AIRFLOW_NAMES: tuple[tuple[str, str], ...] = (
    ("TISTATE_DATABASE_URL", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"),
    ("TISTATE_JWT_SECRET", "AIRFLOW__API_AUTH__JWT_SECRET"),
    ("TISTATE_JWT_ALGORITHMS", "AIRFLOW__API_AUTH__JWT_ALGORITHM"),
    ("TISTATE_JWT_ISSUER", "AIRFLOW__API_AUTH__JWT_ISSUER"),
    ("TISTATE_JWT_LEEWAY", "AIRFLOW__API_AUTH__JWT_LEEWAY"),
    ("TISTATE_JWT_KID", "AIRFLOW__API_AUTH__JWT_KID"),
    ("TISTATE_JWT_PRIVATE_KEY_PATH", "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH"),
    ("TISTATE_JWT_JWKS_URL", "AIRFLOW__API_AUTH__TRUSTED_JWKS_URL"),
    ("TISTATE_JWT_AUDIENCE", "AIRFLOW__EXECUTION_API__JWT_AUDIENCE"),
    ("TISTATE_JWT_EXPIRATION_TIME", "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME"),
)

_SQLALCHEMY_POSTGRES = re.compile(r"^postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?://")


def libpq_url(url: str) -> str:
    """A libpq URL from an SQLAlchemy PostgreSQL URL (postgresql+psycopg2://... as Airflow's
    sql_alchemy_conn): the driver suffix dropped; anything but PostgreSQL is refused."""
    if not _SQLALCHEMY_POSTGRES.match(url):
        scheme = url.split("://", 1)[0] if "://" in url else url[:20]
        raise ValueError(f"the database URL must be PostgreSQL (postgresql://...), not {scheme!r}")
    return _SQLALCHEMY_POSTGRES.sub("postgresql://", url, count=1)


def _algorithms(raw: str) -> tuple[str, ...]:
    names = [a.strip() for a in raw.split(",") if a.strip()]
    return tuple("EdDSA" if n.lower() == "eddsa" else n.upper() for n in names)


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


#: values of tistate.notify_events (docs/dba.md)
NOTIFY_MODES = ("relay", "on", "off")


@dataclass(frozen=True)
class Settings:
    """Everything `tistate serve` can be told. Immutable; build variants with `replace()`."""

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080

    # --- bounds -----------------------------------------------------------------------------
    #: database connections, fixed (the pool never grows or shrinks)
    pool_size: int = 10
    #: requests allowed to wait for a connection (>= 1); one more answers 503 at once. Deep on
    #: purpose: each waiter is a coroutine (no thread), waits at most pool_timeout, and a 503 costs
    #: an Airflow worker >= 1 s of backoff (docs/benchmarks.md: 1.2-2.4x the throughput of 20)
    pool_max_waiting: int = 1000
    #: seconds a request may wait for a connection before answering 503
    pool_timeout: float = 2.0
    #: requests admitted at once on /execution (None: pool_size + pool_max_waiting)
    max_in_flight: int | None = None
    #: row-lock wait per call in seconds (None: the SQL default, 2 s, or GUC tistate.lock_timeout)
    lock_timeout: float | None = None
    #: statement_timeout of the pool's sessions in seconds (None: the server's setting). The
    #: total bound of a call: lock_timeout bounds each lock wait, and a call queued behind other
    #: waiters on one row waits twice (tuple lock, then the holder's transaction)
    statement_timeout: float | None = 30.0
    #: heartbeats sent to the database in one call at most (1: each alone). Those that arrive
    #: while earlier batches are at the database wait for the next (tistate.http.heartbeats)
    heartbeat_batch: int = 100
    #: server-side prepared statements; off behind PgBouncer in transaction-pooling mode
    prepared_statements: bool = True
    #: tistate.notify_events of the pool's sessions: relay (an outbox row per transition,
    #: announced by the relay this process runs), on (pg_notify in each transaction: every
    #: notifying commit of the cluster waits for the one before) or off. Behind PgBouncer the
    #: sessions keep the database's setting (ALTER DATABASE ... SET tistate.notify_events)
    notify_events: str = "relay"
    #: seconds between two relay transactions when the outbox was drained
    relay_interval: float = 0.1
    #: Retry-After seconds on every 503
    retry_after: int = 1
    #: server processes on the one port (uvicorn's supervisor): each has its own event loop,
    #: pool of pool_size connections, relay and admission limit; /metrics adds them up
    workers: int = 1
    #: open client connections (uvicorn's limit_concurrency): while this many are open, a request
    #: is answered 503 and its connection closed. The work is bounded by the admission limit
    #: and the pool, so this only bounds idle keep-alive connections (~12 KiB each): it is set
    #: well above what a fleet of workers keeps open (an Airflow worker keeps 1-2)
    max_connections: int = 4096
    #: largest request body accepted (413 above)
    max_body_bytes: int = 4 * 1024 * 1024
    #: memory for the request bodies being served, all requests together: each body is charged
    #: an estimate of what serving it costs (several times its size, more for many small JSON
    #: values: tistate.http.budget); a body that does not fit answers 503 (413 if it would not
    #: fit in the whole budget)
    body_memory_bytes: int = 256 * 1024 * 1024
    #: largest request head (request line and headers) accepted: 431 and the connection closed
    #: above, before the head is complete (an Airflow worker's head is under 2 KiB)
    max_header_bytes: int = 32 * 1024
    #: seconds from a connection's opening (or a request's first byte) to the end of the
    #: request's head; then 408 and the connection closed
    header_timeout: float = 10.0
    #: seconds from the end of a request's head to the end of its body; then 408 and closed
    body_timeout: float = 30.0

    # --- auth -------------------------------------------------------------------------------
    jwt_secret: str | None = field(default=None, repr=False)
    #: accepted algorithms; None: HS256 and HS512 with the secret, the key's own with a key
    jwt_algorithms: tuple[str, ...] | None = None
    #: accepted audiences, comma-separated (any one); the first is put in refreshed tokens
    jwt_audience: str | None = DEFAULT_AUDIENCE
    jwt_issuer: str | None = None
    #: seconds of clock skew tolerated on exp/nbf/iat (Airflow's [api_auth] jwt_leeway)
    jwt_leeway: float = 10.0
    #: PEM public key (or certificate-less private key) tokens are verified with
    jwt_public_key_path: str | None = None
    #: PEM private key (Airflow's jwt_private_key_path): verifies tokens and signs refreshed ones
    jwt_private_key_path: str | None = None
    #: JWKS file or http(s) URL of trusted public keys (Airflow's trusted_jwks_url)
    jwt_jwks_url: str | None = None
    #: `kid` of refreshed tokens (Airflow's jwt_kid; default: "not-used" or the key's thumbprint)
    jwt_kid: str | None = None
    #: lifetime of a refreshed token in seconds (Airflow's [execution_api] jwt_expiration_time)
    jwt_expiration_time: float = 600.0
    #: re-issue execution tokens near expiry in Refreshed-API-Token (as Airflow's API server)
    token_refresh: bool = True
    insecure_no_auth: bool = False

    # --- Airflow ----------------------------------------------------------------------------
    #: Airflow's API server (not the proxy), where state updates tistate does not implement
    #: (awaiting_input) are forwarded, e.g. http://airflow-api:8080
    airflow_api_url: str | None = None
    #: seconds a forwarded request may take
    forward_timeout: float = 30.0
    #: seconds between two checks of tistate.compatibility_problems() while serving (0: none);
    #: while it finds problems, execution requests answer 503 (no write)
    compatibility_interval: float = 30.0

    # --- operations -------------------------------------------------------------------------
    #: seconds in-flight requests get to finish after SIGTERM
    graceful_timeout: float = 30.0
    log_level: str = "info"
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if not 1 <= self.heartbeat_batch <= 1000:
            raise ValueError("heartbeat_batch must be between 1 and 1000")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.pool_max_waiting < 1:
            raise ValueError("pool_max_waiting must be at least 1 (the queue is always bounded)")
        if self.pool_timeout <= 0:
            raise ValueError("pool_timeout must be positive")
        if self.max_in_flight is not None and self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.notify_events not in NOTIFY_MODES:
            raise ValueError(f"notify_events must be one of {', '.join(NOTIFY_MODES)}")
        if self.relay_interval <= 0:
            raise ValueError("relay_interval must be positive")
        if self.body_memory_bytes < read_charge(self.max_body_bytes):
            raise ValueError(
                "body_memory_bytes must be at least "
                f"{read_charge(self.max_body_bytes)} ({BYTE_COST} x max_body_bytes)"
            )
        if self.max_header_bytes < 1024:
            raise ValueError("max_header_bytes must be at least 1024")
        if self.header_timeout <= 0 or self.body_timeout <= 0:
            raise ValueError("header_timeout and body_timeout must be positive")
        if self.jwt_algorithms is not None:
            bad = [alg for alg in self.jwt_algorithms if alg not in SUPPORTED_ALGORITHMS]
            if bad or not self.jwt_algorithms:
                raise ValueError(
                    f"unsupported JWT algorithm(s) {bad}: use {', '.join(SUPPORTED_ALGORITHMS)}"
                )
        if self.jwt_expiration_time <= 0:
            raise ValueError("jwt_expiration_time must be positive")
        if not self.insecure_no_auth and not (self.jwt_secret or self.has_keys):
            raise ValueError(
                "TISTATE_JWT_SECRET is not set (nor AIRFLOW__API_AUTH__JWT_SECRET, nor a key: "
                "TISTATE_JWT_PUBLIC_KEY_PATH, TISTATE_JWT_PRIVATE_KEY_PATH, TISTATE_JWT_JWKS_URL): "
                "set one (tokens are signed with it) or run with --insecure-no-auth for a "
                "local demo"
            )

    @property
    def has_keys(self) -> bool:
        """Tokens are verified with public keys (not the shared secret)."""
        return bool(self.jwt_public_key_path or self.jwt_private_key_path or self.jwt_jwks_url)

    @property
    def admission_limit(self) -> int:
        """Requests admitted at once on the execution routes."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        return self.pool_size + self.pool_max_waiting

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from TISTATE_* variables; keyword overrides (CLI options) win unless None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}

        def take(name: str, key: str, convert: Any = str) -> None:
            raw = env.get(name)
            if raw is not None and raw.strip() != "":
                values[key] = convert(raw)

        take("TISTATE_DATABASE_URL", "database_url")
        take("TISTATE_HOST", "host")
        take("TISTATE_PORT", "port", int)
        take("TISTATE_POOL_SIZE", "pool_size", int)
        take("TISTATE_POOL_MAX_WAITING", "pool_max_waiting", int)
        take("TISTATE_POOL_TIMEOUT", "pool_timeout", float)
        take("TISTATE_MAX_IN_FLIGHT", "max_in_flight", int)
        take("TISTATE_LOCK_TIMEOUT", "lock_timeout", float)
        take("TISTATE_STATEMENT_TIMEOUT", "statement_timeout", float)
        take("TISTATE_RETRY_AFTER", "retry_after", int)
        take("TISTATE_MAX_BODY_BYTES", "max_body_bytes", int)
        take("TISTATE_MAX_CONNECTIONS", "max_connections", int)
        take("TISTATE_BODY_MEMORY_BYTES", "body_memory_bytes", int)
        take("TISTATE_MAX_HEADER_BYTES", "max_header_bytes", int)
        take("TISTATE_HEADER_TIMEOUT", "header_timeout", float)
        take("TISTATE_BODY_TIMEOUT", "body_timeout", float)
        take("TISTATE_WORKERS", "workers", int)
        take("TISTATE_HEARTBEAT_BATCH", "heartbeat_batch", int)
        take("TISTATE_PREPARED_STATEMENTS", "prepared_statements", _env_bool)
        take("TISTATE_NOTIFY_EVENTS", "notify_events", str)
        take("TISTATE_RELAY_INTERVAL", "relay_interval", float)
        take("TISTATE_JWT_SECRET", "jwt_secret")
        take("TISTATE_JWT_ALGORITHMS", "jwt_algorithms", _algorithms)
        take("TISTATE_JWT_AUDIENCE", "jwt_audience")
        take("TISTATE_JWT_ISSUER", "jwt_issuer")
        take("TISTATE_JWT_LEEWAY", "jwt_leeway", float)
        take("TISTATE_JWT_PUBLIC_KEY_PATH", "jwt_public_key_path")
        take("TISTATE_JWT_PRIVATE_KEY_PATH", "jwt_private_key_path")
        take("TISTATE_JWT_JWKS_URL", "jwt_jwks_url")
        take("TISTATE_JWT_KID", "jwt_kid")
        take("TISTATE_JWT_EXPIRATION_TIME", "jwt_expiration_time", float)
        take("TISTATE_TOKEN_REFRESH", "token_refresh", _env_bool)
        take("TISTATE_AIRFLOW_API_URL", "airflow_api_url")
        take("TISTATE_FORWARD_TIMEOUT", "forward_timeout", float)
        take("TISTATE_COMPATIBILITY_INTERVAL", "compatibility_interval", float)
        take("TISTATE_INSECURE_NO_AUTH", "insecure_no_auth", _env_bool)
        take("TISTATE_GRACEFUL_TIMEOUT", "graceful_timeout", float)
        take("TISTATE_LOG_LEVEL", "log_level")
        # Airflow's own names, for what the TISTATE_ variables left unset
        explicit = {k for k, v in overrides.items() if v is not None}
        fallbacks: dict[str, tuple[str, Any]] = {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": ("database_url", libpq_url),
            "AIRFLOW__API_AUTH__JWT_SECRET": ("jwt_secret", str),
            "AIRFLOW__API_AUTH__JWT_ALGORITHM": ("jwt_algorithms", _algorithms),
            "AIRFLOW__API_AUTH__JWT_ISSUER": ("jwt_issuer", str),
            "AIRFLOW__API_AUTH__JWT_LEEWAY": ("jwt_leeway", float),
            "AIRFLOW__API_AUTH__JWT_KID": ("jwt_kid", str),
            "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH": ("jwt_private_key_path", str),
            "AIRFLOW__API_AUTH__TRUSTED_JWKS_URL": ("jwt_jwks_url", str),
            "AIRFLOW__EXECUTION_API__JWT_AUDIENCE": ("jwt_audience", str),
            "AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME": ("jwt_expiration_time", float),
        }
        for name, (key, convert) in fallbacks.items():
            raw = env.get(name)
            if key in values or key in explicit or raw is None or raw.strip() == "":
                continue
            if key == "jwt_algorithms" and raw.strip().upper() == "GUESS":
                continue  # Airflow's default: HS512 for a secret, the key's own for a key
            values[key] = convert(raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database_url=url)
