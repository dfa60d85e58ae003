"""After a run: every completed task has exactly its expected events, alias links and queue rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

import psycopg

from bench.common import (
    ALIASES,
    N_ASSETS,
    PAUSED_CONSUMER,
    asset,
    dsn,
    expected_events,
    expected_queue,
)


def verify_batch(dbname: str, batch_id: int, client_done: Collection[int]) -> dict[str, Any]:
    """Compare the database with the payloads of batch `batch_id` and with what the client saw.

    lost_events / duplicated_events: per successful task instance, expected (asset, alias) events
    missing or present more than once; orphan_events: events of a task instance that is not in
    success (a half-applied call); lost_completions: the client got a success answer but the task
    is not in success; queue_missing / queue_unexpected: asset_dag_run_queue against the consumers
    the successful payloads must have queued (the queue is emptied before each run);
    outbox_left: notification outbox rows no relay announced (emptied before each run; the
    service's relay drains it on stop, the raw system's `tistate relay` on SIGINT).
    """
    names = {asset(k).name: k for k in range(N_ASSETS)}
    with psycopg.connect(dsn(dbname), autocommit=True) as conn:
        states = {
            rn: state
            for rn, state in conn.execute(
                "SELECT m.rn, ti.state FROM bench.ti_map AS m "
                "JOIN tistate.task_instance AS ti ON ti.id = m.ti_id WHERE m.batch_id = %s",
                (batch_id,),
            )
        }
        events: dict[int, Counter[tuple[int, str | None]]] = {}
        for rn, asset_name, alias_names in conn.execute(
            """
            SELECT m.rn, a.name,
                   ARRAY(SELECT al.name FROM tistate.asset_alias_asset_event AS l
                         JOIN tistate.asset_alias AS al ON al.id = l.alias_id
                         WHERE l.event_id = e.id ORDER BY al.name)
            FROM bench.ti_map AS m
            JOIN tistate.asset_event_producer AS p ON p.ti_id = m.ti_id
            JOIN tistate.asset_event AS e ON e.id = p.event_id
            JOIN tistate.asset AS a ON a.id = e.asset_id
            WHERE m.batch_id = %s
            """,
            (batch_id,),
        ):
            key = (names.get(asset_name, -1), alias_names[0] if len(alias_names) == 1 else None)
            if len(alias_names) > 1:
                key = (names.get(asset_name, -1), ",".join(alias_names))
            events.setdefault(rn, Counter())[key] += 1
        audit = Counter(
            {
                int(map_index) + 2: count
                for map_index, count in conn.execute(
                    "SELECT l.map_index, count(*) FROM tistate.log AS l "
                    "JOIN bench.batch AS b ON b.run_id = l.run_id "
                    "WHERE b.id = %s AND l.event = 'success' GROUP BY 1",
                    (batch_id,),
                )
            }
        )
        queue = {
            (names.get(name, -1), dag_id)
            for name, dag_id in conn.execute(
                "SELECT a.name, q.target_dag_id FROM tistate.asset_dag_run_queue AS q "
                "JOIN tistate.asset AS a ON a.id = q.asset_id"
            )
        }
        history_links: dict[str, int] = dict(
            conn.execute(
                "SELECT al.name, count(*) FROM tistate.asset_alias_asset_event AS l "
                "JOIN tistate.asset_alias AS al ON al.id = l.alias_id "
                "WHERE al.name = ANY(%s) GROUP BY 1",
                (list(ALIASES),),
            ).fetchall()
        )
        outbox_left = int(
            conn.execute("SELECT count(*) FROM tistate.asset_event_outbox").fetchone()[0]  # type: ignore[index]
        )
    success = {rn for rn, state in states.items() if state == "success"}
    lost = duplicated = orphan = 0
    expected_q: set[tuple[int, str]] = set()
    for rn in states:
        got = events.get(rn, Counter())
        if rn not in success:
            orphan += sum(got.values())
            continue
        want = Counter(expected_events(rn))
        lost += sum((want - got).values())
        duplicated += sum((got - want).values())
        expected_q |= expected_queue(rn)
    # The first task instance of a batch has map_index -1, the others 0..n-2: rn = map_index + 2.
    audit_missing = sum(1 for rn in success if audit.get(rn, 0) == 0)
    audit_duplicated = sum(max(0, c - 1) for c in audit.values())
    return {
        "task_instances": len(states),
        "success_in_db": len(success),
        "client_done": len(client_done),
        "lost_completions": len(set(client_done) - success),
        "unacknowledged_successes": len(success - set(client_done)),
        "events_expected": sum(len(expected_events(rn)) for rn in success),
        "lost_events": lost,
        "duplicated_events": duplicated,
        "orphan_events": orphan,
        "queue_missing": len(expected_q - queue),
        "queue_unexpected": len(queue - expected_q),
        "queue_paused_consumer": sum(1 for _, d in queue if d == PAUSED_CONSUMER),
        "audit_missing": audit_missing,
        "audit_duplicated": audit_duplicated,
        "alias_history_links": history_links,
        "outbox_left": outbox_left,
        "ok": lost == 0
        and outbox_left == 0
        and duplicated == 0
        and orphan == 0
        and not (set(client_done) - success)
        and not (expected_q - queue)
        and not (queue - expected_q)
        and audit_missing == 0
        and audit_duplicated == 0,
    }
