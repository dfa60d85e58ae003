-- ti_heartbeat: the fast conditional update, and the slow path's TS404 / TS410 / TS409
-- (running_elsewhere with current_hostname and current_pid, not_running with current_state).
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(18);

\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
\o
SELECT lives_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42, p_now => '2030-01-01T01:00:30Z')$$, pg_temp.ti('p2', 'a')),
                'heartbeat from the running host and pid');
SELECT is((pg_temp.row('p2', 'a')).last_heartbeat_at, '2030-01-01T01:00:30Z'::timestamptz, 'last_heartbeat_at = p_now');
SELECT is((pg_temp.row('p2', 'a')).updated_at, '2030-01-01T01:00:30Z'::timestamptz, 'updated_at = p_now');
SELECT is((SELECT count(*)::integer FROM log WHERE task_id = 'a' AND event <> 'running'), 0, 'a heartbeat writes no log row');
SELECT is(pg_get_function_result('tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval)'::regprocedure), 'void',
          'ti_heartbeat returns void');

-- Another host or pid: running_elsewhere.
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 43)$$, pg_temp.ti('p2', 'a')), 'TS409', NULL, 'other pid: TS409');
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h2', 42)$$, pg_temp.ti('p2', 'a')), 'TS409', NULL, 'other host: TS409');
SELECT is((pg_temp.error_of(format($$SELECT tistate.ti_heartbeat(%L, 'h2', 42)$$, pg_temp.ti('p2', 'a'))) -> 'detail')
              - 'message' - 'previous_state',
          '{"reason": "running_elsewhere", "current_hostname": "h1", "current_pid": 42}'::jsonb,
          'running_elsewhere DETAIL: current_hostname and current_pid');
SELECT is((pg_temp.row('p2', 'a')).last_heartbeat_at, '2030-01-01T01:00:30Z'::timestamptz, 'a refused heartbeat writes nothing');

-- Finished on the same host and pid: not_running.
\o /dev/null
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'a'), '{"state": "success", "end_date": "2030-01-01T01:01:00Z"}');
\o
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, pg_temp.ti('p2', 'a')), 'TS409', NULL, 'finished TI: TS409');
SELECT is((pg_temp.error_of(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, pg_temp.ti('p2', 'a'))) -> 'detail')
              - 'message' - 'previous_state',
          '{"reason": "not_running", "current_state": "success"}'::jsonb, 'not_running DETAIL: current_state');
SELECT ok(pg_temp.error_of(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, pg_temp.ti('p2', 'a'))) -> 'detail' ? 'message',
          'DETAIL carries a message');

-- Never ran (no host): running_elsewhere with NULL host, as in Airflow.
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, pg_temp.ti('p2', 'b'))) -> 'detail' ->> 'reason',
          'running_elsewhere', 'queued TI that never ran: running_elsewhere');

-- Missing and archived ids; invalid input.
SELECT throws_ok($$SELECT tistate.ti_heartbeat('00000000-0000-7000-8000-000000000000', 'h1', 42)$$, 'TS404', NULL, 'unknown id: TS404');
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'c'), '2030-01-01T02:00:00Z');
CREATE TEMP TABLE old AS SELECT pg_temp.ti('p2', 'c') AS id;
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'c'), '{"state": "up_for_retry", "end_date": "2030-01-01T02:00:01Z"}');
\o
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, (SELECT id FROM old)), 'TS410', NULL, 'archived id: TS410');
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, NULL, 42)$$, pg_temp.ti('p2', 'd')), 'TS422', NULL, 'NULL hostname: TS422');
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', NULL)$$, pg_temp.ti('p2', 'd')), 'TS422', NULL, 'NULL pid: TS422');
SELECT ok('lock_timeout=2s' = ANY (p.proconfig), 'ti_heartbeat declares SET lock_timeout')
FROM pg_proc AS p WHERE p.oid = 'tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval)'::regprocedure;

SELECT * FROM finish();
ROLLBACK;
