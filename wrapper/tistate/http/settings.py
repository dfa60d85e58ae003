"""Settings of the HTTP service: command-line options, then TISTATE_* variables, then defaults.

Every limit that keeps the service bounded lives here, so one place says how much the process may
hold at once: `pool_size` database connections (fixed: min = max), at most `pool_max_waiting`
requests queued for one of them for at most `pool_timeout` seconds, at most `max_in_flight` requests
admitted in total (the rest answer 503 with Retry-After at once), and every row-lock wait bounded
by `lock_timeout` inside the SQL functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..tokens import ALGORITHMS, DEFAULT_AUDIENCE
from .budget import BYTE_COST, read_charge

__all__ = ["DEFAULT_AUDIENCE", "SUPPORTED_ALGORITHMS", "Settings"]

#: The only algorithms accepted (HMAC); `none` and asymmetric algorithms are refused.
SUPPORTED_ALGORITHMS = ALGORITHMS


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
    jwt_algorithms: tuple[str, ...] = ("HS256", "HS512")
    jwt_audience: str | None = DEFAULT_AUDIENCE
    jwt_issuer: str | None = None
    #: seconds of clock skew tolerated on exp/nbf/iat
    jwt_leeway: float = 0.0
    insecure_no_auth: bool = False

    # --- operations -------------------------------------------------------------------------
    #: seconds in-flight requests get to finish after SIGTERM
    graceful_timeout: float = 30.0
    log_level: str = "info"
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
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
        bad = [alg for alg in self.jwt_algorithms if alg not in SUPPORTED_ALGORITHMS]
        if bad or not self.jwt_algorithms:
            raise ValueError(
                f"unsupported JWT algorithm(s) {bad}: use {', '.join(SUPPORTED_ALGORITHMS)}"
            )
        if not self.insecure_no_auth and not self.jwt_secret:
            raise ValueError(
                "TISTATE_JWT_SECRET is not set: set it (tokens are signed with it) "
                "or run with --insecure-no-auth for a local demo"
            )

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
        take("TISTATE_PREPARED_STATEMENTS", "prepared_statements", _env_bool)
        take("TISTATE_NOTIFY_EVENTS", "notify_events", str)
        take("TISTATE_RELAY_INTERVAL", "relay_interval", float)
        take("TISTATE_JWT_SECRET", "jwt_secret")
        take(
            "TISTATE_JWT_ALGORITHMS",
            "jwt_algorithms",
            lambda raw: tuple(a.strip().upper() for a in raw.split(",") if a.strip()),
        )
        take("TISTATE_JWT_AUDIENCE", "jwt_audience")
        take("TISTATE_JWT_ISSUER", "jwt_issuer")
        take("TISTATE_JWT_LEEWAY", "jwt_leeway", float)
        take("TISTATE_INSECURE_NO_AUTH", "insecure_no_auth", _env_bool)
        take("TISTATE_GRACEFUL_TIMEOUT", "graceful_timeout", float)
        take("TISTATE_LOG_LEVEL", "log_level")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_database_url(self, url: str) -> Settings:
        return replace(self, database_url=url)
