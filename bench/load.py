"""Load generator: C concurrent workers finishing task instances over HTTP like Airflow's Task SDK.

Each worker takes the next task instance and sends its success PATCH to
/execution/task-instances/{id}/state (the payload of bench.common.success_payload), while a
heartbeat PUT for the same task instance runs alongside (one at once, then every 5 s until the
state call ends). Client behaviour follows the SDK (reference 5.5): a 5 s timeout; a timeout,
connection error or HTTP >= 500 is retried up to 5 times with random exponential backoff between
1 s and 90 s; 4xx is not retried. A 409 that answers a retry, when an earlier attempt may have
committed, counts as done only if the database shows the task succeeded.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from bench import http1
from bench.common import HOSTNAME, PID


@dataclass(frozen=True)
class Job:
    rn: int
    ti_id: str
    body: bytes
    token: str | None


@dataclass
class LoadConfig:
    base_urls: Sequence[
        str
    ]  # several: worker i talks to base_urls[i % len] (a client-side balancer)
    concurrency: int
    timeout_s: float = 5.0
    retries: int = 5
    backoff_min_s: float = 1.0
    backoff_max_s: float = 90.0
    heartbeat: bool = True
    heartbeat_interval_s: float = 5.0  # the Task SDK supervisor's minimum heartbeat interval
    time_limit_s: float = 300.0


@dataclass
class LoadResult:
    started: float = 0.0
    finished: float = 0.0
    done: dict[int, float] = field(
        default_factory=dict
    )  # rn -> completion latency (s), retries included
    failed: dict[int, str] = field(default_factory=dict)  # rn -> last status
    not_attempted: int = 0
    state_status: Counter[str] = field(default_factory=Counter)
    heartbeat_status: Counter[str] = field(default_factory=Counter)
    request_latency_s: list[float] = field(
        default_factory=list
    )  # every state attempt that got an answer
    heartbeat_latency_s: list[float] = field(default_factory=list)
    retries: int = 0
    conflicts_resolved: int = 0  # 409 after a retry, task found successful in the database
    client_cpu_s: float = 0.0
    last_done: float = 0.0


def make_token(secret: str, ti_id: str, claims: dict[str, Any] | None = None) -> str:
    """A per-TI bearer token: tistate.tokens.mint (Airflow's audience), valid for an hour."""
    if not claims:
        try:
            from datetime import timedelta

            from tistate.tokens import mint

            return mint(ti_id, secret=secret, ttl=timedelta(hours=1))
        except ImportError:
            pass
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": ti_id,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "scope": "ti:self",
    }
    payload.update(claims or {})
    return jwt.encode(payload, secret, algorithm="HS256")


def make_jobs(
    ti_ids: Sequence[Any],
    payloads: Sequence[dict[str, Any]],
    *,
    start_rn: int = 1,
    jwt_secret: str | None = None,
    claims: dict[str, Any] | None = None,
) -> list[Job]:
    """Jobs for task instances rn = start_rn.. (payloads pre-serialised, tokens pre-minted)."""
    return [
        Job(
            rn=rn,
            ti_id=str(ti_id),
            body=json.dumps(payload, separators=(",", ":")).encode(),
            token=make_token(jwt_secret, str(ti_id), claims) if jwt_secret else None,
        )
        for rn, (ti_id, payload) in enumerate(zip(ti_ids, payloads, strict=True), start=start_rn)
    ]


def _backoff(cfg: LoadConfig, attempt: int) -> float:
    """tenacity's wait_random_exponential(min=1, max=90) as the Task SDK uses it."""
    high = min(cfg.backoff_max_s, max(cfg.backoff_min_s, 2.0 ** (attempt - 1)))
    return random.uniform(cfg.backoff_min_s, high)


async def _send(
    client: http1.Session,
    method: str,
    path: str,
    body: bytes,
    headers: str,
    timeout: float,
) -> tuple[str, float]:
    t0 = time.perf_counter()
    try:
        status = str((await client.request(method, path, body, headers, timeout))[0])
    except TimeoutError:
        status = "timeout"
    except (http1.HttpError, OSError) as exc:
        status = f"conn_error:{type(exc).__name__}"
    return status, time.perf_counter() - t0


async def _heartbeats(
    client: http1.Session,
    cfg: LoadConfig,
    job: Job,
    headers: str,
    stop: asyncio.Event,
    result: LoadResult,
) -> None:
    body = json.dumps({"hostname": HOSTNAME, "pid": PID}).encode()
    url = f"/execution/task-instances/{job.ti_id}/heartbeat"
    while True:
        status, elapsed = await _send(client, "PUT", url, body, headers, cfg.timeout_s)
        result.heartbeat_status[status] += 1
        if status.isdigit():
            result.heartbeat_latency_s.append(elapsed)
        try:
            await asyncio.wait_for(stop.wait(), cfg.heartbeat_interval_s)
            return
        except TimeoutError:
            continue


