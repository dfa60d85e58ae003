-- ti_update_state: failed (with and without fail-fast), skipped, removed, upstream_failed, the
-- scheduler-only targets (TS409), the no-op, and payload validation (TS422).
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(48);

------------------------------------------------------------------------------------------------
-- failed on a DAG without fail_fast
------------------------------------------------------------------------------------------------
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
CREATE TEMP TABLE r AS
SELECT * FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
    '{"state": "failed", "end_date": "2030-01-01T01:30:00Z", "rendered_map_index": "part-1"}',
    p_now => '2030-01-01T01:30:05Z');
\o
SELECT is((SELECT ROW(previous_state, new_state, applied, new_ti_id)::text FROM r), '(running,failed,t,)',
          'failed: result running -> failed, applied, no new id');
SELECT is((SELECT (r.ti_id = pg_temp.ti('p2', 'a')) FROM r), true, 'failed: result ti_id is the id');
SELECT is((pg_temp.row('p2', 'a')).state::text, 'failed', 'failed: state written');
SELECT is((pg_temp.row('p2', 'a')).end_date, '2030-01-01T01:30:00Z'::timestamptz, 'failed: end_date from the payload');
SELECT is((pg_temp.row('p2', 'a')).duration, 1800::double precision, 'failed: duration = end_date - start_date');
SELECT is((pg_temp.row('p2', 'a')).rendered_map_index::text, 'part-1', 'failed: rendered_map_index written when sent');
SELECT is((pg_temp.row('p2', 'a')).updated_at, '2030-01-01T01:30:05Z'::timestamptz, 'failed: updated_at = p_now');
SELECT ok((pg_temp.row('p2', 'a')).next_method IS NULL AND (pg_temp.row('p2', 'a')).next_kwargs IS NULL,
          'failed: next_method and next_kwargs are SQL NULL');
SELECT is((pg_temp.row('p2', 'a')).try_number, 1, 'failed: try_number unchanged');
SELECT results_eq(
    $$SELECT event::text, try_number, owner::text, logical_date, extra, dttm FROM log
      WHERE dag_id = 'p2' AND task_id = 'a' AND event <> 'running'$$,
    $$VALUES ('failed', 1, 'team-a', '2030-01-01T00:00:00Z'::timestamptz, '{"host_name": "h1"}', '2030-01-01T01:30:05Z'::timestamptz)$$,
    'failed: one audit row with owner, logical_date, try and host');
SELECT is((SELECT count(*)::integer FROM task_instance WHERE dag_id = 'p2' AND state = 'queued'), 4,
          'failed without fail_fast leaves the run''s other task instances alone');

-- The same state again: the no-op.
SELECT is((SELECT ROW(applied, previous_state, new_state)::text FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
              '{"state": "failed", "end_date": "2030-01-01T02:00:00Z"}', p_now => '2030-01-01T02:00:00Z')),
          '(f,failed,failed)', 'failed twice: the no-op (applied=false)');
SELECT is((pg_temp.row('p2', 'a')).end_date, '2030-01-01T01:30:00Z'::timestamptz, 'no-op: end_date not rewritten');
SELECT is((SELECT count(*)::integer FROM log WHERE task_id = 'a' AND event = 'failed'), 1, 'no-op: no audit row');

-- Not running: TS409 with previous_state.
SELECT throws_ok($$SELECT tistate.ti_update_state(pg_temp.ti('p2', 'b'), '{"state": "failed", "end_date": "2030-01-01T02:00:00Z"}')$$,
                 'TS409', NULL, 'failed on a queued TI: TS409');
SELECT is(pg_temp.error_of($$SELECT tistate.ti_update_state(pg_temp.ti('p2', 'b'), '{"state": "failed", "end_date": "2030-01-01T02:00:00Z"}')$$)
          -> 'detail' ->> 'previous_state', 'queued', 'TS409 DETAIL names previous_state');
SELECT throws_ok($$SELECT tistate.ti_update_state('00000000-0000-7000-8000-000000000000', '{"state": "failed", "end_date": "2030-01-01T02:00:00Z"}')$$,
                 'TS404', NULL, 'unknown id: TS404');

