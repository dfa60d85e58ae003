"""pgbench baselines without HTTP (the function: raw; the floor) and a lock-hold micro-run."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from bench.common import PG_BIN, PG_HOST, PG_PORT, PG_USER, dsn
from bench.floor import floor_script
from bench.load import percentiles
from bench.seed import Batch

# Each pgbench client finishes its own task instances: client c, transaction k -> row c * per + k.
# -D k=0 starts the counter; pgbench keeps a client's variables from one transaction to the next.
PGBENCH_SCRIPT = """\
\\set k :k + 1
\\set rn :client_id * :per + :k
SELECT (r).applied FROM bench.ti_map AS m,
       LATERAL tistate.ti_update_state(p_ti_id => m.ti_id, p_payload => m.payload) AS r
WHERE m.batch_id = :batch AND m.rn = :rn;
"""


def max_raw_clients(reserve: int = 20) -> int:
    """How many pgbench connections fit beside everyone else's (max_connections is shared)."""
    with psycopg.connect(dsn("postgres"), autocommit=True) as conn:
        limit = int(conn.execute("SHOW max_connections").fetchone()[0])  # type: ignore[index]
        used = int(conn.execute("SELECT count(*) FROM pg_stat_activity").fetchone()[0])  # type: ignore[index]
    return max(1, limit - used - reserve)


def wait_for_clients(clients: int, timeout_s: float = 300.0, reserve: int = 20) -> None:
    """Wait until `clients` pgbench connections fit (someone else's run may hold them): runs
    compared side by side need the same client count, not whatever is left at the moment."""
    deadline = time.monotonic() + timeout_s
    while max_raw_clients(reserve) < clients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{clients} connections for pgbench not free after {timeout_s} s")
        time.sleep(2)


def _start_relay(dbname: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`tistate relay` beside pgbench, as the service runs one; an error if it does not start."""
    with open(log_path, "wb") as log:
        relay = subprocess.Popen(
            [sys.executable, "-m", "tistate", "relay", "--database-url", dsn(dbname)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while relay.poll() is None and time.monotonic() < deadline:
        if _relay_connected(dbname):
            return relay
        time.sleep(0.05)
    relay.kill()
    raise RuntimeError(f"the relay did not start: {log_path.read_text()[-2000:]}")


def _relay_connected(dbname: str) -> bool:
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'tistate-relay'",
            (dbname,),
        ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class PgbenchSystem:
    """A system the bench runs under pgbench: its script and its sessions' notify mode."""

    label: str  # the `system` of its results
    notify: str  # tistate.notify_events of the sessions: relay, on or off
    script: str = PGBENCH_SCRIPT


#: pgbench systems by name: the function in each notify mode, and the floor (bench/floor.py)
PGBENCH_SYSTEMS = {
    "raw": PgbenchSystem("raw (pgbench)", "relay"),
    "raw-notify-on": PgbenchSystem("raw (pgbench, notify on)", "on"),
    "raw-nonotify": PgbenchSystem("raw (pgbench, notify off)", "off"),
    "floor": PgbenchSystem("floor (pgbench)", "relay", floor_script()),
}


def run_pgbench(
    batch: Batch,
    clients: int,
    *,
    per_client: int,
    threads: int = 2,
    notify: str = "relay",
    script_text: str = PGBENCH_SCRIPT,
) -> dict[str, Any]:
    """pgbench -c clients -t per_client over batch rows 1 .. clients * per_client (+1 offset)."""
    assert clients * per_client <= batch.n
    workdir = Path(tempfile.mkdtemp(prefix="tistate-bench-pgbench-"))
    script = workdir / "finish.sql"
    script.write_text(script_text)
    cmd = [
        str(PG_BIN / "pgbench"),
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        "-n",
        "-M",
        "prepared",
        "-f",
        str(script),
        "-c",
        str(clients),
        "-j",
        str(min(threads, clients)),
        "-t",
        str(per_client),
        "-D",
        "k=0",
        "-D",
        f"per={per_client}",
        "-D",
        f"batch={batch.id}",
        "-l",
        "--log-prefix",
        str(workdir / "tx"),
        batch.dbname,
    ]
    # tistate.notify_events as `tistate serve` sets it (relay, with a relay running alongside, as
    # the service runs one), or on (pg_notify in every transaction), or off (no notification).
    env = dict(os.environ)
    env["PGOPTIONS"] = f"-c tistate.notify_events={notify}"
    relay_log = workdir / "relay.log"
    relay = _start_relay(batch.dbname, relay_log) if notify == "relay" else None
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    finally:
        if relay is not None:
            relay.send_signal(signal.SIGINT)  # drains what is left, then exits
            if relay.wait(timeout=30) != 0:
                raise RuntimeError(f"the relay failed: {relay_log.read_text()[-2000:]}")
    out = proc.stdout + proc.stderr
    tps_match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    failed_match = re.search(r"number of failed transactions: (\d+)", out)
    latencies: list[float] = []
    for log in workdir.glob("tx*"):
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]) / 1_000_000)
    return {
        "returncode": proc.returncode,
        "clients": clients,
        "transactions": clients * per_client,
        "completed": len(latencies),
        "failed": int(failed_match.group(1)) if failed_match else None,
        "completions_per_s": float(tps_match.group(1)) if tps_match else None,
        "latency_ms": percentiles(latencies),
        "command": " ".join(cmd),
        "output_tail": out[-600:] if proc.returncode else "",
        "done_rns": [c * per_client + k for c in range(clients) for k in range(1, per_client + 1)],
    }


async def _micro_worker(
    conninfo: str, jobs: list[tuple[Any, Any]], out: list[tuple[float, float]]
) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for ti_id, payload in jobs:
            cur = await conn.execute(
                "SELECT lock_wait_ms, lock_held_ms "
                "FROM tistate.ti_update_state(p_ti_id => %s, p_payload => %s)",
                (ti_id, psycopg.types.json.Jsonb(payload)),
            )
            row = await cur.fetchone()
            assert row is not None
            out.append((float(row[0]), float(row[1])))


async def micro_lock_hold(
    batch: Batch, payloads: list[dict[str, Any]], concurrency: int
) -> dict[str, Any]:
    """Call the function directly and collect its own lock timings (the HTTP 204 carries none)."""
    jobs = list(zip(batch.ti_ids, payloads, strict=True))
    out: list[tuple[float, float]] = []
    chunks = [jobs[i::concurrency] for i in range(concurrency)]
    await asyncio.gather(*(_micro_worker(dsn(batch.dbname), chunk, out) for chunk in chunks))
    # The calls ran in the database's mode (relay): announce their events, as a relay would.
    async with await psycopg.AsyncConnection.connect(dsn(batch.dbname), autocommit=True) as conn:
        sent = 1
        while sent:
            row = await (await conn.execute("SELECT tistate.relay_notifications()")).fetchone()
            sent = row[0] if row else 0
    return {
        "concurrency": concurrency,
        "calls": len(out),
        "lock_wait_ms": percentiles([w for w, _ in out], scale=1.0),
        "lock_held_ms": percentiles([h for _, h in out], scale=1.0),
    }
