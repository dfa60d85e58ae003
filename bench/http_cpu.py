"""CPU per request of the HTTP server: the two hot endpoints, measured from /proc/<pid>.

    python -m bench http-cpu                                  # this checkout
    python -m bench http-cpu --ab /tmp/tistate-head           # A = that tree, B = this checkout

(`python -m bench.http_cpu ...` is the same command.) Starts `tistate serve` (access log on, JWT
auth on, prepared statements on) from each source tree (bench.servers.start_server), on its own
database (`bench_httpcpu`, created and seeded here, so concurrent benchmarks on bench_h* are not
disturbed). Per repetition and server, a
fresh batch of N running task instances gets, per task instance:

1. PUT .../heartbeat  (the first use of the task instance's token), then
2. PATCH .../state    (bench.common.success_payload: 6 asset events; the token's second use),

phase by phase, from C keep-alive connections of a raw asyncio HTTP/1.1 client (a few µs of client
CPU per request). The server's CPU is the sum of its threads' on-CPU time (/proc/<pid>/task/*/
schedstat, nanoseconds) over each phase, divided by the requests of the phase. With --ab both
servers run at once and the phases alternate A, B, A, B..., so machine noise hits both alike.
Prints the median (and min/max) over the repetitions; "completion" is heartbeat + state.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.common import HOSTNAME, PID, dsn, scratch_db, url
from bench.http1 import Connection
from bench.load import make_token
from bench.procfs import cpu_ns
from bench.seed import BENCH_SCHEMA_SQL, _create, _define_dags, prepare_batch
from bench.servers import Server, start_server, stop_server
from tistate.migrate import migrate

DBNAME = scratch_db("httpcpu")
SECRET = "http-cpu-bench-secret-0123456789abcdef"


def setup_database(dbname: str = DBNAME) -> None:
    """A fresh database with the bench DAGs (no alias history)."""
    _create(dbname)
    migrate(dsn(dbname))
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        conn.execute(BENCH_SCHEMA_SQL)
        _define_dags(conn)
        conn.execute("VACUUM ANALYZE")


# ---------------------------------------------------------------------------------- client


def head(method: str, path: str, port: int, body: bytes, token: str | None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"host: 127.0.0.1:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "airflow-api-version: 2026-06-30",
    ]
    if token:
        lines.append(f"authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _one_get(port: int, path: str) -> tuple[int, bytes]:
    conn = await Connection.open("127.0.0.1", port)
    try:
        status, payload, _ = await conn.exchange(
            f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()
        )
        return status, payload
    finally:
        conn.close()


@dataclass
class Request:
    head: bytes
    body: bytes


@dataclass
class Phase:
    requests: list[Request]
    statuses: Counter[int] = field(default_factory=Counter)


async def run_phase(port: int, phase: Phase, concurrency: int) -> float:
    """Send every request of the phase from `concurrency` connections; wall seconds."""
    conns = [await Connection.open("127.0.0.1", port) for _ in range(concurrency)]
    queue = list(reversed(phase.requests))

    async def worker(conn: Connection) -> None:
        while queue:
            req = queue.pop()
            status, _, _ = await conn.exchange(req.head + req.body)
            phase.statuses[status] += 1

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    return time.perf_counter() - t0


def phases(server: Server, dbname: str, n: int, label: str) -> tuple[Phase, Phase]:
    """(heartbeats, state updates) for a fresh batch of n running task instances."""
    from bench.seed import load_payloads

    batch = prepare_batch(dbname, n, label)
    payloads = load_payloads(batch)
    hb_body = json.dumps({"hostname": HOSTNAME, "pid": PID}, separators=(",", ":")).encode()
    hb, st = Phase([]), Phase([])
    for ti_id, payload in zip(batch.ti_ids, payloads, strict=True):
        token = make_token(SECRET, str(ti_id))
        base = f"/execution/task-instances/{ti_id}"
        hb.requests.append(
            Request(head("PUT", f"{base}/heartbeat", server.port, hb_body, token), hb_body)
        )
        body = json.dumps(payload, separators=(",", ":")).encode()
        st.requests.append(Request(head("PATCH", f"{base}/state", server.port, body, token), body))
    return hb, st


def measure(server: Server, phase: Phase, concurrency: int) -> tuple[float, float]:
    """(server CPU ms per request, wall seconds) of one phase."""
    before = cpu_ns(server.proc.pid)
    wall = asyncio.run(run_phase(server.port, phase, concurrency))
    after = cpu_ns(server.proc.pid)
    return (after - before) / 1e6 / len(phase.requests), wall


# ---------------------------------------------------------------------------------- main


def run(
    *,
    src: Path,
    ab: Path | None,
    n: int,
    reps: int,
    concurrency: int,
    pool_size: int,
    warmup: int,
    keep_db: bool,
    json_path: Path | None,
) -> int:
    """Server B (tree `src`) and, with `ab`, server A beside it; 1 on unexpected statuses."""
    if not keep_db:
        setup_database()
    log_dir = Path(tempfile.mkdtemp(prefix="tistate-http-cpu-"))
    trees = [("A", ab)] if ab else []
    trees.append(("B", src))
    servers = [
        start_server(
            "tistate",
            url(DBNAME),
            log_dir=log_dir,
            jwt_secret=SECRET,
            env_extra={"TISTATE_POOL_SIZE": str(pool_size)},
            src=tree.resolve(),
            label=label,
        )
        for label, tree in trees
    ]
    results: dict[str, dict[str, list[float]]] = {
        s.label: {"heartbeat": [], "state": [], "completion": []} for s in servers
    }
    bad: Counter[str] = Counter()
    try:
        for s in servers:  # warm-up: prepared statements, caches, imports
            hb, st = phases(s, DBNAME, warmup, f"warmup-{s.label}")
            measure(s, hb, concurrency)
            measure(s, st, concurrency)
        for rep in range(reps):
            work = {s.label: phases(s, DBNAME, n, f"cpu-{s.label}-{rep}") for s in servers}
            order = servers if rep % 2 == 0 else list(reversed(servers))
            per: dict[str, dict[str, float]] = {s.label: {} for s in servers}
            for kind, index in (("heartbeat", 0), ("state", 1)):
                for s in order:
                    phase = work[s.label][index]
                    ms, wall = measure(s, phase, concurrency)
                    per[s.label][kind] = ms
                    for status, count in phase.statuses.items():
                        if status not in (200, 204):
                            bad[f"{s.label} {kind} {status}"] += count
                    print(
                        f"rep {rep + 1} {s.label} {kind:9s} {ms:6.3f} ms CPU/request "
                        f"({len(phase.requests) / wall:6.0f} req/s)",
                        flush=True,
                    )
            for s in servers:
                results[s.label]["heartbeat"].append(per[s.label]["heartbeat"])
                results[s.label]["state"].append(per[s.label]["state"])
                results[s.label]["completion"].append(
                    per[s.label]["heartbeat"] + per[s.label]["state"]
                )
    finally:
        for s in servers:
            stop_server(s)
    print()
    print(f"server CPU ms per request, median [min-max] of {reps} x {n}, C={concurrency}")
    summary: dict[str, Any] = {}
    for s in servers:
        summary[s.label] = {"src": str(s.src)}
        for kind, values in results[s.label].items():
            med = statistics.median(values)
            summary[s.label][kind] = {"median": med, "min": min(values), "max": max(values)}
            print(
                f"  {s.label} {kind:10s} {med:6.3f}  [{min(values):.3f}-{max(values):.3f}]  {s.src}"
            )
    if len(servers) == 2:
        for kind in ("heartbeat", "state", "completion"):
            a = summary["A"][kind]["median"]
            b = summary["B"][kind]["median"]
            print(f"  B/A {kind:10s} {b / a:6.2f}  ({a - b:+.3f} ms)")
    if bad:
        print(f"unexpected statuses: {dict(bad)} (logs in {log_dir})")
    if json_path:
        json_path.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":  # `python -m bench.http_cpu ...`, the command's name before bench.cli
    from bench.cli import app

    app(["http-cpu", *sys.argv[1:]], prog_name="python -m bench")
