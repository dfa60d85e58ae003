"""Prometheus metrics of one app instance (its own registry, so several apps can share a process).

Under `tistate serve --workers N` the supervisor sets PROMETHEUS_MULTIPROC_DIR before it starts the
workers: each worker's values then live in files there, and /metrics, whichever worker answers,
adds up all workers (prometheus_client's multiprocess mode; gauges are summed over live workers).

Request metrics are labelled by the route *template*
(`/execution/task-instances/{task_instance_id}/state`), never by the concrete
path, so the number of series stays bounded whatever ids clients send.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from ..errors import LockTimeoutError, RetryableError, TistateError
from ..models import StateUpdateResult

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_DIR_ENV", "Metrics"]

#: where the workers of one `tistate serve --workers N` keep their values (set by the supervisor)
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: label combinations whose children are kept at hand (beyond: looked up on each call)
_CHILDREN_CACHED = 256
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that died without their shutdown (killed, crashed).

    A worker removes its own at a graceful stop; the replacement the supervisor starts for a
    dead one removes the dead one's here, so the summed gauges count live workers only."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Metrics:
    """The service's metrics; `render()` gives the exposition text."""

    def __init__(self, pool_stats: Callable[[], Mapping[str, int] | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess = bool(os.environ.get(MULTIPROC_DIR_ENV))
        if self.multiprocess:
            _forget_dead_workers(os.environ[MULTIPROC_DIR_ENV])
        self._pool_stats = pool_stats
        r = self.registry
        self.requests = Counter(
            "tistate_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "tistate_http_request_duration_seconds",
            "HTTP request latency, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        def live_gauge(name: str, documentation: str) -> Gauge:
            # With several workers: the sum over the workers alive.
            return Gauge(name, documentation, registry=r, multiprocess_mode="livesum")

        self.in_flight = live_gauge(
            "tistate_http_requests_in_flight", "Execution API requests being served"
        )
        # The pool's counters, read when /metrics is rendered (and, with several workers,
        # every second by each worker: refresh_pool).
        self.pool_size = live_gauge("tistate_db_pool_size", "Database connections open in the pool")
        self.pool_in_use = live_gauge(
            "tistate_db_pool_in_use", "Database connections lent to a request"
        )
        self.pool_waiting = live_gauge(
            "tistate_db_pool_waiting", "Requests waiting for a database connection"
        )
        self.rejected = Counter(
            "tistate_http_rejected",
            "Requests refused with 503 before any work, by reason",
            ["reason"],
            registry=r,
        )
        self.transitions = Counter(
            "tistate_transitions",
            "Task-instance transitions answered, by resulting state and whether they applied",
            ["state", "applied"],
            registry=r,
        )
        self.asset_events = Counter(
            "tistate_asset_events_written", "Asset events registered by state updates", registry=r
        )
        self.lock_timeouts = Counter(
            "tistate_lock_timeouts",
            "Calls that gave up waiting for a row lock (SQLSTATE 55P03)",
            registry=r,
        )
        self.retryable = Counter(
            "tistate_retryable_errors",
            "Retryable failures answered with 503, by reason",
            ["reason"],
            registry=r,
        )
        self.errors = Counter(
            "tistate_errors",
            "Errors from the database layer, by exception class",
            ["error"],
            registry=r,
        )
        self.tokens_refreshed = Counter(
            "tistate_tokens_refreshed",
            "Execution tokens re-issued near expiry (Refreshed-API-Token)",
            registry=r,
        )
        self.forwarded = Counter(
            "tistate_forwarded_requests",
            "Requests forwarded to Airflow's API server (awaiting_input), by status",
            ["status"],
            registry=r,
        )
        self.heartbeat_batches = Counter(
            "tistate_heartbeat_batches",
            "Heartbeat batches sent to the database (ti_heartbeat_batch), by outcome",
            ["outcome"],
            registry=r,
        )
        self.heartbeats_batched = Counter(
            "tistate_heartbeats_batched",
            "Heartbeats sent in batches, by whether the batch recorded them (else sent alone)",
            ["recorded"],
            registry=r,
        )
        # Labelled children by label values: .labels() validates and locks on every call.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._transition_children: dict[tuple[str, bool], Counter] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            if len(self._request_children) < _CHILDREN_CACHED:
                self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_transition(self, result: StateUpdateResult) -> None:
        key = (str(result.new_state), result.applied)
        child = self._transition_children.get(key)
        if child is None:
            child = self.transitions.labels(key[0], "true" if result.applied else "false")
            if len(self._transition_children) < _CHILDREN_CACHED:
                self._transition_children[key] = child
        child.inc()
        if result.applied and result.asset_event_ids:
            self.asset_events.inc(len(result.asset_event_ids))

    def observe_heartbeat_batch(self, size: int, recorded: int, failed: bool) -> None:
        self.heartbeat_batches.labels("failed" if failed else "sent").inc()
        self.heartbeats_batched.labels("true").inc(recorded)
        self.heartbeats_batched.labels("false").inc(size - recorded)

    def observe_running(self) -> None:
        self.transitions.labels("running", "true").inc()

    def observe_error(self, exc: TistateError) -> None:
        self.errors.labels(type(exc).__name__).inc()
        if isinstance(exc, LockTimeoutError):
            self.lock_timeouts.inc()
        if isinstance(exc, RetryableError):
            self.retryable.labels(exc.default_reason).inc()

    def observe_token_refresh(self) -> None:
        self.tokens_refreshed.inc()

    def observe_forward(self, status: int) -> None:
        self.forwarded.labels(str(status)).inc()

    def observe_rejection(self, reason: str) -> None:
        self.rejected.labels(reason).inc()
        self.retryable.labels(reason).inc()

    def refresh_pool(self) -> None:
        stats = self._pool_stats() or {}
        size = stats.get("pool_size", 0)
        self.pool_size.set(size)
        self.pool_in_use.set(max(size - stats.get("pool_available", 0), 0))
        self.pool_waiting.set(stats.get("requests_waiting", 0))

    def render(self) -> bytes:
        self.refresh_pool()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def worker_stopped(self) -> None:
        """Drop this worker's live gauges from the sums (multiprocess mode)."""
        if self.multiprocess:
            mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
