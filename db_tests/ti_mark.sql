-- ti_mark: operator override from any state to any state (or none), audited with the reason and
-- the previous state, no asset events; the no-op; TS422 / TS404 / TS410.
BEGIN;
\ir _fixtures_part2.sql
SELECT plan(26);

-- A producer task with an active outlet: marking it success emits nothing.
\o /dev/null
SELECT count(*) FROM tistate_test.create_dag_run('producer', 'r1', '2030-01-01T00:00:00Z', p_now => '2030-01-01T00:00:00Z');
CREATE TEMP TABLE r AS SELECT * FROM tistate.ti_mark(pg_temp.ti('producer', 'p'), 'success', 'verified by hand',
                                                     p_now => '2030-01-01T01:00:00Z');
\o
SELECT is((SELECT ROW(previous_state, new_state, applied, new_ti_id)::text FROM r), '(queued,success,t,)', 'queued -> success: result');
SELECT results_eq(
    $$SELECT state::text, start_date, end_date, duration, try_number, updated_at FROM task_instance WHERE id = pg_temp.ti('producer', 'p')$$,
    $$VALUES ('success', '2030-01-01T01:00:00Z'::timestamptz, '2030-01-01T01:00:00Z'::timestamptz, 0::double precision, 1,
              '2030-01-01T01:00:00Z'::timestamptz)$$,
    'mark success: state, start/end_date set when missing, duration, same try');
SELECT results_eq(
    $$SELECT event::text, try_number, extra::jsonb, dttm FROM log WHERE dag_id = 'producer'$$,
    $$VALUES ('mark success', 1, '{"reason": "verified by hand", "previous_state": "queued", "new_state": "success", "host_name": null}'::jsonb,
              '2030-01-01T01:00:00Z'::timestamptz)$$,
    'mark: log row ''mark success'' with reason and previous state');
SELECT is((SELECT count(*)::integer FROM tistate_test.asset_event), 0, 'mark success emits no asset events');
SELECT is((SELECT count(*)::integer FROM asset_dag_run_queue), 0, 'mark success queues no consumers');

-- Same state: the no-op, no log row.
SELECT is((SELECT ROW(previous_state, new_state, applied)::text FROM tistate.ti_mark(pg_temp.ti('producer', 'p'), 'success', 'again')),
          '(success,success,f)', 'success -> success: the no-op');
SELECT is((SELECT count(*)::integer FROM log WHERE dag_id = 'producer'), 1, 'no-op: no log row');

