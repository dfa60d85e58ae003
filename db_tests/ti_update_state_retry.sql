-- ti_update_state up_for_retry: history row for the finished try (idempotent per try), reschedule
-- rows deleted, retry fields, a new uuid7 id, and TS410 for the old id from every function.
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(34);

\o /dev/null
-- Task a: one reschedule first, so the try owns a task_reschedule row.
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'a'),
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:05Z", "reschedule_date": "2030-01-01T01:10:00Z"}',
    p_now => '2030-01-01T01:00:05Z');
SELECT tistate_test.ti_queue(pg_temp.ti('p2', 'a'), p_now => '2030-01-01T01:10:00Z');
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:10:01Z');
CREATE TEMP TABLE old AS SELECT pg_temp.ti('p2', 'a') AS id;
CREATE TEMP TABLE r AS
SELECT * FROM tistate.ti_update_state((SELECT id FROM old),
    jsonb_build_object('state', 'up_for_retry', 'end_date', '2030-01-01T01:20:01Z', 'retry_delay_seconds', 30.5,
                       'retry_reason', repeat('x', 600), 'rendered_map_index', 'rmi'),
    p_now => '2030-01-01T01:20:02Z');
\o
SELECT is((SELECT count(*)::integer FROM task_reschedule WHERE ti_id = (SELECT id FROM old)), 0,
          'retry: the old id''s task_reschedule rows are deleted');
SELECT is((SELECT ROW(previous_state, new_state, applied)::text FROM r), '(running,up_for_retry,t)', 'retry: result');
SELECT is((SELECT ti_id FROM r), (SELECT id FROM old), 'retry: result ti_id is the old id');
SELECT ok((SELECT new_ti_id IS NOT NULL AND new_ti_id <> ti_id FROM r), 'retry: result new_ti_id is a new id');
SELECT is((SELECT substr(new_ti_id::text, 15, 1) FROM r), '7', 'retry: the new id is a uuid version 7');
SELECT is(pg_temp.ti('p2', 'a'), (SELECT new_ti_id FROM r), 'retry: the live row carries new_ti_id');
SELECT is((SELECT count(*)::integer FROM task_instance WHERE id = (SELECT id FROM old)), 0, 'retry: the old id is gone from task_instance');
SELECT is((pg_temp.row('p2', 'a')).state::text, 'up_for_retry', 'retry: state');
SELECT is((pg_temp.row('p2', 'a')).try_number, 1, 'retry: try_number unchanged (ti_queue counts the next try)');
SELECT is((pg_temp.row('p2', 'a')).end_date, '2030-01-01T01:20:01Z'::timestamptz, 'retry: end_date');
SELECT is((pg_temp.row('p2', 'a')).duration, 600::double precision, 'retry: duration');
SELECT is((pg_temp.row('p2', 'a')).retry_delay_override, 30.5::double precision, 'retry: retry_delay_override');
SELECT is((pg_temp.row('p2', 'a')).retry_reason::text, repeat('x', 500), 'retry: retry_reason truncated to 500');
SELECT is((pg_temp.row('p2', 'a')).rendered_map_index::text, 'rmi', 'retry: rendered_map_index');
SELECT is((pg_temp.row('p2', 'a')).updated_at, '2030-01-01T01:20:02Z'::timestamptz, 'retry: updated_at');

SELECT results_eq(
    $$SELECT task_instance_id, try_number, state::text, start_date, end_date, duration, hostname::text, pid,
             retry_delay_override, length(retry_reason), rendered_map_index::text
      FROM task_instance_history WHERE dag_id = 'p2' AND task_id = 'a'$$,
    $$SELECT (SELECT id FROM old), 1, 'failed', '2030-01-01T01:10:01Z'::timestamptz, '2030-01-01T01:20:01Z'::timestamptz,
             600::double precision, 'h1', 42, 30.5::double precision, 500, 'rmi'$$,
    'retry: one history row for the finished try: old id, state failed, try 1, its times and retry fields');
