-- tistate.create_dag_run: a running dag run with one queued task instance (try_number 1, uuid7 id)
-- per task of the DAG; TS404 unknown DAG, TS409 duplicate run, TS422 bad arguments.
BEGIN;
\ir _fixtures.sql
SELECT plan(30);

CREATE TEMP TABLE created ON COMMIT DROP AS
SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'manual__1',
                                     p_logical_date => '2025-01-01T00:00:00Z', p_conf => '{"k": "v"}',
                                     p_now => '2025-01-02T03:04:05.678Z');

SELECT results_eq($$SELECT task_id, map_index FROM created ORDER BY task_id$$,
                  $$VALUES ('load', -1), ('other', -1)$$, 'one row per task of the DAG, unmapped');
SELECT results_eq($$
    SELECT ti.task_id::text, ti.state::text, ti.try_number, ti.max_tries, ti.pool::text, ti.pool_slots, ti.queue::text,
           ti.priority_weight, ti.queued_dttm, ti.scheduled_dttm, ti.updated_at, ti.start_date, ti.end_date, ti.hostname::text
    FROM created AS c JOIN task_instance AS ti ON ti.id = c.ti_id ORDER BY ti.task_id
$$, $$ VALUES
    ('load', 'queued', 1, 2, 'default_pool', 1, 'default', 1, '2025-01-02T03:04:05.678Z'::timestamptz,
     '2025-01-02T03:04:05.678Z'::timestamptz, '2025-01-02T03:04:05.678Z'::timestamptz, NULL::timestamptz, NULL::timestamptz, NULL::text),
    ('other', 'queued', 1, 0, 'default_pool', 1, 'default', 1, '2025-01-02T03:04:05.678Z', '2025-01-02T03:04:05.678Z',
     '2025-01-02T03:04:05.678Z', NULL, NULL, NULL)
$$, 'task instances are queued with try_number 1 and the task''s max_tries, pool and queue');
SELECT results_eq($$SELECT dag_id::text, run_id::text FROM task_instance WHERE id IN (SELECT ti_id FROM created) GROUP BY 1, 2$$,
                  $$VALUES ('producer', 'manual__1')$$, 'task instances belong to the run');

-- uuid7: version 7, RFC 9562 variant, and the 48-bit millisecond prefix of p_now.
SELECT is(count(*)::integer, 2, 'ids are uuid version 7 with the RFC variant')
FROM created WHERE substr(ti_id::text, 15, 1) = '7' AND substr(ti_id::text, 20, 1) IN ('8', '9', 'a', 'b');
SELECT is(count(*)::integer, 2, 'uuid7 timestamp prefix is p_now in unix milliseconds')
FROM created
WHERE ('x' || lpad(replace(substr(ti_id::text, 1, 13), '-', ''), 16, '0'))::bit(64)::bigint
      = (extract(epoch FROM '2025-01-02T03:04:05.678Z'::timestamptz) * 1000)::bigint;
SELECT isnt((SELECT ti_id FROM created WHERE task_id = 'load'), (SELECT ti_id FROM created WHERE task_id = 'other'),
            'ids are distinct within the same millisecond');

SELECT results_eq($$
    SELECT state::text, run_type::text, logical_date, run_after, queued_at, start_date, end_date, conf, partition_key::text,
           created_at, updated_at, clear_number
    FROM dag_run WHERE dag_id = 'producer' AND run_id = 'manual__1'
$$, $$ VALUES ('running', 'manual', '2025-01-01T00:00:00Z'::timestamptz, '2025-01-01T00:00:00Z'::timestamptz,
               '2025-01-02T03:04:05.678Z'::timestamptz, '2025-01-02T03:04:05.678Z'::timestamptz, NULL::timestamptz,
               '{"k": "v"}'::jsonb, NULL::text, '2025-01-02T03:04:05.678Z'::timestamptz, '2025-01-02T03:04:05.678Z'::timestamptz, 0) $$,
   'dag_run row');

-- Defaults: no logical date (run_after = p_now), conf {}, and a partition key.
SELECT is((SELECT count(*)::integer FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'manual__2',
                                                                 p_now => '2025-01-03T00:00:00Z', p_partition_key => 'eu/2025-01-03')),
          2, 'a run without logical date');
SELECT results_eq($$SELECT logical_date, run_after, conf, partition_key::text FROM dag_run WHERE run_id = 'manual__2'$$,
                  $$VALUES (NULL::timestamptz, '2025-01-03T00:00:00Z'::timestamptz, '{}'::jsonb, 'eu/2025-01-03')$$,
                  'defaults: run_after = p_now, conf {}, partition_key stored');
SELECT lives_ok($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'manual__3', p_conf => NULL)$$,
                'a second run without logical date does not conflict; NULL conf is accepted');
SELECT is((SELECT conf FROM dag_run WHERE run_id = 'manual__3'), '{}'::jsonb, 'NULL conf is stored as {}');
SELECT is((SELECT count(*)::integer FROM tistate.create_dag_run(p_dag_id => 'c_asset', p_run_id => 'r')), 0,
          'a DAG without tasks gets a run and no task instances');
SELECT is((SELECT count(*)::integer FROM dag_run WHERE dag_id = 'c_asset'), 1, 'its run exists');

------------------------------------------------------------------------------------------------
-- Errors: codes, and nothing written
------------------------------------------------------------------------------------------------
SELECT pg_temp.tistate_digest() AS before \gset
SELECT is(pg_temp.error_of($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'nope', p_run_id => 'r')$$) - 'message',
          '{"sqlstate": "TS404", "detail": {"reason": "not_found", "dag_id": "nope"}}'::jsonb, 'unknown DAG: TS404');
SELECT is(pg_temp.code_field($$SELECT * FROM tistate.create_dag_run(p_dag_id => NULL, p_run_id => 'r')$$), 'TS404 ', 'NULL DAG: TS404');
SELECT is(pg_temp.error_of($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'manual__1')$$) - 'message',
          '{"sqlstate": "TS409", "detail": {"reason": "already_exists", "dag_id": "producer", "run_id": "manual__1"}}'::jsonb,
          'duplicate run_id: TS409');
SELECT is(pg_temp.code_field($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'other', p_logical_date => '2025-01-01T00:00:00Z')$$),
          'TS409 ', 'duplicate logical_date: TS409');
SELECT is(pg_temp.code_field(sql), 'TS422 ' || field, format('TS422 %s: %s', field, sql))
FROM (VALUES
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => '')$$, 'run_id'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => '   ')$$, 'run_id'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => NULL)$$, 'run_id'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => repeat('r', 251))$$, 'run_id'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'x', p_conf => '[1]')$$, 'conf'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'x', p_conf => '"s"')$$, 'conf'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'x', p_partition_key => '')$$, 'partition_key'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'x', p_partition_key => E' \t')$$, 'partition_key'),
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => 'x', p_partition_key => repeat('k', 251))$$, 'partition_key'),
    -- validation precedes the DAG lookup
    ($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'nope', p_run_id => '')$$, 'run_id')
) AS t (sql, field);
SELECT is(pg_temp.tistate_digest(), :'before', 'the failed calls wrote nothing');
SELECT lives_ok($$SELECT * FROM tistate.create_dag_run(p_dag_id => 'producer', p_run_id => repeat('r', 250), p_partition_key => repeat('k', 250))$$,
                '250-character run_id and partition key are accepted');
SELECT is((SELECT count(*)::integer FROM dag_run WHERE dag_id = 'producer'), 4, 'only the valid runs exist');

SELECT * FROM finish();
ROLLBACK;
