"""PostgreSQL restarted under the HTTP service: in-flight calls and calls during the outage answer a
retryable 503 (never 500), /ready reports the outage, and the service reconnects by itself.

Runs on a private cluster (initdb into a temporary directory, a free loopback port): the shared
PostgreSQL other tests use is never restarted.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from faultkit import Hold, HttpLoad, Outcome, World, blocked_backends, check_invariant, tally
from faultkit.processes import PrivatePostgres
from http_support import mint, running_server
from tistate import migrate


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


def ready_status(http: httpx.Client) -> int:
    try:
        return http.get("/ready").status_code
    except httpx.TransportError:
        return 0


def until_success(load: HttpLoad, k: int, attempts: int = 40) -> list[Outcome]:
    """A worker's retry loop: retry 503s and transport errors with a short backoff."""
    outcomes: list[Outcome] = []
    for _ in range(attempts):
        outcome = load.call(k)
        outcomes.append(outcome)
        if not outcome.retryable:
            return outcomes
        time.sleep(0.1)  # client backoff between retries (not a synchronisation point)
    return outcomes


def test_postgres_restart_under_load(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    dsn = private_pg.createdb("tistate")
    migrate.migrate(dsn)
    world = World(dsn, tasks=24).create()
    figures: dict[str, Any] = {}
    with (
        running_server(
            dsn, tmp_path / "server.log", pool_size=4, pool_timeout=1.0, lock_timeout=30
        ) as server,
        HttpLoad(world, [server.url], lambda ti: mint(ti), workers=8) as load,
        httpx.Client(base_url=server.url, timeout=10) as http,
    ):
        # A. normal traffic
        before = load.run(range(8))
        assert {o.answer for o in before} == {"204"}

        # B. a fast shutdown while calls are blocked inside ti_update_state, then calls while down
        hold = Hold(world, [8, 9], "row")
        queue_hold = Hold(world, [10], "queue")
        in_flight = load.submit([8, 9, 10])
        blocked_backends(dsn, 3, [hold, queue_hold])
        private_pg.stop("fast")
        hold.release()
        queue_hold.release()
        killed = [f.result(timeout=30) for f in in_flight]
        started = time.monotonic()
        during = load.run(range(11, 16))
        down_status = ready_status(http)
        figures["ready_while_down"] = down_status
        figures["slowest_answer_while_down_s"] = round(time.monotonic() - started, 2)
        # A blocked call can still win the race with the shutdown: the hold's backend may be
        # terminated first, and a call woken by its released lock can commit before its own
        # SIGTERM is handled. It then answers 204, and the invariant below demands its writes.
        won_race = {o.k for o in killed if o.answer == "204"}
        for o in [*killed, *during]:
            if o.k in won_race:
                continue
            assert o.answer == "503", o
            assert o.detail["retry_after"] is not None
            assert o.detail["body"]["detail"]["reason"] in {"connection_failure", "pool_exhausted"}
        assert down_status == 503
        assert http.get("/health").status_code == 200

        # C. PostgreSQL is back: /ready recovers by itself, without restarting the service
        private_pg.start()
        restarted = time.monotonic()
        ready_polls: list[int] = []
        while (status := ready_status(http)) != 200:
            ready_polls.append(status)
            assert time.monotonic() - restarted < 30, f"/ready never recovered: {ready_polls}"
            time.sleep(0.05)
        figures["ready_recovery_s"] = round(time.monotonic() - restarted, 2)
        figures["ready_polls_before_200"] = tally(Outcome(0, str(s), 0) for s in ready_polls)

        # Nothing of the failed calls was written, nothing of the successful ones was lost.
        first = check_invariant(world, set(range(8)) | won_race, set(range(8, 16)) - won_race)
        assert first.problems == [], first.problems

        # D. every remaining completion (and every retry) through a worker's retry loop
        futures = [
            load.executor.submit(until_success, load, k) for k in range(8, 24) if k not in won_race
        ]
        after = [o for f in futures for o in f.result(timeout=90)]
        assert all(o.answer in {"204", "503"} for o in after), tally(after)
        final_answers = {f.result()[-1].answer for f in futures}
        assert final_answers == {"204"}
    final = check_invariant(world, set(range(24)), set())
    assert final.problems == [], final.problems
    assert final.events_found == final.events_expected == 48
    log = server.log()
    assert "Traceback" not in log
    figures.update(
        requests=len(before) + len(killed) + len(during) + len(after),
        answers_before=tally(before),
        answers_in_flight_at_shutdown=tally(killed),
        in_flight_committed_before_shutdown=len(won_race),
        answers_while_down=tally(during),
        answers_after_restart=tally(after),
        events_expected=final.events_expected,
        events_found=final.events_found,
    )
    print(f"\n[fault] postgres restart (http): {figures}")