async def _finish(
    client: http1.Session,
    cfg: LoadConfig,
    job: Job,
    result: LoadResult,
    db_state: Callable[[str], Awaitable[str | None]],
) -> None:
    headers = "content-type: application/json\r\n"
    if job.token:
        headers += f"authorization: Bearer {job.token}\r\n"
    url = f"/execution/task-instances/{job.ti_id}/state"
    stop = asyncio.Event()
    hb = (
        asyncio.create_task(_heartbeats(client, cfg, job, headers, stop, result))
        if cfg.heartbeat
        else None
    )
    t0 = time.perf_counter()
    attempt = 0
    try:
        while True:
            attempt += 1
            status, elapsed = await _send(client, "PATCH", url, job.body, headers, cfg.timeout_s)
            result.state_status[status] += 1
            if status.isdigit():
                result.request_latency_s.append(elapsed)
            if status in ("204", "200"):
                break
            if status == "409" and attempt > 1:
                # An earlier attempt may have committed before its answer was lost.
                if await db_state(job.ti_id) == "success":
                    result.conflicts_resolved += 1
                    break
                result.failed[job.rn] = status
                return
            retryable = not status.isdigit() or int(status) >= 500
            if not retryable or attempt > cfg.retries:
                result.failed[job.rn] = status
                return
            result.retries += 1
            await asyncio.sleep(_backoff(cfg, attempt))
        now = time.perf_counter()
        result.done[job.rn] = now - t0
        result.last_done = max(result.last_done, now)
    finally:
        stop.set()
        if hb is not None:
            await hb


async def run_load(
    cfg: LoadConfig,
    jobs: Sequence[Job],
    db_state: Callable[[str], Awaitable[str | None]],
) -> LoadResult:
    """Finish every job with cfg.concurrency workers; stop early at cfg.time_limit_s."""
    result = LoadResult()
    queue: asyncio.Queue[Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    # One client per worker, as every Airflow worker has its own: two sockets (state call and
    # heartbeat), to the worker's server (a client-side balancer over cfg.base_urls). The client is
    # bench.http1 rather than httpx (the Task SDK's client) or aiohttp: the generator shares the
    # server's two cores, and every microsecond it spends is taken from the system under test.
    clients = [
        http1.Session(cfg.base_urls[i % len(cfg.base_urls)], limit=2)
        for i in range(cfg.concurrency)
    ]

    async def worker(i: int) -> None:
        while True:
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await _finish(clients[i], cfg, job, result, db_state)

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        result.started = time.perf_counter()
        tasks = [asyncio.create_task(worker(i)) for i in range(cfg.concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=cfg.time_limit_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        result.finished = time.perf_counter()
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    result.client_cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    result.not_attempted = queue.qsize()
    return result


def percentiles(values: Sequence[float], scale: float = 1000.0) -> dict[str, float | None]:
    """p50/p95/p99/max (nearest rank), in ms by default."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(values)

    def rank(q: float) -> float:
        return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))] * scale

    return {
        "p50": round(rank(0.50), 2),
        "p95": round(rank(0.95), 2),
        "p99": round(rank(0.99), 2),
        "max": round(s[-1] * scale, 2),
        "mean": round(sum(s) / len(s) * scale, 2),
    }


def summarise(result: LoadResult, n_jobs: int) -> dict[str, Any]:
    """The figures of one load run (JSON-ready)."""
    elapsed = (result.last_done or result.finished) - result.started
    completed = len(result.done)
    return {
        "jobs": n_jobs,
        "completed": completed,
        "failed": len(result.failed),
        "failed_by_status": dict(Counter(result.failed.values())),
        "not_attempted": result.not_attempted,
        "elapsed_s": round(elapsed, 3),
        "completions_per_s": round(completed / elapsed, 1) if elapsed > 0 else None,
        "latency_ms": percentiles(list(result.done.values())),
        "request_latency_ms": percentiles(result.request_latency_s),
        "heartbeat_latency_ms": percentiles(result.heartbeat_latency_s),
        "state_status": dict(result.state_status),
        "heartbeat_status": dict(result.heartbeat_status),
        "retries": result.retries,
        "conflicts_resolved": result.conflicts_resolved,
        "client_cpu_s": round(result.client_cpu_s, 2),
    }
