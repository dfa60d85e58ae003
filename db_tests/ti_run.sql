-- tistate.ti_run: queued/restarting -> running with a log row and the run context; idempotent for
-- the same hostname/unixname/pid; TS409 from other states, TS404, TS410, TS422.
BEGIN;
\ir _fixtures.sql
SELECT plan(51);

SELECT pg_temp.queued_ti('r1', p_logical_date => '2025-01-01T00:00:00Z') AS ti1 \gset

------------------------------------------------------------------------------------------------
-- queued -> running
------------------------------------------------------------------------------------------------
CREATE TEMP TABLE ctx ON COMMIT DROP AS
SELECT tistate.ti_run(p_ti_id => :'ti1', p_payload => pg_temp.run_payload(), p_now => '2025-01-01T00:00:05Z') AS c;

SELECT results_eq($$
    SELECT state::text, hostname::text, unixname::text, pid, start_date, end_date, duration, last_heartbeat_at, updated_at, try_number
    FROM task_instance WHERE id = pg_temp.ti('r1')
$$, $$ VALUES ('running', 'worker-1', 'airflow', 4242, '2025-01-01T00:00:00Z'::timestamptz, NULL::timestamptz,
               NULL::double precision, '2025-01-01T00:00:05Z'::timestamptz, '2025-01-01T00:00:05Z'::timestamptz, 1) $$,
   'queued -> running: state, host, pid, start_date from the payload, heartbeat and updated_at = p_now');
SELECT results_eq($$
    SELECT dttm, dag_id::text, task_id::text, run_id::text, map_index, try_number, event::text, logical_date, owner::text,
           owner_display_name::text, extra
    FROM log WHERE run_id = 'r1'
$$, $$ VALUES ('2025-01-01T00:00:05Z'::timestamptz, 'producer', 'load', 'r1', -1, 1, 'running',
               '2025-01-01T00:00:00Z'::timestamptz, 'data-team', NULL::text, '{"host_name": "worker-1"}') $$,
   'one log row for the transition');
SELECT is((SELECT c -> 'dag_run' ->> 'dag_id' FROM ctx), 'producer', 'context: dag_run.dag_id');
SELECT is((SELECT c -> 'dag_run' ->> 'run_id' FROM ctx), 'r1', 'context: dag_run.run_id');
SELECT is((SELECT (c -> 'dag_run' ->> 'logical_date')::timestamptz FROM ctx), '2025-01-01T00:00:00Z'::timestamptz, 'context: logical_date');
SELECT is((SELECT c -> 'dag_run' -> 'conf' FROM ctx), '{}'::jsonb, 'context: conf');
SELECT is((SELECT c -> 'max_tries' FROM ctx), '2'::jsonb, 'context: max_tries');
SELECT is((SELECT c -> 'should_retry' FROM ctx), 'true'::jsonb, 'context: should_retry with tries left');
SELECT is((SELECT c -> 'task_reschedule_count' FROM ctx), '0'::jsonb, 'context: task_reschedule_count');
SELECT ok((SELECT c ?& ARRAY['dag_run', 'variables', 'connections', 'xcom_keys_to_clear', 'next_method', 'next_kwargs'] FROM ctx),
          'context has the TIRunContext keys');
SELECT is(tistate.ti_run(p_ti_id => pg_temp.queued_ti('r1', 'other'), p_payload => pg_temp.run_payload(), p_now => '2025-01-01T00:00:05Z') -> 'should_retry',
          'false'::jsonb, 'context: should_retry false for a task without retries');

------------------------------------------------------------------------------------------------
-- Idempotent for the same worker
------------------------------------------------------------------------------------------------
SELECT is(tistate.ti_run(p_ti_id => :'ti1', p_payload => pg_temp.run_payload() || '{"start_date": "2025-01-01T00:00:09Z"}',
                         p_now => '2025-01-01T00:00:10Z') -> 'dag_run' ->> 'run_id',
          'r1', 'the same hostname, unixname and pid again: answered with the context');
SELECT results_eq($$SELECT state::text, start_date, last_heartbeat_at FROM task_instance WHERE id = pg_temp.ti('r1')$$,
                  $$VALUES ('running', '2025-01-01T00:00:00Z'::timestamptz, '2025-01-01T00:00:10Z'::timestamptz)$$,
                  'the repeat keeps start_date and refreshes the heartbeat');
SELECT is((SELECT count(*)::integer FROM log WHERE run_id = 'r1' AND task_id = 'load'), 1, 'the repeat writes no second log row');

------------------------------------------------------------------------------------------------
-- restarting -> running; resuming after a deferral keeps start_date
------------------------------------------------------------------------------------------------
SELECT pg_temp.queued_ti('r2') AS ti2 \gset
UPDATE task_instance SET state = 'restarting', max_tries = 0 WHERE id = :'ti2';
SELECT is(tistate.ti_run(p_ti_id => :'ti2', p_payload => pg_temp.run_payload(), p_now => '2025-01-01T00:00:05Z') -> 'should_retry',
          'true'::jsonb, 'restarting -> running, should_retry true for a restart');
SELECT is((SELECT state::text FROM task_instance WHERE id = :'ti2'), 'running', 'restarting -> running');

SELECT pg_temp.queued_ti('r3') AS ti3 \gset
UPDATE task_instance SET start_date = '2024-12-31T23:00:00Z', next_method = 'execute_complete',
       next_kwargs = '{"event": 1}' WHERE id = :'ti3';
