-- ti_queue: none / scheduled / up_for_retry / up_for_reschedule / deferred -> queued, with
-- try_number counted where Airflow's scheduler counts it; queued is the no-op; TS409 otherwise.
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(22);

-- From none: a new try.
\o /dev/null
SELECT tistate.ti_mark(pg_temp.ti('p2', 'a'), 'none', 'clear', p_now => '2030-01-01T00:30:00Z');
CREATE TEMP TABLE r AS SELECT * FROM tistate.ti_queue(pg_temp.ti('p2', 'a'), p_now => '2030-01-01T01:00:00Z');
\o
SELECT is((SELECT ROW(previous_state, new_state, applied, new_ti_id)::text FROM r), '(,queued,t,)', 'none -> queued: result');
SELECT is((SELECT ti_id FROM r), pg_temp.ti('p2', 'a'), 'result ti_id');
SELECT results_eq(
    $$SELECT state::text, try_number, queued_dttm, scheduled_dttm, updated_at FROM task_instance WHERE id = pg_temp.ti('p2', 'a')$$,
    $$VALUES ('queued', 2, '2030-01-01T01:00:00Z'::timestamptz, '2030-01-01T01:00:00Z'::timestamptz, '2030-01-01T01:00:00Z'::timestamptz)$$,
    'none -> queued: try_number + 1, queued_dttm, scheduled_dttm, updated_at');
SELECT results_eq(
    $$SELECT event::text, try_number, extra::jsonb, dttm FROM log WHERE task_id = 'a' AND event = 'queued'$$,
    $$VALUES ('queued', 2, '{"previous_state": null, "new_try": true}'::jsonb, '2030-01-01T01:00:00Z'::timestamptz)$$,
    'log row queued with the new try and the previous state');

-- Queued again: the no-op.
SELECT is((SELECT ROW(previous_state, new_state, applied)::text FROM tistate.ti_queue(pg_temp.ti('p2', 'a'))), '(queued,queued,f)',
          'queued -> queued: the no-op');
SELECT is((pg_temp.row('p2', 'a')).try_number, 2, 'no-op: try_number unchanged');
SELECT is((SELECT count(*)::integer FROM log WHERE task_id = 'a' AND event = 'queued'), 1, 'no-op: no log row');

-- From scheduled: the try was counted when it was scheduled.
\o /dev/null
SELECT tistate.ti_mark(pg_temp.ti('p2', 'b'), 'scheduled', 'test', p_now => '2030-01-01T00:30:00Z');
UPDATE task_instance SET scheduled_dttm = '2030-01-01T00:30:00Z' WHERE id = pg_temp.ti('p2', 'b');
SELECT tistate.ti_queue(pg_temp.ti('p2', 'b'), p_now => '2030-01-01T01:00:00Z');
\o
SELECT is((pg_temp.row('p2', 'b')).try_number, 1, 'scheduled -> queued: try_number unchanged');
SELECT is((pg_temp.row('p2', 'b')).scheduled_dttm, '2030-01-01T00:30:00Z'::timestamptz, 'scheduled -> queued: scheduled_dttm kept');

-- From up_for_retry: a new try, on the new id.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'c'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'c'), '{"state": "up_for_retry", "end_date": "2030-01-01T01:00:01Z"}');
CREATE TEMP TABLE rc AS SELECT * FROM tistate.ti_queue(pg_temp.ti('p2', 'c'), p_now => '2030-01-01T01:05:00Z');
\o
SELECT is((SELECT previous_state FROM rc), 'up_for_retry', 'up_for_retry -> queued');
SELECT is((pg_temp.row('p2', 'c')).try_number, 2, 'up_for_retry -> queued: try_number + 1');

-- From up_for_reschedule: same try.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'd'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'd'),
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:01Z", "reschedule_date": "2030-01-01T01:01:00Z"}');
CREATE TEMP TABLE rd AS SELECT * FROM tistate.ti_queue(pg_temp.ti('p2', 'd'), p_now => '2030-01-01T01:05:00Z');
\o
SELECT is((SELECT ROW(previous_state, applied)::text FROM rd), '(up_for_reschedule,t)', 'up_for_reschedule -> queued');
SELECT is((pg_temp.row('p2', 'd')).try_number, 1, 'up_for_reschedule -> queued: try_number unchanged');

-- From deferred: same try, trigger reference dropped, resume data kept.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'td'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'td'),
    '{"state": "deferred", "classpath": "x.T", "next_method": "resume", "next_kwargs": {"k": 1}, "trigger_timeout": 60}');
SELECT tistate.ti_queue(pg_temp.ti('p2', 'td'), p_now => '2030-01-01T01:05:00Z');
\o
SELECT results_eq(
    $$SELECT state::text, try_number, trigger_id, trigger_timeout, next_method::text, next_kwargs
      FROM task_instance WHERE id = pg_temp.ti('p2', 'td')$$,
    $$VALUES ('queued', 1, NULL::integer, NULL::timestamptz, 'resume', '{"k": 1}'::jsonb)$$,
    'deferred -> queued: same try, trigger_id/trigger_timeout cleared, next_method/next_kwargs kept');
SELECT is((SELECT count(*)::integer FROM trigger), 1, 'the trigger row itself is kept (deleting it would cascade to the TI)');

-- Refused states: TS409 with previous_state.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2ff', t), '2030-01-01T01:00:00Z') FROM unnest(ARRAY['boom', 'done1']) AS t;
SELECT tistate.ti_update_state(pg_temp.ti('p2ff', 'done1'), '{"state": "success", "end_date": "2030-01-01T01:00:01Z"}');
SELECT tistate.ti_mark(pg_temp.ti('p2ff', 'none1'), 'failed', 'test');
SELECT tistate.ti_mark(pg_temp.ti('p2ff', 'queued1'), 'restarting', 'test');
\o
SELECT throws_ok(format($$SELECT tistate.ti_queue(%L)$$, pg_temp.ti('p2ff', t)), 'TS409', NULL, format('%s -> queued: TS409', s))
FROM (VALUES ('boom', 'running'), ('done1', 'success'), ('none1', 'failed'), ('queued1', 'restarting')) AS x (t, s);
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_queue(%L)$$, pg_temp.ti('p2ff', 'boom'))) -> 'detail' ->> 'previous_state',
          'running', 'TS409 DETAIL previous_state');
SELECT throws_ok($$SELECT tistate.ti_queue('00000000-0000-7000-8000-000000000000')$$, 'TS404', NULL, 'unknown id: TS404');
SELECT is((SELECT count(*)::integer FROM log WHERE dag_id = 'p2ff' AND event = 'queued'), 0, 'refused calls log nothing');

SELECT * FROM finish();
ROLLBACK;