SELECT results_eq(
    $$SELECT event::text, try_number, dttm FROM log WHERE task_id = 'a' AND dag_id = 'p2' ORDER BY id DESC LIMIT 1$$,
    $$VALUES ('up_for_retry', 1, '2030-01-01T01:20:02Z'::timestamptz)$$,
    'retry: audit row with the finished try');

-- The old id answers TS410 from every function.
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, '{"state": "up_for_retry", "end_date": "2030-01-01T01:20:01Z"}')$$,
                        (SELECT id FROM old)), 'TS410', NULL, 'old id: ti_update_state TS410 (Airflow: 404)');
SELECT throws_ok(format($$SELECT tistate.ti_run(%L, '{"state": "running", "hostname": "h1", "unixname": "u", "pid": 1, "start_date": "2030-01-01T02:00:00Z"}')$$,
                        (SELECT id FROM old)), 'TS410', NULL, 'old id: ti_run TS410');
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, (SELECT id FROM old)), 'TS410', NULL, 'old id: ti_heartbeat TS410');
SELECT throws_ok(format($$SELECT tistate_test.ti_queue(%L)$$, (SELECT id FROM old)), 'TS410', NULL, 'old id: ti_queue TS410');
SELECT throws_ok(format($$SELECT tistate.ti_mark(%L, 'success', 'x')$$, (SELECT id FROM old)), 'TS410', NULL, 'old id: ti_mark TS410');
SELECT throws_ok(format($$SELECT tistate.ti_skip_downstream(%L, '["b"]')$$, (SELECT id FROM old)), 'TS410', NULL,
                 'old id: ti_skip_downstream TS410');
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, (SELECT id FROM old))) -> 'detail' ->> 'reason',
          'gone', 'TS410 DETAIL reason gone');

-- The new id: the same state again is the no-op.
SELECT is((SELECT ROW(applied, new_ti_id)::text FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
              '{"state": "up_for_retry", "end_date": "2030-01-01T01:30:00Z"}')), '(f,)', 'new id, up_for_retry again: the no-op');
SELECT is((SELECT count(*)::integer FROM task_instance_history WHERE task_id = 'a'), 1, 'no-op: no second history row');

-- Idempotent per try: a history row already recorded for (b, try 1) is kept, not duplicated.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'b'), '2030-01-01T02:00:00Z');
INSERT INTO task_instance_history (task_instance_id, task_id, dag_id, run_id, map_index, try_number, state, pool, pool_slots)
VALUES ('00000000-0000-7000-8000-0000000000b1', 'b', 'p2', 'r1', -1, 1, 'failed', 'default_pool', 1);
CREATE TEMP TABLE rb AS SELECT * FROM tistate.ti_update_state(pg_temp.ti('p2', 'b'),
    '{"state": "up_for_retry", "end_date": "2030-01-01T02:00:09Z"}', p_now => '2030-01-01T02:00:10Z');
\o
SELECT results_eq($$SELECT task_instance_id FROM task_instance_history WHERE task_id = 'b'$$,
                  $$VALUES ('00000000-0000-7000-8000-0000000000b1'::uuid)$$,
                  'history is written at most once per try');
SELECT is((SELECT applied FROM rb), true, 'the retry itself still applies');
SELECT is((pg_temp.row('p2', 'b')).retry_reason, NULL, 'no retry_reason sent: NULL');
SELECT is((pg_temp.row('p2', 'b')).retry_delay_override, NULL, 'no retry_delay_seconds sent: NULL');

-- Validation.
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, %L)$$, pg_temp.ti('p2', 'c'), p), 'TS422', NULL, 'TS422: ' || p)
FROM unnest(ARRAY[
    '{"state": "up_for_retry"}',
    '{"state": "up_for_retry", "end_date": "2030-01-01T02:00:09Z", "retry_delay_seconds": "30"}',
    '{"state": "up_for_retry", "end_date": "2030-01-01T02:00:09Z", "retry_reason": 5}',
    '{"state": "up_for_retry", "end_date": "2030-01-01T02:00:09Z", "reschedule_date": "2030-01-01T02:00:09Z"}']) AS p;

SELECT * FROM finish();
ROLLBACK;
