-- ti_skip_downstream: task ids and [task_id, map_index] pairs of the caller's run are skipped
-- unless running, success or failed; log rows; TS404 / TS410 / TS422.
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(16);

\o /dev/null
SELECT count(*) FROM tistate_test.create_dag_run('p2', 'r2', '2030-01-02T00:00:00Z', p_now => '2030-01-02T00:00:00Z');
SELECT pg_temp.start(pg_temp.ti('p2', t), '2030-01-01T01:00:00Z') FROM unnest(ARRAY['a', 'd']) AS t;
\o
SELECT is(tistate.ti_skip_downstream(pg_temp.ti('p2', 'a'), '["b", ["c", -1], "d", "nope", ["td", 3]]', p_now => '2030-01-01T01:00:05Z'),
          2, 'two task instances skipped (d is running, nope does not exist, td has no map index 3)');
SELECT results_eq(
    $$SELECT task_id::text, state::text, start_date, end_date, updated_at FROM task_instance
      WHERE dag_id = 'p2' AND run_id = 'r1' ORDER BY task_id$$,
    $$VALUES ('a', 'running', '2030-01-01T01:00:00Z'::timestamptz, NULL::timestamptz, '2030-01-01T01:00:00Z'::timestamptz),
             ('b', 'skipped', '2030-01-01T01:00:05Z', '2030-01-01T01:00:05Z', '2030-01-01T01:00:05Z'),
             ('c', 'skipped', '2030-01-01T01:00:05Z', '2030-01-01T01:00:05Z', '2030-01-01T01:00:05Z'),
             ('d', 'running', '2030-01-01T01:00:00Z', NULL, '2030-01-01T01:00:00Z'),
             ('td', 'queued', NULL, NULL, '2030-01-01T00:00:00Z')$$,
    'skipped rows: state, start_date and end_date = p_now; the rest untouched');
SELECT is((SELECT count(*)::integer FROM task_instance WHERE run_id = 'r2' AND state = 'queued'), 5, 'another run is untouched');
SELECT results_eq(
    $$SELECT task_id::text, event::text, extra::jsonb, try_number FROM log WHERE event = 'skipped' ORDER BY task_id$$,
    $$VALUES ('b', 'skipped', '{"reason": "skip_downstream", "previous_state": "queued", "skipped_by_task_id": "a", "skipped_by_map_index": -1}'::jsonb, 1),
             ('c', 'skipped', '{"reason": "skip_downstream", "previous_state": "queued", "skipped_by_task_id": "a", "skipped_by_map_index": -1}', 1)$$,
    'one log row per skipped task instance');
SELECT is(tistate.ti_skip_downstream(pg_temp.ti('p2', 'a'), '["b", "c"]'), 2, 'skipped is not protected: skipping again counts them');
SELECT is(tistate.ti_skip_downstream(pg_temp.ti('p2', 'a'), '[]'), 0, 'an empty list skips nothing');

\o /dev/null
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'd'), '{"state": "success", "end_date": "2030-01-01T01:00:06Z"}');
\o
SELECT is(tistate.ti_skip_downstream(pg_temp.ti('p2', 'a'), '["d"]'), 0, 'a success is never skipped');
SELECT is(tistate.ti_skip_downstream(pg_temp.ti('p2', 'd'), '["td"]'), 1, 'the caller''s own state does not matter (as in Airflow)');

-- Errors.
SELECT throws_ok(format($$SELECT tistate.ti_skip_downstream(%L, %L)$$, pg_temp.ti('p2', 'a'), p), 'TS422', NULL, 'TS422: ' || p)
FROM unnest(ARRAY['{"tasks": ["b"]}', '[5]', '[["b"]]', '[["b", "1"]]', '[["b", 1, 2]]', '[""]', '"b"']) AS p;
SELECT throws_ok($$SELECT tistate.ti_skip_downstream('00000000-0000-7000-8000-000000000000', '["b"]')$$, 'TS404', NULL, 'unknown caller: TS404');

SELECT * FROM finish();
ROLLBACK;
