"""`tistate serve --workers N`: several processes on one port, their metrics added up.

Real processes throughout: the supervisor is `python -m tistate.http` with TISTATE_WORKERS, the
workers are its children, the database is the test's PostgreSQL.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from http_support import NOW, Dags, auth, running_server, success_payload
from tistate.cli import app

POOL_SIZE = 2


def _workers(parent: int) -> list[int]:
    """Worker processes of a supervisor: its spawned children."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def _metrics_directory(worker: int) -> Path:
    """The Prometheus multiprocess directory a worker was started with."""
    for item in Path(f"/proc/{worker}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
            return Path(item.split(b"=", 1)[1].decode())
    raise AssertionError("the worker has no metrics directory")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (the supervisor reaps it).
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` whose labels are exactly `labels`."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if match and match.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if found == labels:
                return float(match.group(3))
    raise AssertionError(f"{name}{labels} not in /metrics")


def _fresh_request(url: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request on a new connection, so the kernel can hand it to any worker."""
    with httpx.Client(base_url=url, timeout=30.0) as client:
        return client.request(method, path, **kwargs)  # type: ignore[arg-type]


def _wait_until_both_workers_serve(url: str) -> None:
    """The supervisor starts the workers without waiting for them: wait (bounded) until both
    pools are open, as the summed pool gauge shows."""
    deadline = time.monotonic() + 30
    while True:
        text = _fresh_request(url, "GET", "/metrics").text
        if _metric(text, "tistate_db_pool_size") == 2 * POOL_SIZE:
            return
        assert time.monotonic() < deadline, text
        time.sleep(0.1)


def test_two_workers_serve_one_port_and_metrics_add_up(db_dsn: str, tmp_path: Path) -> None:
    dags = Dags(db_dsn)
    tis = [dags.running() for _ in range(6)]
    with running_server(db_dsn, tmp_path / "server.log", workers=2, pool_size=POOL_SIZE) as server:
        workers = _workers(server.pid)
        assert len(workers) == 2, server.log()
        _wait_until_both_workers_serve(server.url)
        for ti in tis:
            heartbeat = _fresh_request(
                server.url,
                "PUT",
                f"/execution/task-instances/{ti}/heartbeat",
                json={"hostname": "worker-1", "pid": 100},
                headers=auth(ti),
            )
            assert heartbeat.status_code == 204, heartbeat.text
            state = _fresh_request(
                server.url,
                "PATCH",
                f"/execution/task-instances/{ti}/state",
                json=success_payload(end_date=NOW.isoformat()),
                headers=auth(ti),
            )
            assert state.status_code == 204, state.text
        assert {dags.state(ti) for ti in tis} == {"success"}

        # Whichever worker answers /metrics, it reports both workers' requests and pools.
        heartbeats = {
            "route": "/execution/task-instances/{task_instance_id}/heartbeat",
            "method": "PUT",
            "status": "204",
        }
        for _ in range(6):
            text = _fresh_request(server.url, "GET", "/metrics").text
            assert _metric(text, "tistate_http_requests_total", **heartbeats) == 6
            assert _metric(text, "tistate_transitions_total", state="success", applied="true") == 6
            assert _metric(text, "tistate_db_pool_size") == 2 * POOL_SIZE

        assert server.stop() == 0
        assert not any(_alive(pid) for pid in workers)
    assert "Started parent process" in server.log()


def test_a_killed_worker_is_replaced_and_its_counts_are_kept(db_dsn: str, tmp_path: Path) -> None:
    with running_server(db_dsn, tmp_path / "server.log", workers=2, pool_size=POOL_SIZE) as server:
        _wait_until_both_workers_serve(server.url)
        for _ in range(8):
            assert _fresh_request(server.url, "GET", "/health").status_code == 200
        health = {"route": "/health", "method": "GET", "status": "200"}
        before = _metric(
            _fresh_request(server.url, "GET", "/metrics").text,
            "tistate_http_requests_total",
            **health,
        )
        assert before == 8
        victim, survivor = _workers(server.pid)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # the supervisor checks its workers every half second
            workers = _workers(server.pid)
            if len(workers) == 2 and victim not in workers:
                break
            assert time.monotonic() < deadline, f"no replacement for {victim}: {workers}"
            time.sleep(0.1)
        assert survivor in workers
        for _ in range(4):
            assert _fresh_request(server.url, "GET", "/health").status_code == 200
        after = _metric(
            _fresh_request(server.url, "GET", "/metrics").text,
            "tistate_http_requests_total",
            **health,
        )
        assert after == 8 + 4  # the dead worker's counts stay
        # ... but not its live gauges: the replacement drops them when it starts.
        (replacement,) = set(workers) - {survivor}
        directory = _metrics_directory(survivor)
        deadline = time.monotonic() + 30
        while not (directory / f"gauge_livesum_{replacement}.db").exists():
            assert time.monotonic() < deadline, "the replacement never set its gauges"
            time.sleep(0.1)
        text = _fresh_request(server.url, "GET", "/metrics").text
        assert _metric(text, "tistate_db_pool_size") == 2 * POOL_SIZE
        assert not (directory / f"gauge_livesum_{victim}.db").exists()
        assert _metric(
            _fresh_request(server.url, "GET", "/metrics").text, "tistate_db_pool_size"
        ) == (2 * POOL_SIZE)
        assert server.stop() == 0


def test_workers_must_be_at_least_one() -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0", "--insecure-no-auth"])
    assert result.exit_code == 2
    assert "--workers" in result.stderr
