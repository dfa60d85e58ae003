-- tistate.ti_update_state with state success: every row the transition writes (task instance, log,
-- asset events, alias links, dynamic assets, consumer queue), the registration rules (dedup of
-- Asset/NameRef/UriRef, undeclared and inactive outlets skipped, partition keys never queued,
-- paused and stale consumers never queued), the same-state no-op, TS404, TS409, TS410 and TS422.
BEGIN;
\ir _fixtures.sql

-- The producer's load task also declares what the success tests send beyond its DAG document:
-- a second alias, name and uri references, and assets that are inactive or unknown.
\o /dev/null
SELECT pg_temp.declare_outlets('load', '[{"type": "AssetAlias", "name": "weekly-tables"},
    {"type": "AssetNameRef", "name": "orders"}, {"type": "AssetUriRef", "uri": "s3://lake/customers"},
    {"type": "AssetUriRef", "uri": "s3://lake/orders"},
    {"type": "Asset", "name": "dormant", "uri": "s3://lake/dormant"}, {"type": "Asset", "name": "ghost", "uri": "s3://lake/ghost"},
    {"type": "AssetNameRef", "name": "nobody"}, {"type": "AssetUriRef", "uri": "s3://nowhere"},
    {"type": "AssetAlias", "name": "fresh-alias"}]');
\o
SELECT plan(98);

DO $$
BEGIN
    PERFORM tistate_test.define_dag('{"dag_id": "c_weekly", "schedule": {"aliases": ["weekly-tables"]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_new_by_uri", "schedule": {"uri_refs": ["s3://tables/new"]}}');
    -- Standalone: a partition-aware consumer is not queued (Airflow mode refuses it: airflow_mode.sql).
    IF NOT tistate_test.is_airflow() THEN
        PERFORM tistate_test.define_dag('{"dag_id": "c_partitioned", "timetable_partitioned": true, "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]}}');
    END IF;
    -- An asset that exists but is not active (e.g. its DAG was removed).
    INSERT INTO asset (name, uri, "group", extra, created_at, updated_at) VALUES ('dormant', 's3://lake/dormant', 'asset', '{}', now(), now());
END
$$;

------------------------------------------------------------------------------------------------
-- A. The full success: direct events, alias events, a dynamic asset, queue rows
------------------------------------------------------------------------------------------------
SELECT pg_temp.running_ti('r1', p_logical_date => '2025-01-01T00:00:00Z') AS ti1 \gset
-- A third try that was once deferred: try_number and next_* must come from the row.
UPDATE task_instance SET try_number = 3, next_method = 'execute_complete', next_kwargs = '{"x": 1}',
       rendered_map_index = 'old' WHERE id = :'ti1';