------------------------------------------------------------------------------------------------
-- skipped, removed, upstream_failed
------------------------------------------------------------------------------------------------
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', t), '2030-01-01T03:00:00Z') FROM unnest(ARRAY['b', 'c', 'd']) AS t;
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'b'), '{"state": "skipped", "end_date": "2030-01-01T03:00:10Z"}', p_now => '2030-01-01T03:00:11Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'c'), '{"state": "removed", "end_date": "2030-01-01T03:00:20Z"}', p_now => '2030-01-01T03:00:21Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'd'), '{"state": "upstream_failed", "end_date": "2030-01-01T03:00:30Z"}', p_now => '2030-01-01T03:00:31Z');
\o
SELECT results_eq(
    $$SELECT task_id::text, state::text, end_date, duration, updated_at, rendered_map_index::text FROM task_instance
      WHERE dag_id = 'p2' AND task_id IN ('b', 'c', 'd') ORDER BY task_id$$,
    $$VALUES ('b', 'skipped', '2030-01-01T03:00:10Z'::timestamptz, 10::double precision, '2030-01-01T03:00:11Z'::timestamptz, NULL::text),
             ('c', 'removed', '2030-01-01T03:00:20Z', 20, '2030-01-01T03:00:21Z', NULL),
             ('d', 'upstream_failed', '2030-01-01T03:00:30Z', 30, '2030-01-01T03:00:31Z', NULL)$$,
    'skipped, removed, upstream_failed: state, end_date, duration, updated_at');
SELECT results_eq(
    $$SELECT task_id::text, event::text, dttm FROM log
      WHERE dag_id = 'p2' AND task_id IN ('b', 'c', 'd') AND event <> 'running' ORDER BY id$$,
    $$VALUES ('b', 'skipped', '2030-01-01T03:00:11Z'::timestamptz), ('c', 'removed', '2030-01-01T03:00:21Z'),
             ('d', 'upstream_failed', '2030-01-01T03:00:31Z')$$,
    'skipped, removed, upstream_failed: one audit row each, event = the state');
SELECT is((SELECT count(*)::integer FROM task_instance WHERE dag_id = 'p2' AND task_id = 'td' AND state = 'queued'), 1,
          'terminal states other than failed never fail-fast');

------------------------------------------------------------------------------------------------
-- scheduled, queued, restarting targets: TS409, nothing written
------------------------------------------------------------------------------------------------
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'td'), '2030-01-01T04:00:00Z');
\o
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, '{"state": "%s"}')$$, pg_temp.ti('p2', 'td'), s),
                 'TS409', NULL, format('running -> %s: TS409', s))
FROM unnest(ARRAY['scheduled', 'queued', 'restarting']) AS s;
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_update_state(%L, '{"state": "queued"}')$$, pg_temp.ti('p2', 'td'))) -> 'detail',
          '{"reason": "unsupported_transition", "previous_state": "running", "requested_state": "queued"}'::jsonb
              || jsonb_build_object('message', pg_temp.error_of(format($$SELECT tistate.ti_update_state(%L, '{"state": "queued"}')$$,
                                                                      pg_temp.ti('p2', 'td'))) -> 'detail' -> 'message'),
          'TS409 DETAIL: reason unsupported_transition, previous and requested state');
SELECT is((pg_temp.row('p2', 'td')).state::text, 'running', 'a refused target leaves the TI running (Airflow marks it failed)');
SELECT is((SELECT count(*)::integer FROM log WHERE task_id = 'td' AND event <> 'running'), 0, 'a refused target writes no log row');
SELECT is((SELECT applied FROM tistate.ti_update_state(pg_temp.ti('p2', 'b'), '{"state": "skipped", "end_date": "2030-01-01T05:00:00Z"}')),
          false, 'skipped twice: the no-op');
SELECT throws_ok($$SELECT tistate.ti_update_state(pg_temp.ti('p2', 'b'), '{"state": "queued"}')$$, 'TS409', NULL,
                 'queued on a finished TI: TS409 (not running)');

------------------------------------------------------------------------------------------------
-- Validation: TS422 before any lock
------------------------------------------------------------------------------------------------
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, %L)$$, pg_temp.ti('p2', 'td'), p), 'TS422', NULL, 'TS422: ' || p)
FROM unnest(ARRAY[
    '{"state": "failed"}',
    '{"state": "failed", "end_date": null}',
    '{"state": "failed", "end_date": "2030-01-01T05:00:00"}',
    '{"state": "failed", "end_date": "yesterday"}',
    '{"state": "skipped", "end_date": "2030-01-01T05:00:00Z", "retry_reason": "x"}',
    '{"state": "removed", "end_date": "2030-01-01T05:00:00Z", "rendered_map_index": 3}',
    '{"state": "upstream_failed", "end_date": "2030-01-01T05:00:00Z", "task_outlets": []}',
    '{"state": "queued", "end_date": "2030-01-01T05:00:00Z"}',
    '{"state": "running"}',
    '{"state": "awaiting_input", "next_method": "m"}',
    '{"state": "none"}',
    '{"end_date": "2030-01-01T05:00:00Z"}',
    '[]']) AS p;
