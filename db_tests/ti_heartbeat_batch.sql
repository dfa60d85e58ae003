-- ti_heartbeat_batch: ti_heartbeat's fast path for many task instances in one statement. It
-- records (last_heartbeat_at = updated_at = p_now) exactly the items whose TI is running on that
-- host and pid, answers their 1-based positions, and writes nothing for the others (a locked row is
-- skipped without waiting: tests/test_concurrency_heartbeats_and_retries.py, two connections,
-- both flavors).
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(15);

\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
SELECT pg_temp.start(pg_temp.ti('p2', 'b'), '2030-01-01T01:00:00Z', 43);
SELECT pg_temp.start(pg_temp.ti('p2', 'c'), '2030-01-01T01:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'c'), '{"state": "success", "end_date": "2030-01-01T01:00:10Z"}');
\o
CREATE TEMP TABLE before AS SELECT id, last_heartbeat_at, updated_at FROM task_instance;

-- 1 a (running, h1/42), 2 b with the wrong pid, 3 c finished, 4 an unknown id, 5 d never ran,
-- 6 a NULL host, 7 b (running, h1/43), 8 a again.
SELECT is(tistate.ti_heartbeat_batch(
              ARRAY[pg_temp.ti('p2', 'a'), pg_temp.ti('p2', 'b'), pg_temp.ti('p2', 'c'),
                    '00000000-0000-7000-8000-000000000000', pg_temp.ti('p2', 'd'), pg_temp.ti('p2', 'a'),
                    pg_temp.ti('p2', 'b'), pg_temp.ti('p2', 'a')],
              ARRAY['h1', 'h1', 'h1', 'h1', 'h1', NULL, 'h1', 'h1'],
              ARRAY[42, 42, 42, 42, 42, 42, 43, 42],
              p_now => '2030-01-01T01:00:30Z'),
          ARRAY[1, 7, 8],
          'the positions of the heartbeats of running TIs on their own host and pid, an id given twice both times');
SELECT is((pg_temp.row('p2', 'a')).last_heartbeat_at, '2030-01-01T01:00:30Z'::timestamptz, 'a: last_heartbeat_at = p_now');
SELECT is((pg_temp.row('p2', 'a')).updated_at, '2030-01-01T01:00:30Z'::timestamptz, 'a: updated_at = p_now');
SELECT is((pg_temp.row('p2', 'b')).last_heartbeat_at, '2030-01-01T01:00:30Z'::timestamptz, 'b (its own pid): recorded');
SELECT is_empty($$
    SELECT ti.id FROM task_instance AS ti JOIN before AS b USING (id)
    WHERE ti.dag_id = 'p2' AND ti.task_id NOT IN ('a', 'b')
      AND (ti.last_heartbeat_at IS DISTINCT FROM b.last_heartbeat_at OR ti.updated_at IS DISTINCT FROM b.updated_at)
$$, 'the finished, never-run and unknown items write nothing');
SELECT is((SELECT count(*)::integer FROM log WHERE dag_id = 'p2' AND event NOT IN ('running', 'success')), 0,
          'a heartbeat batch writes no log row');

-- What the batch leaves out, ti_heartbeat answers on its own (as the service then calls it).
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, pg_temp.ti('p2', 'b')), 'TS409', NULL,
                 'b with the wrong pid, alone: TS409 running_elsewhere');
SELECT throws_ok(format($$SELECT tistate.ti_heartbeat(%L, 'h1', 42)$$, pg_temp.ti('p2', 'c')), 'TS409', NULL,
                 'c finished, alone: TS409 not_running');

-- Edges.
SELECT is(tistate.ti_heartbeat_batch('{}', '{}', '{}'), '{}'::integer[], 'an empty batch records nothing');
SELECT is(tistate.ti_heartbeat_batch(NULL, NULL, NULL), '{}'::integer[], 'NULL arrays record nothing');
SELECT is(tistate.ti_heartbeat_batch(ARRAY[pg_temp.ti('p2', 'a'), pg_temp.ti('p2', 'b')], ARRAY['h1'], ARRAY[42, 43]),
          ARRAY[1], 'arrays of unequal length: the missing values are NULL, so those items are left out');
SELECT throws_ok($$SELECT tistate.ti_heartbeat_batch(array_fill('00000000-0000-7000-8000-000000000000'::uuid, ARRAY[1001]),
                                                    array_fill('h1'::text, ARRAY[1001]), array_fill(42, ARRAY[1001]))$$,
                 'TS422', NULL, 'more than 1000 items: TS422');

SELECT is(pg_get_function_result('tistate.ti_heartbeat_batch(uuid[], text[], integer[], timestamptz)'::regprocedure),
          'integer[]', 'ti_heartbeat_batch returns integer[]');
SELECT ok(p.prosecdef, 'ti_heartbeat_batch is SECURITY DEFINER')
FROM pg_proc AS p WHERE p.oid = 'tistate.ti_heartbeat_batch(uuid[], text[], integer[], timestamptz)'::regprocedure;
SELECT ok(has_function_privilege('tistate_executor', 'tistate.ti_heartbeat_batch(uuid[], text[], integer[], timestamptz)', 'EXECUTE'),
          'tistate_executor may execute ti_heartbeat_batch');

SELECT * FROM finish();
ROLLBACK;