CREATE TEMP TABLE res ON COMMIT DROP AS
SELECT * FROM tistate.ti_update_state(
    p_ti_id => :'ti1',
    p_payload => $${"state": "success", "end_date": "2025-01-01T00:01:30+00:00", "rendered_map_index": "eu",
        "task_outlets": [{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
                         {"type": "Asset", "name": "customers", "uri": "s3://lake/customers"},
                         {"type": "AssetAlias", "name": "daily-tables"},
                         {"type": "AssetAlias", "name": "weekly-tables"}],
        "outlet_events": [
            {"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"rows": 10}},
            {"source_alias_name": "daily-tables", "dest_asset_key": {"name": "t_new", "uri": "s3://tables/new"},
             "dest_asset_extra": {"owner": "x"}, "extra": {"table": "new"}},
            {"source_alias_name": "weekly-tables", "dest_asset_key": {"name": "t_new", "uri": "s3://tables/new"},
             "dest_asset_extra": {"owner": "x"}, "extra": {"table": "new"}},
            {"source_alias_name": "daily-tables", "dest_asset_key": {"name": "customers", "uri": "s3://lake/customers"},
             "extra": {"table": "customers"}}]}$$,
    p_now => '2025-01-01T00:01:31Z');

SELECT results_eq($$SELECT ti_id, previous_state, new_state, applied, new_ti_id FROM res$$,
                  format($$VALUES (%L::uuid, 'running', 'success', true, NULL::uuid)$$, :'ti1'),
                  'result: running -> success, applied');
SELECT is((SELECT queued_dag_ids FROM res), ARRAY['c_alias', 'c_asset', 'c_customers', 'c_name', 'c_new_by_uri', 'c_uri', 'c_weekly'],
          'result: the queued consumer DAGs, sorted, without paused, stale or partition-aware DAGs');
SELECT is((SELECT asset_event_ids FROM res), ARRAY(SELECT id FROM tistate_test.asset_event WHERE ti_id = :'ti1' ORDER BY id),
          'result: the ids of the events written');
SELECT ok((SELECT lock_wait_ms >= 0 AND lock_held_ms >= 0 FROM res), 'result: lock timings');

SELECT results_eq($$
    SELECT state::text, end_date, duration, next_method::text, next_kwargs, rendered_map_index::text, updated_at,
           start_date, try_number, hostname::text
    FROM task_instance WHERE id = pg_temp.ti('r1')
$$, $$ VALUES ('success', '2025-01-01T00:01:30Z'::timestamptz, 90::double precision, NULL::text, NULL::jsonb, 'eu',
               '2025-01-01T00:01:31Z'::timestamptz, '2025-01-01T00:00:00Z'::timestamptz, 3, 'worker-1') $$,
   'task instance: state, end_date, duration = end - start, next_* cleared, rendered_map_index, updated_at = p_now');
SELECT results_eq($$
    SELECT dttm, dag_id::text, task_id::text, run_id::text, map_index, try_number, event::text, logical_date,
           owner::text, owner_display_name::text, extra
    FROM log WHERE run_id = 'r1' AND event = 'success'
$$, $$ VALUES ('2025-01-01T00:01:31Z'::timestamptz, 'producer', 'load', 'r1', -1, 3, 'success',
               '2025-01-01T00:00:00Z'::timestamptz, 'data-team', NULL::text, '{"host_name": "worker-1"}') $$,
   'one success log row with owner, logical_date, host extra and the try''s number');

-- Events: direct ones first (by asset id), then alias ones; one alias event per distinct
-- (asset, asset extra, extra), linked to every alias that sent it.
SELECT results_eq($$
    SELECT a.name::text, e.extra, e.source_task_id::text, e.source_dag_id::text, e.source_run_id::text, e.source_map_index,
           pg_temp.event_time(e."timestamp", '2025-01-01T00:01:31Z'), e.partition_key::text, e.ti_id, e.try_number
    FROM tistate_test.asset_event AS e JOIN asset AS a ON a.id = e.asset_id
    WHERE e.ti_id = pg_temp.ti('r1') ORDER BY e.id
$$, format($$ VALUES
    ('orders', '{"rows": 10}'::jsonb, 'load', 'producer', 'r1', -1, '2025-01-01T00:01:31Z'::timestamptz, NULL::text, %1$L::uuid, 3),
    ('customers', '{}', 'load', 'producer', 'r1', -1, '2025-01-01T00:01:31Z', NULL, %1$L, 3),
    ('customers', '{"table": "customers"}', 'load', 'producer', 'r1', -1, '2025-01-01T00:01:31Z', NULL, %1$L, 3),
    ('t_new', '{"table": "new"}', 'load', 'producer', 'r1', -1, '2025-01-01T00:01:31Z', NULL, %1$L, 3)
$$, :'ti1'), 'asset_event rows with extra, source_* columns, timestamp, ti_id and try_number');
SELECT results_eq($$
    SELECT a.name::text, al.name::text
    FROM asset_alias_asset_event AS l
    JOIN tistate_test.asset_event AS e ON e.id = l.event_id JOIN asset AS a ON a.id = e.asset_id
    JOIN asset_alias AS al ON al.id = l.alias_id
    WHERE e.ti_id = pg_temp.ti('r1') ORDER BY 1, 2
$$, $$ VALUES ('customers', 'daily-tables'), ('t_new', 'daily-tables'), ('t_new', 'weekly-tables') $$,
   'asset_alias_asset_event links each alias event to every alias that emitted it');
SELECT results_eq($$
    SELECT al.name::text, a.name::text FROM asset_alias_asset AS l
    JOIN asset_alias AS al ON al.id = l.alias_id JOIN asset AS a ON a.id = l.asset_id ORDER BY 1, 2
$$, $$ VALUES ('daily-tables', 'customers'), ('daily-tables', 't_new'), ('weekly-tables', 't_new') $$,
   'asset_alias_asset links the aliases to the assets they resolved to');
SELECT results_eq($$
    SELECT a.name::text, a.uri::text, a."group"::text, a.extra::jsonb, a.created_at,
           (act.name IS NOT NULL) = NOT tistate_test.is_airflow()
    FROM asset AS a LEFT JOIN asset_active AS act ON act.name = a.name AND act.uri = a.uri
    WHERE a.name = 't_new'
$$, $$ VALUES ('t_new', 's3://tables/new', 'asset', '{"owner": "x"}'::jsonb, '2025-01-01T00:01:31Z'::timestamptz, true) $$,
   'an asset first reached through an alias is created (group asset, dest_asset_extra) and activated (standalone; Airflow''s scheduler activates it in Airflow mode)');
SELECT results_eq($$
    SELECT a.name::text, q.target_dag_id::text, pg_temp.event_time(q.created_at, '2025-01-01T00:01:31Z')
    FROM asset_dag_run_queue AS q JOIN asset AS a ON a.id = q.asset_id ORDER BY 1, 2
$$, $$ VALUES
    ('customers', 'c_alias', '2025-01-01T00:01:31Z'::timestamptz),
    ('customers', 'c_customers', '2025-01-01T00:01:31Z'),
    ('orders', 'c_asset', '2025-01-01T00:01:31Z'),
    ('orders', 'c_name', '2025-01-01T00:01:31Z'),
    ('orders', 'c_uri', '2025-01-01T00:01:31Z'),
    ('t_new', 'c_alias', '2025-01-01T00:01:31Z'),
    ('t_new', 'c_new_by_uri', '2025-01-01T00:01:31Z'),
    ('t_new', 'c_weekly', '2025-01-01T00:01:31Z')
$$, 'one queue row per (asset, consumer): by asset, by alias, by name ref, by uri ref');
SELECT is_empty($$SELECT 1 FROM asset_dag_run_queue WHERE target_dag_id IN ('c_paused', 'c_stale', 'c_partitioned')$$,
                'paused, stale and partition-aware consumers are not queued');

------------------------------------------------------------------------------------------------
-- B. The no-op: a retried success answers applied=false and writes nothing
------------------------------------------------------------------------------------------------
SELECT pg_temp.tistate_digest() AS after_a \gset
CREATE TEMP TABLE noop ON COMMIT DROP AS
SELECT * FROM tistate.ti_update_state(
    p_ti_id => :'ti1',
    p_payload => '{"state": "success", "end_date": "2025-01-01T00:09:00Z", "task_outlets": [{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]}',
    p_now => '2025-01-01T00:09:00Z');
SELECT results_eq($$SELECT ti_id, previous_state, new_state, applied, queued_dag_ids FROM noop$$,
                  format($$VALUES (%L::uuid, 'success', 'success', false, '{}'::text[])$$, :'ti1'),
                  'the same state again: applied=false');
SELECT is((SELECT asset_event_ids FROM noop), (SELECT asset_event_ids FROM res), 'the no-op reports the events of the applied call');
SELECT is(pg_temp.tistate_digest(), :'after_a', 'the no-op writes nothing (no event, no log row, no queue row, no update)');

------------------------------------------------------------------------------------------------
-- C. Asset + NameRef + UriRef of the same asset: one event per payload, not three
------------------------------------------------------------------------------------------------
DELETE FROM asset_dag_run_queue;
SELECT pg_temp.running_ti('r2') AS ti2 \gset
SELECT is(cardinality((pg_temp.succeed(:'ti2',
    '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}, {"type": "AssetNameRef", "name": "orders"},
      {"type": "AssetUriRef", "uri": "s3://lake/orders"}, {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]',
    '[{"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"n": 1}},
      {"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"n": 2}}]')).asset_event_ids), 2,
    'two payloads for an asset listed as Asset, NameRef and UriRef: two events');
SELECT results_eq($$SELECT extra FROM tistate_test.asset_event WHERE ti_id = pg_temp.ti('r2') ORDER BY id$$,
                  $$VALUES ('{"n": 1}'::jsonb), ('{"n": 2}')$$, 'one event per payload, in payload order');
SELECT is((SELECT count(*)::integer FROM asset_dag_run_queue), 3, 'its consumers are queued once each');

SELECT pg_temp.running_ti('r3') AS ti3 \gset
SELECT asset_event_ids AS ids3 FROM pg_temp.succeed(:'ti3',
    '[{"type": "AssetNameRef", "name": "orders"}, {"type": "AssetUriRef", "uri": "s3://lake/customers"}]') \gset
SELECT results_eq(format($$SELECT a.name::text, e.extra FROM unnest(%L::integer[]) AS i
    JOIN tistate_test.asset_event AS e ON e.id = i JOIN asset AS a ON a.id = e.asset_id ORDER BY e.id$$, :'ids3'),
    $$VALUES ('orders', '{}'::jsonb), ('customers', '{}')$$,
    'a NameRef and a UriRef resolve to their active assets; no payload means one default event');

------------------------------------------------------------------------------------------------
-- D. Undeclared, inactive and unknown targets are skipped
------------------------------------------------------------------------------------------------
SELECT pg_temp.running_ti('r4') AS ti4 \gset
SELECT asset_event_ids AS ids4 FROM pg_temp.succeed(:'ti4',
    '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}, {"type": "Asset", "name": "dormant", "uri": "s3://lake/dormant"},
      {"type": "Asset", "name": "ghost", "uri": "s3://lake/ghost"}, {"type": "AssetNameRef", "name": "nobody"},
      {"type": "AssetUriRef", "uri": "s3://nowhere"}]',
    '[{"dest_asset_key": {"name": "customers", "uri": "s3://lake/customers"}, "extra": {"undeclared": true}},
      {"dest_asset_key": {"name": "dormant", "uri": "s3://lake/dormant"}},
      {"source_alias_name": "daily-tables", "dest_asset_key": {"name": "via-undeclared", "uri": "s3://x/y"}}]') \gset
SELECT results_eq(format($$SELECT a.name::text, e.extra FROM unnest(%L::integer[]) AS i
    JOIN tistate_test.asset_event AS e ON e.id = i JOIN asset AS a ON a.id = e.asset_id ORDER BY e.id$$, :'ids4'),
    $$VALUES ('orders', '{}'::jsonb)$$,
    'events for undeclared assets and aliases, inactive and unknown assets and unresolved refs are skipped');
SELECT is((SELECT count(*)::integer FROM asset WHERE name IN ('ghost', 'via-undeclared')), 0,
          'skipped targets create no asset');
SELECT is((SELECT state::text FROM task_instance WHERE id = :'ti4'), 'success', 'the skips do not fail the transition');

-- An outlet the task does not declare: TS403, nothing written (Airflow trusts the worker here).
SELECT pg_temp.running_ti('r4b') AS ti4b \gset
SELECT pg_temp.tistate_digest() AS before_403 \gset
SELECT is(pg_temp.code_field(format($$SELECT pg_temp.succeed(%L, '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
    {"type": "Asset", "name": "customers-of-another-dag", "uri": "s3://other/customers"}]')$$, :'ti4b')),
    'TS403 task_outlets', 'an undeclared asset outlet: TS403 on task_outlets');
SELECT is(pg_temp.code_field(format($$SELECT pg_temp.succeed(%L, '[{"type": "AssetAlias", "name": "someone-elses-alias"}]',
    '[{"source_alias_name": "someone-elses-alias", "dest_asset_key": {"name": "squat", "uri": "s3://squat"}}]')$$, :'ti4b')),
    'TS403 task_outlets', 'an undeclared alias: TS403');
SELECT is(pg_temp.tistate_digest(), :'before_403', 'the refused successes wrote nothing');

SELECT pg_temp.running_ti('r5') AS ti5 \gset
SELECT results_eq(format($$SELECT applied, asset_event_ids, queued_dag_ids FROM pg_temp.succeed(%L, '[]',
    '[{"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}},
      {"source_alias_name": "daily-tables", "dest_asset_key": {"name": "t_other", "uri": "s3://tables/other"}}]')$$, :'ti5'),
    $$VALUES (true, '{}'::integer[], '{}'::text[])$$,
    'no task_outlets: the success applies, its events are ignored, nothing is queued');
SELECT is((SELECT count(*)::integer FROM tistate_test.asset_event WHERE ti_id = :'ti5') + (SELECT count(*)::integer FROM asset WHERE name = 't_other'),
          0, 'no task_outlets: no event and no dynamic asset');

-- An alias event for an existing but inactive asset is skipped (one activeness rule for both paths).
SELECT pg_temp.running_ti('r6') AS ti6 \gset
SELECT is(cardinality((pg_temp.succeed(:'ti6', '[{"type": "AssetAlias", "name": "daily-tables"}]',
    '[{"source_alias_name": "daily-tables", "dest_asset_key": {"name": "dormant", "uri": "s3://lake/dormant"}}]')).asset_event_ids),
    CASE WHEN tistate_test.is_airflow() THEN 1 ELSE 0 END,
    'an alias event for an inactive asset is skipped (standalone), registered as Airflow does (Airflow mode)');
SELECT is_empty($$SELECT 1 FROM asset_active WHERE name = 'dormant'$$, 'the inactive asset stays inactive');

-- An alias declared only by the task is created on first use; a repeated alias event is one event.
SELECT pg_temp.running_ti('r6b') AS ti6b \gset
SELECT is(cardinality((pg_temp.succeed(:'ti6b', '[{"type": "AssetAlias", "name": "fresh-alias"}]',
    '[{"source_alias_name": "fresh-alias", "dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"k": 1}},
      {"source_alias_name": "fresh-alias", "dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"k": 1}}]')).asset_event_ids),
    1, 'identical alias events are registered once');
SELECT results_eq($$SELECT al.name::text, a.name::text FROM asset_alias_asset AS l
                    JOIN asset_alias AS al ON al.id = l.alias_id JOIN asset AS a ON a.id = l.asset_id
                    WHERE al.name = 'fresh-alias'$$,
                  $$VALUES ('fresh-alias', 'orders')$$, 'an alias first seen in a payload is created and linked');

------------------------------------------------------------------------------------------------
-- E. Partition keys: stored on the event, never queued for non-partitioned consumers
------------------------------------------------------------------------------------------------
DELETE FROM asset_dag_run_queue;
SELECT pg_temp.running_ti('r7') AS ti7 \gset
SELECT is((pg_temp.succeed(:'ti7', '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}, {"type": "AssetAlias", "name": "daily-tables"}]',
    '[{"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "partition_key": "2025-01-01"}]')).queued_dag_ids,
    '{}'::text[], 'an event with a partition key queues no consumer');
SELECT results_eq($$SELECT partition_key::text FROM tistate_test.asset_event WHERE ti_id = pg_temp.ti('r7')$$, $$VALUES ('2025-01-01')$$,
                  'the payload''s partition key is stored on the event');
SELECT pg_temp.running_ti('r7v') AS ti7v \gset
SELECT is((pg_temp.succeed(:'ti7v', '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]',
    '[{"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "partition_key": "vv"}]')).applied, true,
    'a partition key made of the letter v is accepted');
SELECT results_eq($$SELECT partition_key::text FROM tistate_test.asset_event WHERE ti_id = pg_temp.ti('r7v')$$, $$VALUES ('vv')$$,
                  'a partition key of letters v is not whitespace');
SELECT pg_temp.running_ti('r8', p_partition_key => 'eu') AS ti8 \gset
SELECT is((pg_temp.succeed(:'ti8', '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}, {"type": "AssetAlias", "name": "daily-tables"}]',
    '[{"source_alias_name": "daily-tables", "dest_asset_key": {"name": "customers", "uri": "s3://lake/customers"}}]')).queued_dag_ids,
    '{}'::text[], 'events of a partitioned run (direct and alias) queue no consumer');
SELECT results_eq($$SELECT a.name::text, e.partition_key::text FROM tistate_test.asset_event AS e JOIN asset AS a ON a.id = e.asset_id
                    WHERE e.ti_id = pg_temp.ti('r8') ORDER BY e.id$$,
                  $$VALUES ('orders', 'eu'), ('customers', 'eu')$$, 'events inherit the run''s partition key');
SELECT is_empty($$SELECT 1 FROM asset_dag_run_queue$$, 'no queue rows at all');

------------------------------------------------------------------------------------------------
-- F. Errors: TS404, TS410, TS409 with previous_state, TS422; none writes anything
------------------------------------------------------------------------------------------------
SELECT pg_temp.queued_ti('r9') AS ti9 \gset
INSERT INTO task_instance_history (task_instance_id, task_id, dag_id, run_id, map_index, try_number, state, pool, pool_slots)
VALUES ('01941f29-0000-7000-8000-0000000000aa', 'load', 'producer', 'r9', -1, 0, 'failed', 'default_pool', 1);
SELECT pg_temp.tistate_digest() AS before_errors \gset

SELECT is(pg_temp.error_of($$SELECT pg_temp.succeed('01941f29-0000-7000-8000-000000000000')$$) - 'message',
          '{"sqlstate": "TS404", "detail": {"reason": "not_found", "message": "Task Instance not found"}}'::jsonb, 'unknown id: TS404');
SELECT is(pg_temp.error_of($$SELECT pg_temp.succeed('01941f29-0000-7000-8000-0000000000aa')$$) #>> '{sqlstate}', 'TS410',
          'an id archived by a retry: TS410');

CREATE FUNCTION pg_temp.succeed_from(p_state text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_before text;
    v_result jsonb;
BEGIN
    UPDATE task_instance SET state = p_state WHERE id = pg_temp.ti('r9');
    v_before := pg_temp.tistate_digest();
    v_result := pg_temp.error_of(format($q$SELECT pg_temp.succeed(%L, '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]')$q$, pg_temp.ti('r9')));
    IF pg_temp.tistate_digest() IS DISTINCT FROM v_before THEN
        v_result := v_result || '{"wrote": true}';
    END IF;
    UPDATE task_instance SET state = 'queued' WHERE id = pg_temp.ti('r9');
    RETURN v_result;
END $$;
SELECT is(pg_temp.succeed_from(s) - 'message',
          jsonb_build_object('sqlstate', 'TS409', 'detail', jsonb_build_object(
              'reason', 'invalid_state', 'previous_state', s,
              'message', 'TI was not in the running state so it cannot be updated')),
          format('%s -> success: TS409 with previous_state %s in DETAIL, nothing written', coalesce(s, 'none'), coalesce(s, 'null')))
FROM unnest(ARRAY['queued', 'scheduled', 'failed', 'skipped', 'up_for_retry', 'up_for_reschedule', 'deferred', 'restarting', NULL]) AS s;

-- TS422: every malformed payload names its field, before any lookup (the id is unknown here).
SELECT is(pg_temp.code_field(format($$SELECT tistate.ti_update_state(p_ti_id => '01941f29-0000-7000-8000-000000000000', p_payload => %L::jsonb)$$, payload)),
          'TS422 ' || field, format('TS422 %s: %s', field, payload))
FROM (VALUES
    ('null', ''),
    ('[]', ''),
    ('{}', 'state'),
    ('{"state": 1, "end_date": "2025-01-01T00:00:00Z"}', 'state'),
    ('{"state": "done", "end_date": "2025-01-01T00:00:00Z"}', 'state'),
    ('{"state": "success"}', 'end_date'),
    ('{"state": "success", "end_date": null}', 'end_date'),
    ('{"state": "success", "end_date": 1735689600}', 'end_date'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00"}', 'end_date'),
    ('{"state": "success", "end_date": "2025-01-01 00:00"}', 'end_date'),
    ('{"state": "success", "end_date": "2025-13-01T00:00:00Z"}', 'end_date'),
    ('{"state": "success", "end_date": "tomorrow"}', 'end_date'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "unknown": 1}', 'unknown'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "rendered_map_index": 5}', 'rendered_map_index'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": {}}', 'task_outlets'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": ["orders"]}', 'task_outlets[0]'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"name": "orders"}]}', 'task_outlets[0].type'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "Dataset", "name": "a", "uri": "s3://a"}]}', 'task_outlets[0].type'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": 1, "name": "a"}]}', 'task_outlets[0].type'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "Asset", "name": "a"}]}', 'task_outlets[0]'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "Asset", "name": "a", "uri": "s3://a", "group": "g"}]}', 'task_outlets[0].group'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "AssetAlias", "name": ""}]}', 'task_outlets[0].name'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "AssetNameRef", "name": 3}]}', 'task_outlets[0].name'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "AssetUriRef"}]}', 'task_outlets[0].uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "Asset", "name": "a", "uri": "airflow://a"}]}', 'task_outlets[0].uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "task_outlets": [{"type": "AssetUriRef", "uri": "s3://bücher"}]}', 'task_outlets[0].uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": {}}', 'outlet_events'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [1]}', 'outlet_events[0]'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{}]}', 'outlet_events[0].dest_asset_key'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a"}}]}', 'outlet_events[0].dest_asset_key.uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a", "x": 1}}]}', 'outlet_events[0].dest_asset_key.x'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "AIRFLOW://a"}}]}', 'outlet_events[0].dest_asset_key.uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://é"}}]}', 'outlet_events[0].dest_asset_key.uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": ""}}]}', 'outlet_events[0].dest_asset_key.uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "extra": []}]}', 'outlet_events[0].extra'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "partition_key": ""}]}', 'outlet_events[0].partition_key'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "partition_key": " \t "}]}', 'outlet_events[0].partition_key'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "partition_key": 7}]}', 'outlet_events[0].partition_key'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "partition_key": "\u000b\u001f "}]}', 'outlet_events[0].partition_key'),
    (format('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "partition_key": "%s"}]}', repeat('k', 251)), 'outlet_events[0].partition_key'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}, "source": "x"}]}', 'outlet_events[0].source'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"source_alias_name": "al", "dest_asset_key": {"name": "a", "uri": "s3://a"}, "partition_key": "p"}]}', 'outlet_events[0].partition_key'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"source_alias_name": "", "dest_asset_key": {"name": "a", "uri": "s3://a"}}]}', 'outlet_events[0].source_alias_name'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"source_alias_name": 1, "dest_asset_key": {"name": "a", "uri": "s3://a"}}]}', 'outlet_events[0].source_alias_name'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"source_alias_name": "al", "dest_asset_key": {"name": "a", "uri": "s3://a"}, "dest_asset_extra": "x"}]}', 'outlet_events[0].dest_asset_extra'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"source_alias_name": "al", "dest_asset_key": {"name": "a", "uri": "airflow://a"}}]}', 'outlet_events[0].dest_asset_key.uri'),
    ('{"state": "success", "end_date": "2025-01-01T00:00:00Z", "outlet_events": [{"dest_asset_key": {"name": "a", "uri": "s3://a"}}, {"dest_asset_key": null}]}', 'outlet_events[1].dest_asset_key')
) AS t (payload, field);
SELECT is(pg_temp.tistate_digest(), :'before_errors', 'TS404, TS410 and every TS422 wrote nothing');

-- The checks order: a malformed payload for a task instance that is not running is TS422, not TS409.
SELECT is(pg_temp.code_field(format($$SELECT tistate.ti_update_state(p_ti_id => %L, p_payload => '{"state": "success"}')$$, :'ti9')),
          'TS422 end_date', 'validation precedes the state check');

SELECT * FROM finish();
ROLLBACK;