CREATE TEMP TABLE ctx3 ON COMMIT DROP AS
SELECT tistate.ti_run(p_ti_id => :'ti3', p_payload => pg_temp.run_payload(), p_now => '2025-01-01T00:00:05Z') AS c;
SELECT is((SELECT start_date FROM task_instance WHERE id = :'ti3'), '2024-12-31T23:00:00Z'::timestamptz,
          'resuming a deferred try keeps its start_date');
SELECT is((SELECT c ->> 'next_method' FROM ctx3), 'execute_complete', 'context: next_method');
SELECT is((SELECT c -> 'next_kwargs' FROM ctx3), '{"event": 1}'::jsonb, 'context: next_kwargs');

------------------------------------------------------------------------------------------------
-- TS409 from every other state, with previous_state in DETAIL; nothing written
------------------------------------------------------------------------------------------------
SELECT pg_temp.queued_ti('r4') AS ti4 \gset
SELECT pg_temp.tistate_digest() AS before \gset
SELECT is((pg_temp.error_of(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L)$$, :'ti1', pg_temp.run_payload(p_pid => 1)))
          #> '{detail}') - 'message',
          '{"reason": "invalid_state", "previous_state": "running"}'::jsonb,
          'running on another pid: TS409 with previous_state running');
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L)$$, :'ti1', pg_temp.run_payload(p_hostname => 'worker-2')))
          ->> 'sqlstate', 'TS409', 'running on another host: TS409');
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L)$$, :'ti1',
                                  pg_temp.run_payload() || '{"unixname": "root"}')) ->> 'sqlstate', 'TS409', 'running as another unixname: TS409');
SELECT is(pg_temp.tistate_digest(), :'before', 'the rejected calls wrote nothing');

CREATE FUNCTION pg_temp.run_from(p_state text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE v_result jsonb;
BEGIN
    UPDATE task_instance SET state = p_state WHERE id = pg_temp.ti('r4');
    v_result := pg_temp.error_of(format($q$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L)$q$,
                                        pg_temp.ti('r4'), pg_temp.run_payload()));
    UPDATE task_instance SET state = 'queued' WHERE id = pg_temp.ti('r4');
    RETURN v_result;
END $$;
SELECT is((pg_temp.run_from(s) #> '{detail}') - 'message',
          jsonb_build_object('reason', 'invalid_state', 'previous_state', s),
          format('%s -> running: TS409 with previous_state %s', coalesce(s, 'none'), coalesce(s, 'null')))
FROM unnest(ARRAY['success', 'failed', 'skipped', 'removed', 'upstream_failed', 'up_for_retry', 'up_for_reschedule',
                  'deferred', 'scheduled', NULL]) AS s;
SELECT is((SELECT count(*)::integer FROM log WHERE run_id = 'r4'), 0, 'no log row for a rejected run');

------------------------------------------------------------------------------------------------
-- TS404, TS410
------------------------------------------------------------------------------------------------
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L)$$,
                                  '01941f29-0000-7000-8000-000000000000', pg_temp.run_payload())) - 'message',
          '{"sqlstate": "TS404", "detail": {"reason": "not_found", "message": "Task Instance not found"}}'::jsonb, 'unknown id: TS404');
INSERT INTO task_instance_history (task_instance_id, task_id, dag_id, run_id, map_index, try_number, state, pool, pool_slots)
VALUES ('01941f29-0000-7000-8000-0000000000aa', 'load', 'producer', 'r4', -1, 0, 'failed', 'default_pool', 1);
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L)$$,
                                  '01941f29-0000-7000-8000-0000000000aa', pg_temp.run_payload())) ->> 'sqlstate',
          'TS410', 'an id archived in task_instance_history: TS410');

------------------------------------------------------------------------------------------------
-- TS422: the payload is validated before anything else (even for an unknown id)
------------------------------------------------------------------------------------------------
SELECT pg_temp.tistate_digest() AS before422 \gset
SELECT is(pg_temp.code_field(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => %L::jsonb)$$, pg_temp.ti('r4'), payload)),
          'TS422 ' || field, format('TS422 %s: %s', field, payload))
FROM (VALUES
    ('[]', ''),
    ('{"hostname": "h", "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00Z"}', 'state'),
    ('{"state": "queued", "hostname": "h", "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00Z"}', 'state'),
    ('{"state": "running", "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00Z"}', 'hostname'),
    ('{"state": "running", "hostname": "h", "pid": 1, "start_date": "2025-01-01T00:00:00Z"}', 'unixname'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "start_date": "2025-01-01T00:00:00Z"}', 'pid'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "pid": 1}', 'start_date'),
    ('{"state": "running", "hostname": 1, "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00Z"}', 'hostname'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "pid": "1", "start_date": "2025-01-01T00:00:00Z"}', 'pid'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "pid": 1.5, "start_date": "2025-01-01T00:00:00Z"}', 'pid'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00"}', 'start_date'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "pid": 1, "start_date": "yesterday"}', 'start_date'),
    ('{"state": "running", "hostname": "h", "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00Z", "queue": "q"}', 'queue')
) AS t (payload, field);
SELECT is(pg_temp.code_field(format($$SELECT tistate.ti_run(p_ti_id => %L, p_payload => '{"state": "running"}')$$,
                                    '01941f29-0000-7000-8000-000000000000')),
          'TS422 hostname', 'an invalid payload for an unknown id: TS422 before the lookup');
SELECT is(pg_temp.tistate_digest(), :'before422', 'TS404/TS410/TS422 wrote nothing');

SELECT * FROM finish();
ROLLBACK;
