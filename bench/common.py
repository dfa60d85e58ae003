"""Shared names, connection strings and the Airflow-shaped success payload of the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))

# The server every benchmark database lives on (trust auth, database owner = superuser).
PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")

PRODUCER_DAG = "bench_producer"
PRODUCER_TASK = "emit"
N_ASSETS = 10
ALIASES = ("bench-alias-a", "bench-alias-b")
ALIAS_EVENTS = 5  # alias events per completion, on top of the one direct event
HOSTNAME = "bench-worker"
PID = 4242


# Several people may bench on one server: BENCH_DB_PREFIX keeps their databases apart.
DB_PREFIX = os.environ.get("BENCH_DB_PREFIX", "bench")


def db_name(history: int) -> str:
    """One database per alias-history size: bench_h0, bench_h1000000."""
    return f"{DB_PREFIX}_h{history}"


def scratch_db(purpose: str) -> str:
    """The database of a separate study: bench_httpcpu, bench_airflow_oom."""
    return f"{DB_PREFIX}_{purpose}"


def dsn(dbname: str, *, host: str = PG_HOST, port: int = PG_PORT) -> str:
    return f"host={host} port={port} user={PG_USER} dbname={dbname} application_name=tistate-bench"


def url(dbname: str, *, host: str = PG_HOST, port: int = PG_PORT) -> str:
    return f"postgresql://{PG_USER}@{host}:{port}/{dbname}"


@dataclass(frozen=True)
class AssetKey:
    name: str
    uri: str


def asset(k: int) -> AssetKey:
    k %= N_ASSETS
    return AssetKey(f"bench-asset-{k}", f"s3://bench-lake/asset-{k}")


def consumer_dag(k: int) -> str:
    return f"bench_consumer_asset_{k}"


def alias_consumer_dag(alias: str) -> str:
    return "bench_consumer_" + alias.replace("-", "_")


PAUSED_CONSUMER = "bench_consumer_paused"


def success_payload(rn: int, end_date: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    """The TISuccessStatePayload a worker sends for task instance number `rn`.

    One direct event on asset rn % 10 and five alias events (alternating between the two aliases,
    each on one of the next five assets, with distinct extras so none are grouped together), built
    like the Task SDK's _serialize_outlet_events (reference 3.2).
    """
    direct = asset(rn)
    events: list[dict[str, Any]] = [
        {
            "dest_asset_key": {"name": direct.name, "uri": direct.uri},
            "extra": {"rows": rn, "source": "bench", "kind": "direct"},
        }
    ]
    for j in range(ALIAS_EVENTS):
        target = asset(rn + 1 + j)
        events.append(
            {
                "source_alias_name": ALIASES[j % 2],
                "dest_asset_key": {"name": target.name, "uri": target.uri},
                "dest_asset_extra": {},
                "extra": {"rows": rn, "part": j, "kind": "alias"},
            }
        )
    return {
        "state": "success",
        "end_date": end_date,
        "task_outlets": [
            {"type": "Asset", "name": direct.name, "uri": direct.uri},
            *({"type": "AssetAlias", "name": a, "uri": None} for a in ALIASES),
        ],
        "outlet_events": events,
    }


def expected_events(rn: int) -> list[tuple[int, str | None]]:
    """(asset index, alias name or None) of every event the payload of `rn` must register."""
    out: list[tuple[int, str | None]] = [(rn % N_ASSETS, None)]
    out += [((rn + 1 + j) % N_ASSETS, ALIASES[j % 2]) for j in range(ALIAS_EVENTS)]
    return out


def expected_queue(rn: int) -> set[tuple[int, str]]:
    """(asset index, consumer dag id) rows the completion of `rn` must have queued."""
    rows: set[tuple[int, str]] = set()
    for k, alias in expected_events(rn):
        rows.add((k, consumer_dag(k)))
        if alias is not None:
            rows.add((k, alias_consumer_dag(alias)))
    return rows


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = subprocess.run(
        [
            "psql",
            "-h",
            PG_HOST,
            "-p",
            str(PG_PORT),
            "-U",
            PG_USER,
            "-Atc",
            "SELECT version()",
            "postgres",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg,
    }


def code_version() -> dict[str, str]:
    """The commit and migrations hash of the tistate the bench imports (what seeds and serves)."""
    import hashlib

    import tistate

    root = Path(tistate.__file__).resolve().parents[2]
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    digest = hashlib.sha256()
    for path in sorted((root / "sql_functions" / "migrations").glob("*.sql")):
        digest.update(path.read_bytes())
    return {"git_head": head, "migrations_sha256": digest.hexdigest()[:16]}


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
