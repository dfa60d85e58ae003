-- emit_asset_event: a manual event for an active asset, its consumers queued like a task's event
-- (not when it carries a partition key), no producer attribution; TS404 / TS422.
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(20);

-- With a partition key first: the event is written, no consumer is queued.
\o /dev/null
CREATE TEMP TABLE rp AS SELECT * FROM tistate.emit_asset_event('orders', 's3://lake/orders', NULL, '2030-01-01',
                                                               p_now => '2030-01-01T00:30:00Z');
\o
SELECT is((SELECT queued_dag_ids FROM rp), '{}'::text[], 'partitioned event: no consumer queued');
SELECT is((SELECT count(*)::integer FROM asset_dag_run_queue), 0, 'partitioned event: no asset_dag_run_queue row');
SELECT results_eq($$SELECT partition_key::text, extra FROM tistate_test.asset_event WHERE id = (SELECT asset_event_id FROM rp)$$,
                  $$VALUES ('2030-01-01', '{}'::jsonb)$$, 'partitioned event: partition_key stored, extra {} for NULL');

\o /dev/null
CREATE TEMP TABLE r AS SELECT * FROM tistate.emit_asset_event('orders', 's3://lake/orders', '{"rows": 10}',
                                                              p_now => '2030-01-01T01:00:00Z');
\o
SELECT is((SELECT asset_id FROM r), (SELECT id FROM asset WHERE name = 'orders'), 'result asset_id');
SELECT is((SELECT queued_dag_ids FROM r), ARRAY['cons', 'cons_name'], 'consumers by asset and by name ref queued; paused not');
SELECT results_eq(
    $$SELECT asset_id, extra, "timestamp", partition_key, source_dag_id, source_task_id, source_run_id, ti_id, try_number
      FROM tistate_test.asset_event WHERE id = (SELECT asset_event_id FROM r)$$,
    $$SELECT (SELECT asset_id FROM r), '{"rows": 10}'::jsonb, '2030-01-01T01:00:00Z'::timestamptz, NULL::varchar,
             NULL::varchar, NULL::varchar, NULL::varchar, NULL::uuid, NULL::integer$$,
    'the event row: extra, timestamp p_now, no partition, no producer');
SELECT results_eq($$SELECT target_dag_id::text, created_at FROM asset_dag_run_queue ORDER BY 1$$,
                  $$VALUES ('cons', '2030-01-01T01:00:00Z'::timestamptz), ('cons_name', '2030-01-01T01:00:00Z')$$,
                  'asset_dag_run_queue rows for the consumers');
SELECT ok((SELECT asset_event_id FROM r) > (SELECT asset_event_id FROM rp), 'event ids increase');

-- A second event keeps one queue row per consumer, moved to the newest event's time: the scheduler
-- consumes events up to it (Airflow keeps the first time and leaves the later events behind).
\o /dev/null
CREATE TEMP TABLE r2 AS SELECT * FROM tistate.emit_asset_event(NULL, 's3://lake/orders', '{}', p_now => '2030-01-01T02:00:00Z');
CREATE TEMP TABLE r3 AS SELECT * FROM tistate.emit_asset_event('orders', NULL, '{}', p_now => '2030-01-01T02:00:00Z');
\o
SELECT is((SELECT queued_dag_ids FROM r2), ARRAY['cons', 'cons_name'], 'by uri alone: same asset, same consumers');
SELECT is((SELECT asset_id FROM r3), (SELECT asset_id FROM r), 'by name alone: same asset');
SELECT results_eq($$SELECT target_dag_id::text, created_at FROM asset_dag_run_queue ORDER BY 1$$,
                  $$VALUES ('cons', '2030-01-01T02:00:00Z'::timestamptz), ('cons_name', '2030-01-01T02:00:00Z')$$,
                  'queue rows not duplicated, created_at moved to the newest event');
SELECT is((SELECT count(*)::integer FROM tistate_test.asset_event), 4, 'four events in all');

-- Errors.
INSERT INTO asset (name, uri, "group", extra, created_at, updated_at) VALUES ('retired', 's3://lake/retired', 'asset', '{}', now(), now());
SELECT throws_ok($$SELECT tistate.emit_asset_event('retired', 's3://lake/retired', '{}')$$, 'TS404', NULL, 'inactive asset: TS404');
SELECT throws_ok($$SELECT tistate.emit_asset_event('nope', 's3://lake/nope', '{}')$$, 'TS404', NULL, 'unknown asset: TS404');
SELECT throws_ok($$SELECT tistate.emit_asset_event('orders', 's3://lake/other', '{}')$$, 'TS404', NULL,
                 'name of one asset with the uri of another: TS404');
SELECT throws_ok($$SELECT tistate.emit_asset_event('orders', 'airflow://x', '{}')$$, 'TS422', NULL, 'reserved uri scheme: TS422');
SELECT throws_ok($$SELECT tistate.emit_asset_event('orders', 's3://lake/orders', '[1]')$$, 'TS422', NULL, 'extra not an object: TS422');
SELECT throws_ok($$SELECT tistate.emit_asset_event('orders', 's3://lake/orders', '{}', '  ')$$, 'TS422', NULL, 'blank partition key: TS422');
SELECT throws_ok($$SELECT tistate.emit_asset_event(NULL, NULL, '{}')$$, 'TS422', NULL, 'neither name nor uri: TS422');
SELECT is((SELECT count(*)::integer FROM tistate_test.asset_event), 4, 'refused calls wrote no event');

SELECT * FROM finish();
ROLLBACK;
