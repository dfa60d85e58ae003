-- ti_update_state up_for_reschedule: the task_reschedule row (start_date = the poke's real start,
-- duration in whole seconds), the TI columns, the audit row, the no-op and validation.
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(17);

\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
CREATE TEMP TABLE r AS
SELECT * FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:07.9Z", "reschedule_date": "2030-01-01T01:05:00Z"}',
    p_now => '2030-01-01T01:00:08Z');
\o
SELECT is((SELECT ROW(previous_state, new_state, applied, new_ti_id)::text FROM r), '(running,up_for_reschedule,t,)', 'reschedule: result');
SELECT results_eq(
    $$SELECT ti_id, start_date, end_date, duration, reschedule_date FROM task_reschedule$$,
    $$SELECT pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z'::timestamptz, '2030-01-01T01:00:07.9Z'::timestamptz, 7,
             '2030-01-01T01:05:00Z'::timestamptz$$,
    'reschedule: task_reschedule row with the poke''s start (not now) and duration truncated to whole seconds');
SELECT results_eq(
    $$SELECT state::text, end_date, duration, try_number, updated_at FROM task_instance WHERE id = pg_temp.ti('p2', 'a')$$,
    $$VALUES ('up_for_reschedule', '2030-01-01T01:00:07.9Z'::timestamptz, 7.9::double precision, 1, '2030-01-01T01:00:08Z'::timestamptz)$$,
    'reschedule: state, end_date, duration, try_number unchanged, updated_at');
SELECT ok((pg_temp.row('p2', 'a')).next_method IS NULL AND (pg_temp.row('p2', 'a')).next_kwargs IS NULL, 'reschedule: deferral fields NULL');
SELECT results_eq($$SELECT event::text, try_number FROM log WHERE task_id = 'a' ORDER BY id DESC LIMIT 1$$,
                  $$VALUES ('up_for_reschedule', 1)$$, 'reschedule: audit row');

-- The same state again: the no-op, no second row.
SELECT is((SELECT applied FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
              '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:09Z", "reschedule_date": "2030-01-01T01:05:00Z"}')),
          false, 'reschedule twice: the no-op');
SELECT is((SELECT count(*)::integer FROM task_reschedule), 1, 'no-op: no second task_reschedule row');

-- The next poke: queued without a new try, run again with a fresh start_date, rescheduled again.
\o /dev/null
SELECT tistate_test.ti_queue(pg_temp.ti('p2', 'a'), p_now => '2030-01-01T01:05:00Z');
CREATE TEMP TABLE ctx AS SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:05:01Z') AS c;
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'a'),
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:05:03.5Z", "reschedule_date": "2030-01-01T01:10:00Z"}',
    p_now => '2030-01-01T01:05:04Z');
\o
SELECT is((pg_temp.row('p2', 'a')).try_number, 1, 'a reschedule does not count a new try');
SELECT is((SELECT (c ->> 'task_reschedule_count')::integer FROM ctx), 1, 'ti_run reports the reschedule count');
SELECT results_eq($$SELECT start_date, duration FROM task_reschedule ORDER BY id$$,
                  $$VALUES ('2030-01-01T01:00:00Z'::timestamptz, 7), ('2030-01-01T01:05:01Z', 2)$$,
                  'second poke: its own start_date and duration');

-- Not running: TS409; validation: TS422.
SELECT throws_ok($$SELECT tistate.ti_update_state(pg_temp.ti('p2', 'b'),
                   '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:09Z", "reschedule_date": "2030-01-01T01:05:00Z"}')$$,
                 'TS409', NULL, 'reschedule of a queued TI: TS409');
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, %L)$$, pg_temp.ti('p2', 'b'), p), 'TS422', NULL, 'TS422: ' || p)
FROM unnest(ARRAY[
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:09Z"}',
    '{"state": "up_for_reschedule", "reschedule_date": "2030-01-01T01:00:09Z"}',
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:09Z", "reschedule_date": "soon"}',
    '{"state": "up_for_reschedule", "end_date": "2030-01-01T01:00:09Z", "reschedule_date": "2030-01-01T01:05:00Z", "rendered_map_index": "x"}',
    '{"state": "up_for_reschedule", "end_date": 5, "reschedule_date": "2030-01-01T01:05:00Z"}']) AS p;
SELECT is((SELECT count(*)::integer FROM task_reschedule), 2, 'refused calls wrote nothing');

SELECT * FROM finish();
ROLLBACK;
