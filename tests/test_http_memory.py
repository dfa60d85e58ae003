"""Memory per process is bounded by the body budget, and given back after a burst (issue 17,
finding 3), against a real server on loopback.

Before: a 4 MiB body cost about 16 MiB of RSS while served (the bytes read and joined, pydantic's
objects, the JSON text for PostgreSQL and libpq's copy), a body of many small JSON values up to
~60 times its size, and admission allowed `max_in_flight` (1010) of them at once; the memory was
not returned after the burst. Now every body is charged an estimate of that cost against
`body_memory_bytes` (tistate.http.budget): a burst of maximum-size bodies, of the shapes that cost
the most per byte, raises the peak RSS by no more than the budget; the bodies over it answer 503
with Retry-After (retryable), and the RSS comes back down once the burst is served.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

from http_support import Dags, Server, auth, running_server, success_payload

MiB = 1024 * 1024
BUDGET = 128 * MiB
MAX_BODY = 4 * MiB
ASSET = {"name": "orders", "uri": "s3://lake/orders"}
POOL_SIZE = 4
#: what may stay after the burst: libpq's buffer of each pool connection, plus slack
KEPT = POOL_SIZE * MAX_BODY + 8 * MiB


def _vm(server: Server, key: str) -> int:
    for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(key)


def _string_body(size: int) -> bytes:
    """A maximum-size body that is one long string (the finding's 4 MiB body)."""
    event = {"dest_asset_key": ASSET, "extra": {"blob": ""}}
    fixed = len(json.dumps(success_payload(outlet_events=[event])).encode())
    event["extra"] = {"blob": "x" * (size - fixed)}
    return json.dumps(success_payload(outlet_events=[event])).encode()


def _events_body(size: int) -> bytes:
    """A body of many small outlet events: the shape that costs the most memory per byte
    (a pydantic model per event and per asset key)."""
    one = len(json.dumps({"dest_asset_key": ASSET, "extra": {}}).encode()) + 2
    events = [{"dest_asset_key": ASSET, "extra": {}}] * (size // one - 2)
    return json.dumps(success_payload(outlet_events=events)).encode()


async def _patch(server: Server, ti: UUID, body: bytes) -> tuple[int, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        head = (
            f"PATCH /execution/task-instances/{ti}/state HTTP/1.1\r\nhost: t\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"authorization: {auth(ti)['Authorization']}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        lines = response.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        return int(lines[0].split(" ", 2)[1]), headers
    finally:
        writer.close()


def test_a_burst_of_maximum_size_bodies_stays_within_the_budget_and_is_given_back(
    db_dsn: str, tmp_path: Path
) -> None:
    dags = Dags(db_dsn)
    bodies = [_string_body(MAX_BODY) for _ in range(8)] + [_events_body(MiB) for _ in range(8)]
    tis = [dags.running() for _ in bodies]
    with running_server(
        db_dsn,
        tmp_path / "server.log",
        pool_size=POOL_SIZE,
        max_body_bytes=MAX_BODY,
        body_memory_bytes=BUDGET,
        statement_timeout=120,
    ) as server:
        # warm up: the code paths of both shapes, so the burst measures bodies, not imports
        asyncio.run(_patch(server, dags.running(), _events_body(64 * 1024)))
        baseline = _vm(server, "VmRSS")
        peak_before = _vm(server, "VmHWM")

        async def burst() -> list[tuple[int, dict[str, str]]]:
            return await asyncio.gather(
                *(_patch(server, t, b) for t, b in zip(tis, bodies, strict=True))
            )

        answers = asyncio.run(burst())
        peak = _vm(server, "VmHWM")
        # The heap is trimmed TRIM_DELAY after the last large body: wait for the RSS to come
        # down (bounded), rather than for a fixed time.
        deadline = time.monotonic() + 10
        while (after := _vm(server, "VmRSS")) - baseline >= KEPT and time.monotonic() < deadline:
            time.sleep(0.05)

    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {204, 503}, statuses
    assert statuses[204] >= 2 and statuses[503] >= 1, statuses
    assert all(h.get("retry-after") == "1" for s, h in answers if s == 503)
    grown = peak - max(baseline, 0)
    # The peak may predate the burst (start-up); what the burst added is at most the budget.
    assert peak <= max(peak_before, baseline + BUDGET), (
        f"peak {peak / MiB:.0f} MiB, baseline {baseline / MiB:.0f} MiB, "
        f"grown {grown / MiB:.0f} MiB > budget {BUDGET / MiB:.0f} MiB"
    )
    # Given back: what stays is the pool's libpq buffers (one per connection, the size of the
    # largest call it sent) and allocator slack, not the burst.
    kept = after - baseline
    assert kept < KEPT, f"kept {kept / MiB:.0f} MiB after the burst"


def test_a_body_too_complex_for_the_whole_budget_is_413(db_dsn: str, tmp_path: Path) -> None:
    """A 4 MiB body of a million empty objects would cost ~250 MiB of Python objects: more than
    the whole budget, so it is refused for good (413), not told to retry."""
    dags = Dags(db_dsn)
    ti = dags.running()
    event: dict[str, Any] = {
        "dest_asset_key": ASSET,
        "extra": {"rows": [{}] * (MAX_BODY // 3 - 100)},
    }
    body = json.dumps(success_payload(outlet_events=[event]), separators=(",", ":")).encode()
    assert len(body) <= MAX_BODY
    with running_server(
        db_dsn, tmp_path / "server.log", max_body_bytes=MAX_BODY, body_memory_bytes=BUDGET
    ) as server:
        status, _ = asyncio.run(_patch(server, ti, body))
        with server.client() as http:
            detail = http.patch(
                f"/execution/task-instances/{ti}/state", content=body, headers=auth(ti)
            ).json()["detail"]
    assert status == 413
    assert detail["reason"] == "body_too_large" and "too complex" in detail["message"]
    assert dags.state(ti) == "running"


def test_tune_gc_freezes_start_up_and_collects_the_young_generation_less_often() -> None:
    # In a child process: the collector's settings are the whole process's.
    script = (
        "import gc, json\n"
        "from tistate.http.gc_tuning import YOUNG_THRESHOLD, tune_gc\n"
        "before = gc.get_threshold()\n"
        "tune_gc()\n"
        "print(json.dumps([before, gc.get_threshold(), gc.get_freeze_count(), YOUNG_THRESHOLD]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, frozen, young = json.loads(out.stdout)
    assert after == [young, before[1], before[2]] and young > before[0]
    assert frozen > 1000  # the modules' objects and more