SELECT is(pg_temp.error_of(format($$SELECT tistate.ti_update_state(%L, '{"state": "failed", "end_date": "2030-01-01T05:00:00Z", "bogus": 1}')$$,
                                  pg_temp.ti('p2', 'td'))) -> 'detail' ->> 'field',
          'bogus', 'TS422 DETAIL names the unknown field');
SELECT throws_ok($$SELECT tistate.ti_update_state('00000000-0000-7000-8000-000000000000', '{"state": "failed"}')$$,
                 'TS422', NULL, 'validation comes before the lookup (TS422, not TS404)');

------------------------------------------------------------------------------------------------
-- fail-fast: p2ff has boom, running1 (running), queued1 (queued), done1 (success), none1 (no
-- state) and the teardown td (queued).
------------------------------------------------------------------------------------------------
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2ff', t), '2030-01-02T00:00:00Z') FROM unnest(ARRAY['boom', 'running1', 'done1']) AS t;
SELECT tistate.ti_update_state(pg_temp.ti('p2ff', 'done1'), '{"state": "success", "end_date": "2030-01-02T00:01:00Z"}',
                               p_now => '2030-01-02T00:01:00Z');
SELECT tistate.ti_mark(pg_temp.ti('p2ff', 'none1'), NULL, 'cleared for the test', p_now => '2030-01-02T00:01:00Z');
CREATE TEMP TABLE ff AS
SELECT * FROM tistate.ti_update_state(pg_temp.ti('p2ff', 'boom'), '{"state": "failed", "end_date": "2030-01-02T00:10:00Z"}',
                                      p_now => '2030-01-02T00:10:01Z');
\o
SELECT is((SELECT ROW(new_state, applied)::text FROM ff), '(failed,t)', 'fail-fast: the failing TI is failed');
SELECT results_eq(
    $$SELECT task_id::text, state::text, end_date, start_date FROM task_instance WHERE dag_id = 'p2ff' ORDER BY task_id$$,
    $$VALUES ('boom', 'failed', '2030-01-02T00:10:00Z'::timestamptz, '2030-01-02T00:00:00Z'::timestamptz),
             ('done1', 'success', '2030-01-02T00:01:00Z', '2030-01-02T00:00:00Z'),
             ('none1', 'skipped', '2030-01-02T00:10:01Z', '2030-01-02T00:01:00Z'),
             ('queued1', 'skipped', '2030-01-02T00:10:01Z', '2030-01-02T00:10:01Z'),
             ('running1', 'failed', '2030-01-02T00:10:01Z', '2030-01-02T00:00:00Z'),
             ('td', 'queued', NULL, NULL)$$,
    'fail-fast: running -> failed, unfinished -> skipped (end_date p_now), finished and teardown untouched');
SELECT is((pg_temp.row('p2ff', 'running1')).duration, 601::double precision, 'fail-fast: duration of the forced failure');
SELECT results_eq(
    $$SELECT task_id::text, event::text, extra::jsonb ->> 'previous_state', extra::jsonb ->> 'failed_task_id', dttm, owner::text
      FROM log WHERE dag_id = 'p2ff' AND event IN ('fail task', 'skip task', 'failed') ORDER BY task_id$$,
    $$VALUES ('boom', 'failed', NULL, NULL, '2030-01-02T00:10:01Z'::timestamptz, 'team-a'),
             ('none1', 'skip task', NULL, 'boom', '2030-01-02T00:10:01Z', 'team-a'),
             ('queued1', 'skip task', 'queued', 'boom', '2030-01-02T00:10:01Z', 'team-a'),
             ('running1', 'fail task', 'running', 'boom', '2030-01-02T00:10:01Z', 'team-a')$$,
    'fail-fast: one log row per stopped TI (fail task / skip task) in the same transaction');
SELECT is((SELECT count(*)::integer FROM log WHERE dag_id = 'p2ff' AND task_id = 'td' AND event <> 'running'), 0,
          'fail-fast: no log row for the teardown task');

SELECT * FROM finish();
ROLLBACK;