-- To none (NULL or 'none'), to running, from running.
\o /dev/null
SELECT tistate.ti_mark(pg_temp.ti('producer', 'p'), NULL, 'rerun it', p_now => '2030-01-01T02:00:00Z');
\o
SELECT is((pg_temp.row('producer', 'p')).state, NULL, 'mark NULL: no state');
SELECT is((SELECT event::text FROM log WHERE dag_id = 'producer' ORDER BY id DESC LIMIT 1), 'mark none', 'log event ''mark none''');
SELECT is((SELECT applied FROM tistate.ti_mark(pg_temp.ti('producer', 'p'), 'none', 'x')), false, '''none'' is the same as NULL');
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_mark(pg_temp.ti('p2', 'a'), 'failed', 'host lost', p_now => '2030-01-01T01:10:00Z');
\o
SELECT results_eq(
    $$SELECT state::text, end_date, duration FROM task_instance WHERE id = pg_temp.ti('p2', 'a')$$,
    $$VALUES ('failed', '2030-01-01T01:10:00Z'::timestamptz, 600::double precision)$$, 'running -> failed: end_date p_now, duration');
SELECT is((SELECT extra::jsonb ->> 'host_name' FROM log WHERE task_id = 'a' AND event = 'mark failed'), 'h1',
          'the log row keeps the host');
SELECT is((SELECT applied FROM tistate.ti_mark(pg_temp.ti('p2', 'a'), 'running', 'resurrect')), true, 'failed -> running is allowed');

-- A deferred TI marked success loses its deferral fields; marked scheduled keeps them.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', t), '2030-01-01T01:00:00Z') FROM unnest(ARRAY['b', 'c']) AS t;
SELECT tistate.ti_update_state(pg_temp.ti('p2', t),
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "next_kwargs": {"k": 1}, "trigger_timeout": 60}')
FROM unnest(ARRAY['b', 'c']) AS t;
SELECT tistate.ti_mark(pg_temp.ti('p2', 'b'), 'success', 'done elsewhere');
SELECT tistate.ti_mark(pg_temp.ti('p2', 'c'), 'scheduled', 'trigger fired by hand');
\o
SELECT ok((SELECT next_method IS NULL AND next_kwargs IS NULL AND trigger_id IS NULL AND trigger_timeout IS NULL
           FROM task_instance WHERE id = pg_temp.ti('p2', 'b')), 'mark success clears the deferral fields');
SELECT ok((SELECT next_method = 'm' AND trigger_id IS NOT NULL FROM task_instance WHERE id = pg_temp.ti('p2', 'c')),
          'mark scheduled keeps them');

-- Clearing a finished try (mark none, then the scheduler queues it) starts the next try under a new
-- id, with the finished try in history: the previous worker's token can no longer change it.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'td'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'td'), '{"state": "failed", "end_date": "2030-01-01T01:02:00Z"}');
\o
SELECT pg_temp.ti('p2', 'td') AS old_e \gset
CREATE TEMP TABLE cleared AS SELECT * FROM tistate.ti_mark(:'old_e', 'none', 're-run after a fix');
SELECT ok((SELECT applied AND previous_state = 'failed' AND new_ti_id IS NOT NULL AND new_ti_id <> :'old_e'::uuid FROM cleared),
          'mark none of a failed try: applied, with a new id for the next try');
SELECT is((SELECT new_ti_id FROM cleared), pg_temp.ti('p2', 'td'), 'the live row has the new id');
SELECT results_eq(format($$SELECT state::text, try_number, end_date FROM task_instance_history WHERE task_instance_id = %L$$, :'old_e'),
                  $$VALUES ('failed', 1, '2030-01-01T01:02:00Z'::timestamptz)$$, 'the finished try is in history under the old id, with its end');
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, '{"state": "success", "end_date": "2030-01-01T01:03:00Z"}')$$, :'old_e'),
                 'TS410', NULL, 'the previous worker''s late call: TS410, the new try is untouched');
SELECT is((SELECT extra::jsonb ->> 'new_ti_id' FROM log WHERE event = 'mark none' AND task_id = 'td'),
          (SELECT new_ti_id::text FROM cleared), 'the log row names the new id');

-- Errors.
SELECT throws_ok(format($$SELECT tistate.ti_mark(%L, 'bogus', 'x')$$, pg_temp.ti('p2', 'd')), 'TS422', NULL, 'unknown state: TS422');
SELECT throws_ok(format($$SELECT tistate.ti_mark(%L, 'success', '  ')$$, pg_temp.ti('p2', 'd')), 'TS422', NULL, 'blank reason: TS422');
SELECT throws_ok(format($$SELECT tistate.ti_mark(%L, 'success', NULL)$$, pg_temp.ti('p2', 'd')), 'TS422', NULL, 'no reason: TS422');
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_mark(%L, 'success', '')$$, pg_temp.ti('p2', 'd'))) -> 'detail' ->> 'field',
          'reason', 'TS422 DETAIL field reason');
SELECT throws_ok($$SELECT tistate.ti_mark('00000000-0000-7000-8000-000000000000', 'success', 'x')$$, 'TS404', NULL, 'unknown id: TS404');
SELECT is((pg_temp.row('p2', 'd')).state::text, 'queued', 'refused marks changed nothing');

SELECT * FROM finish();
ROLLBACK;
