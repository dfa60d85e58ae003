"""Retries and duplicates: a duplicated or retried completion never duplicates anything.

- The same success payload sent 20 times at once for one task instance (library and HTTP): one is
  applied, every other answer is the no-op (or a retryable error whose retry is the no-op), and
  exactly one set of events, alias links, queue rows and audit row exists.
- A retry after a lost response (the client timed out while the server committed) is the no-op,
  and it reports the events the first call registered.
- After up_for_retry, the old id answers 410 on every function and endpoint, every time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from faultkit import (
    END_DATE,
    RUNNING,
    Hold,
    HttpLoad,
    LibraryLoad,
    Outcome,
    World,
    blocked_backends,
    check_invariant,
    tally,
)
from http_support import Server, mint, running_server
from tistate import Client, GoneError

DUPLICATES = 20


@pytest.fixture
def world(db_dsn: str) -> World:
    return World(db_dsn, tasks=4).create()


@pytest.fixture
def server(db_dsn: str, tmp_path: Path) -> Iterator[Server]:
    with running_server(db_dsn, tmp_path / "server.log", pool_size=8, lock_timeout=2) as srv:
        yield srv


def event_ids(world: World, k: int) -> list[int]:
    with psycopg.connect(world.dsn) as conn:
        rows = conn.execute(
            "SELECT id FROM tistate_test.asset_event WHERE ti_id = %s ORDER BY id",
            [world.ti_ids[k]],
        ).fetchall()
    return [row[0] for row in rows]


def all_at_once(call: Any, n: int) -> list[Outcome]:
    """`n` threads released together by a barrier, each making the same call once."""
    barrier = threading.Barrier(n)
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait(timeout=30)
        outcome = call()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == n
    return outcomes


def test_twenty_concurrent_duplicates_library(world: World) -> None:
    with LibraryLoad(world, workers=DUPLICATES) as load:
        outcomes = all_at_once(lambda: load.call(0), DUPLICATES)
        answers = tally(outcomes)
        assert answers.get("applied") == 1, answers
        retried = [load.call(0) for o in outcomes if o.retryable]
        assert set(answers) <= {"applied", "noop", "LockTimeoutError"}, answers
        assert all(o.answer == "noop" for o in retried)
    inv = check_invariant(world, {0}, {1, 2, 3})
    assert inv.problems == [], inv.problems
    assert inv.events_found == inv.events_expected == 2
    print(
        f"\n[retries] 20 duplicates (library): {answers}, retried {tally(retried)}, {inv.summary()}"
    )


def test_twenty_concurrent_duplicates_http(world: World, server: Server) -> None:
    with HttpLoad(world, [server.url], mint, workers=DUPLICATES) as load:
        outcomes = all_at_once(lambda: load.call(1), DUPLICATES)
        answers = tally(outcomes)
        assert answers.get("204") == 1, answers
        assert set(answers) <= {"204", "200", "503"}, answers
        retried = [load.call(1) for o in outcomes if o.retryable]
        assert all(o.answer == "200" for o in retried)
    inv = check_invariant(world, {1}, {0, 2, 3})
    assert inv.problems == [], inv.problems
    assert inv.events_found == inv.events_expected == 2
    print(f"\n[retries] 20 duplicates (http): {answers}, retried {tally(retried)}, {inv.summary()}")


def test_retry_after_lost_response_is_the_no_op_library(world: World) -> None:
    with Client(world.dsn) as client:
        first = client.ti_update_state(world.ti_ids[2], world.payload(2))
        # ... the answer is lost; the worker retries the same payload:
        again = client.ti_update_state(world.ti_ids[2], world.payload(2))
    assert first.applied and not again.applied
    assert again.previous_state == again.new_state == "success"
    assert again.asset_event_ids == first.asset_event_ids == event_ids(world, 2)
    inv = check_invariant(world, {2}, {0, 1, 3})
    assert inv.problems == [], inv.problems


def test_retry_after_lost_response_is_the_no_op_http(world: World, server: Server) -> None:
    """The client gives up (read timeout) while its call waits on a lock; the server commits
    after the client left; the retry answers 200 with applied=false and the committed events."""
    ti_id = world.ti_ids[3]
    url = f"{server.url}/execution/task-instances/{ti_id}/state"
    headers = {"Authorization": f"Bearer {mint(ti_id)}"}
    hold = Hold(world, [3], "row")
    lost: list[BaseException] = []

    def send_and_lose_the_answer() -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=0.5)) as http:
            try:
                http.patch(url, json=world.payload(3), headers=headers)
            except httpx.ReadTimeout as exc:
                lost.append(exc)

    try:
        sender = threading.Thread(target=send_and_lose_the_answer)
        sender.start()
        blocked_backends(world.dsn, 1, [hold])
        sender.join(timeout=10)
        assert not sender.is_alive() and len(lost) == 1, "the client did not time out"
    finally:
        hold.release()
    # The server still runs the call the client abandoned; wait (bounded) until it committed.
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        for _ in range(500):
            row = conn.execute("SELECT state FROM task_instance WHERE id = %s", [ti_id]).fetchone()
            if row == ("success",):
                break
            threading.Event().wait(0.02)  # polling the database for a state
        assert row == ("success",)
    with httpx.Client(timeout=10) as http:
        retry = http.patch(url, json=world.payload(3), headers=headers)
    assert retry.status_code == 200, retry.text
    body = retry.json()
    assert body["applied"] is False and body["new_state"] == "success"
    assert body["asset_event_ids"] == event_ids(world, 3)
    inv = check_invariant(world, {3}, {0, 1, 2})
    assert inv.problems == [], inv.problems


# ------------------------------------------------------------------ 410 after up_for_retry
RETRY = {"state": "up_for_retry", "end_date": END_DATE, "retry_reason": "boom"}


def test_old_id_is_gone_everywhere_after_up_for_retry(world: World, server: Server) -> None:
    old = world.ti_ids[0]
    with Client(world.dsn) as client:
        result = client.ti_update_state(old, RETRY)
        assert result.applied and result.new_state == "up_for_retry"
        assert result.new_ti_id is not None and result.new_ti_id != old
        new: UUID = result.new_ti_id
        library_calls: dict[str, Any] = {
            "ti_update_state(success)": lambda: client.ti_update_state(old, world.payload(0)),
            "ti_update_state(up_for_retry)": lambda: client.ti_update_state(old, RETRY),
            "ti_update_state(failed)": lambda: client.ti_update_state(
                old, {"state": "failed", "end_date": END_DATE}
            ),
            "ti_run": lambda: client.ti_run(old, RUNNING),
            "ti_heartbeat": lambda: client.ti_heartbeat(old, "fault-worker", 4711),
            "ti_skip_downstream": lambda: client.ti_skip_downstream(old, ["t001"]),
            "ti_queue": lambda: client.ti_queue(old),
            "ti_mark": lambda: client.ti_mark(old, "success", reason="operator"),
        }
        for name, call in library_calls.items():
            for _ in range(2):  # consistently, not just once
                with pytest.raises(GoneError) as caught:
                    call()
                assert caught.value.sqlstate == "TS410", name
                assert caught.value.http_status == 410
        # The new id lives on: the next try queues and runs.
        assert client.ti_queue(new).new_state == "queued"
        client.ti_run(new, RUNNING)
        for name, call in library_calls.items():
            if name != "ti_mark":  # ti_mark would override the old id's history; still 410
                with pytest.raises(GoneError):
                    call()
        with pytest.raises(GoneError):
            library_calls["ti_mark"]()

    base = f"{server.url}/execution/task-instances/{old}"
    headers = {"Authorization": f"Bearer {mint(old)}"}
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("PATCH", "/state", world.payload(0)),
        ("PATCH", "/state", RETRY),
        ("PATCH", "/state", {"state": "skipped", "end_date": END_DATE}),
        ("PATCH", "/run", RUNNING),
        ("PUT", "/heartbeat", {"hostname": "fault-worker", "pid": 4711}),
        ("PATCH", "/skip-downstream", {"tasks": ["t001"]}),
    ]
    statuses: list[int] = []
    with httpx.Client(timeout=10) as http:
        for method, path, body in requests:
            for _ in range(2):
                response = http.request(method, base + path, json=body, headers=headers)
                statuses.append(response.status_code)
                assert response.status_code == 410, (method, path, response.text)
                assert response.json()["detail"]["reason"]
    # The old try's history is intact and the retry wrote nothing for it.
    with psycopg.connect(world.dsn) as conn:
        history = conn.execute(
            "SELECT count(*) FROM task_instance_history WHERE task_instance_id = %s",
            [old],
        ).fetchone()
        events = conn.execute(
            "SELECT count(*) FROM tistate_test.asset_event WHERE ti_id = %s", [old]
        ).fetchone()
    assert history == (1,) and events == (0,)
    print(
        "\n[retries] 410 after up_for_retry: library 16 x TS410, http",
        tally(Outcome(0, str(s), 0) for s in statuses),
    )
