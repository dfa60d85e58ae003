-- tistate.define_dag(p_dag jsonb): upsert of a DAG document with its tasks, assets, aliases and
-- schedule/outlet references; TS422 for malformed documents, TS409 for an asset conflict.
BEGIN;
\ir _fixtures.sql
SELECT plan(67);

------------------------------------------------------------------------------------------------
-- Happy path: every row of a full document
------------------------------------------------------------------------------------------------
SELECT is(tistate.define_dag($${
    "dag_id": "etl", "owners": "data-team", "description": "nightly etl", "is_paused": false,
    "fail_fast": true, "max_active_runs": 3, "timetable_partitioned": false,
    "schedule": {"assets": [{"name": "raw", "uri": "s3://lake/raw"}], "aliases": ["incoming"],
                 "name_refs": ["raw-by-name"], "uri_refs": ["s3://lake/by-uri"]},
    "tasks": [
        {"task_id": "extract", "max_tries": 3, "pool": "io", "pool_slots": 2, "queue": "fast",
         "priority_weight": 7, "operator": "PythonOperator", "is_teardown": false,
         "outlets": [{"type": "Asset", "name": "staged", "uri": "s3://lake/staged"},
                     {"type": "AssetAlias", "name": "staged-tables"},
                     {"type": "AssetNameRef", "name": "orders"},
                     {"type": "AssetUriRef", "uri": "s3://lake/customers"}]},
        {"task_id": "cleanup", "is_teardown": true}]}$$) - 'assets' - 'aliases',
    '{"dag_id": "etl", "tasks": ["cleanup", "extract"]}'::jsonb,
    'define_dag returns dag_id and the sorted task ids');

SELECT results_eq($$
    SELECT dag_id::text, owners::text, description, is_paused, is_stale, fail_fast, max_active_runs, timetable_partitioned
    FROM dag WHERE dag_id = 'etl'
$$, $$ VALUES ('etl', 'data-team', 'nightly etl', false, false, true, 3, false) $$, 'dag row');
SELECT isnt((SELECT last_parsed_time FROM dag WHERE dag_id = 'etl'), NULL, 'dag.last_parsed_time is set');

SELECT results_eq($$
    SELECT task_id::text, max_tries, pool::text, pool_slots, queue::text, priority_weight, operator::text, is_teardown, outlets
    FROM tistate.dag_task WHERE dag_id = 'etl' ORDER BY task_id
$$, $$ VALUES
    ('cleanup', 0, 'default_pool', 1, 'default', 1, NULL::text, true, '[]'::jsonb),
    ('extract', 3, 'io', 2, 'fast', 7, 'PythonOperator', false,
     '[{"type": "Asset", "name": "staged", "uri": "s3://lake/staged"},
       {"type": "AssetAlias", "name": "staged-tables", "uri": null},
       {"type": "AssetNameRef", "name": "orders", "uri": null},
       {"type": "AssetUriRef", "name": null, "uri": "s3://lake/customers"}]'::jsonb)
$$, 'dag_task rows with defaults and normalised outlets');

SELECT results_eq($$
    SELECT a.name::text, a.uri::text, a."group"::text, a.extra::jsonb, act.name IS NOT NULL
    FROM asset AS a LEFT JOIN asset_active AS act ON act.name = a.name AND act.uri = a.uri
    WHERE a.name IN ('raw', 'staged') ORDER BY a.name
$$, $$ VALUES ('raw', 's3://lake/raw', 'asset', '{}'::jsonb, true), ('staged', 's3://lake/staged', 'asset', '{}'::jsonb, true) $$,
   'scheduled and outlet assets are created and active');
SELECT is((SELECT count(*)::integer FROM asset WHERE name IN ('raw-by-name', 's3://lake/by-uri') OR uri = 's3://lake/by-uri'), 0,
          'name and uri refs create no asset');
SELECT results_eq($$SELECT name::text, "group"::text FROM asset_alias WHERE name IN ('incoming', 'staged-tables') ORDER BY name$$,
                  $$VALUES ('incoming', ''), ('staged-tables', '')$$, 'scheduled and outlet aliases are created');

SELECT results_eq($$SELECT a.name::text FROM dag_schedule_asset_reference AS r JOIN asset AS a ON a.id = r.asset_id WHERE r.dag_id = 'etl'$$,
                  $$VALUES ('raw')$$, 'dag_schedule_asset_reference');
SELECT results_eq($$SELECT al.name::text FROM dag_schedule_asset_alias_reference AS r JOIN asset_alias AS al ON al.id = r.alias_id WHERE r.dag_id = 'etl'$$,
                  $$VALUES ('incoming')$$, 'dag_schedule_asset_alias_reference');
SELECT results_eq($$SELECT name::text FROM dag_schedule_asset_name_reference WHERE dag_id = 'etl'$$,
                  $$VALUES ('raw-by-name')$$, 'dag_schedule_asset_name_reference');
SELECT results_eq($$SELECT uri::text FROM dag_schedule_asset_uri_reference WHERE dag_id = 'etl'$$,
                  $$VALUES ('s3://lake/by-uri')$$, 'dag_schedule_asset_uri_reference');
SELECT results_eq($$SELECT r.task_id::text, a.name::text FROM task_outlet_asset_reference AS r JOIN asset AS a ON a.id = r.asset_id WHERE r.dag_id = 'etl'$$,
                  $$VALUES ('extract', 'staged')$$, 'task_outlet_asset_reference holds the Asset outlets only');

-- Only dag_id is required.
SELECT is(tistate.define_dag('{"dag_id": "minimal"}'), '{"dag_id": "minimal", "tasks": [], "assets": [], "aliases": []}'::jsonb,
          'a document with only dag_id');
SELECT results_eq($$SELECT owners::text, is_paused, fail_fast, max_active_runs FROM dag WHERE dag_id = 'minimal'$$,
                  $$VALUES (NULL::text, false, false, NULL::integer)$$, 'defaults of a minimal DAG');
-- Absent, null and empty lists are equivalent.
SELECT lives_ok($$SELECT tistate.define_dag('{"dag_id": "nulls", "schedule": {"assets": null, "aliases": null, "name_refs": null, "uri_refs": null}, "tasks": null}')$$,
                'null schedule lists and tasks are accepted');
SELECT lives_ok($$SELECT tistate.define_dag('{"dag_id": "nulls2", "max_active_runs": 2.0, "tasks": [{"task_id": "t", "outlets": null, "max_tries": 1.0}]}')$$,
                'integral JSON numbers such as 2.0 are accepted as integers');
SELECT results_eq($$SELECT max_active_runs FROM dag WHERE dag_id = 'nulls2'$$, $$VALUES (2)$$, 'max_active_runs 2.0 stored as 2');

------------------------------------------------------------------------------------------------
-- Upsert: references replaced, tasks replaced, pausing kept unless the document says otherwise
------------------------------------------------------------------------------------------------
UPDATE dag SET is_paused = true, is_stale = true WHERE dag_id = 'etl';
SELECT lives_ok($$SELECT tistate.define_dag('{
    "dag_id": "etl", "owners": "platform",
    "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}], "aliases": ["daily-tables"],
                 "name_refs": ["customers"], "uri_refs": ["s3://lake/raw"]},
    "tasks": [{"task_id": "extract", "outlets": [{"type": "Asset", "name": "raw", "uri": "s3://lake/raw"}]},
              {"task_id": "load"}]}')$$, 'redefine etl');
SELECT results_eq($$SELECT owners::text, is_paused, is_stale, fail_fast, max_active_runs FROM dag WHERE dag_id = 'etl'$$,
                  $$VALUES ('platform', true, false, false, NULL::integer)$$,
                  'redefinition: fields replaced, is_paused kept when omitted, is_stale cleared');
SELECT results_eq($$SELECT task_id::text, max_tries, pool::text FROM tistate.dag_task WHERE dag_id = 'etl' ORDER BY task_id$$,
                  $$VALUES ('extract', 0, 'default_pool'), ('load', 0, 'default_pool')$$,
                  'tasks replaced: removed task deleted, changed task reset, new task added');
SELECT results_eq($$SELECT a.name::text FROM dag_schedule_asset_reference AS r JOIN asset AS a ON a.id = r.asset_id WHERE r.dag_id = 'etl'$$,
                  $$VALUES ('orders')$$, 'asset schedule replaced');
SELECT results_eq($$SELECT al.name::text FROM dag_schedule_asset_alias_reference AS r JOIN asset_alias AS al ON al.id = r.alias_id WHERE r.dag_id = 'etl'$$,
                  $$VALUES ('daily-tables')$$, 'alias schedule replaced');
SELECT results_eq($$SELECT name::text FROM dag_schedule_asset_name_reference WHERE dag_id = 'etl'$$,
                  $$VALUES ('customers')$$, 'name refs replaced');
SELECT results_eq($$SELECT uri::text FROM dag_schedule_asset_uri_reference WHERE dag_id = 'etl'$$,
                  $$VALUES ('s3://lake/raw')$$, 'uri refs replaced');
SELECT results_eq($$SELECT r.task_id::text, a.name::text FROM task_outlet_asset_reference AS r JOIN asset AS a ON a.id = r.asset_id WHERE r.dag_id = 'etl'$$,
                  $$VALUES ('extract', 'raw')$$, 'outlet references replaced');
SELECT is((SELECT count(*)::integer FROM asset WHERE name IN ('raw', 'staged')), 2,
          'assets are never deleted by a redefinition');

SELECT lives_ok($$SELECT tistate.define_dag('{"dag_id": "etl", "is_paused": false}')$$, 'unpause explicitly');
SELECT is((SELECT is_paused FROM dag WHERE dag_id = 'etl'), false, 'is_paused replaced when given');
SELECT is((SELECT count(*)::integer FROM dag_schedule_asset_reference WHERE dag_id = 'etl')
        + (SELECT count(*)::integer FROM dag_schedule_asset_alias_reference WHERE dag_id = 'etl')
        + (SELECT count(*)::integer FROM dag_schedule_asset_name_reference WHERE dag_id = 'etl')
        + (SELECT count(*)::integer FROM dag_schedule_asset_uri_reference WHERE dag_id = 'etl')
        + (SELECT count(*)::integer FROM task_outlet_asset_reference WHERE dag_id = 'etl')
        + (SELECT count(*)::integer FROM tistate.dag_task WHERE dag_id = 'etl'), 0,
          'a document without schedule and tasks clears every reference and task');

-- Defining the same document twice changes nothing but last_parsed_time.
SELECT pg_temp.tistate_digest() AS before_same \gset
SELECT lives_ok($$SELECT tistate.define_dag('{"dag_id": "c_asset", "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]}}')$$,
                'redefine c_asset unchanged');
SELECT is(regexp_replace(pg_temp.tistate_digest(), E'\ndag:[^\n]*', ''), regexp_replace(:'before_same', E'\ndag:[^\n]*', ''),
          'an identical redefinition leaves every other table unchanged');

------------------------------------------------------------------------------------------------
-- TS409: an active asset is unique by name and by uri
------------------------------------------------------------------------------------------------
SELECT pg_temp.tistate_digest() AS before_conflict \gset
SELECT is(pg_temp.error_of($$SELECT tistate.define_dag('{"dag_id": "x", "schedule": {"assets": [{"name": "orders", "uri": "s3://other/orders"}]}}')$$)
          - 'message',
          '{"sqlstate": "TS409", "detail": {"reason": "asset_conflict", "name": "orders", "uri": "s3://other/orders"}}'::jsonb,
          'same name as an active asset, other uri: TS409 asset_conflict');
SELECT is(pg_temp.code_field($$SELECT tistate.define_dag('{"dag_id": "x", "tasks": [{"task_id": "t", "outlets": [{"type": "Asset", "name": "orders2", "uri": "s3://lake/orders"}]}]}')$$),
          'TS409 ', 'same uri as an active asset, other name (in an outlet): TS409');
SELECT is(pg_temp.tistate_digest(), :'before_conflict', 'a conflicting document writes nothing');

------------------------------------------------------------------------------------------------
-- TS422 with the offending field
------------------------------------------------------------------------------------------------
SELECT is(pg_temp.code_field(format('SELECT tistate.define_dag(%L::jsonb)', doc)), 'TS422 ' || field, format('TS422 %s: %s', field, doc))
FROM (VALUES
    ('[]', ''),
    ('"etl"', ''),
    ('{}', 'dag_id'),
    ('{"dag_id": null}', 'dag_id'),
    ('{"dag_id": ""}', 'dag_id'),
    ('{"dag_id": 7}', 'dag_id'),
    ('{"dag_id": "x", "bogus": 1}', 'bogus'),
    ('{"dag_id": "x", "owners": ["a"]}', 'owners'),
    ('{"dag_id": "x", "is_paused": "yes"}', 'is_paused'),
    ('{"dag_id": "x", "fail_fast": 1}', 'fail_fast'),
    ('{"dag_id": "x", "max_active_runs": 1.5}', 'max_active_runs'),
    ('{"dag_id": "x", "max_active_runs": "3"}', 'max_active_runs'),
    ('{"dag_id": "x", "schedule": []}', 'schedule'),
    ('{"dag_id": "x", "schedule": {"cron": "@daily"}}', 'schedule.cron'),
    ('{"dag_id": "x", "schedule": {"assets": {}}}', 'schedule.assets'),
    ('{"dag_id": "x", "schedule": {"assets": [{"name": "a"}]}}', 'schedule.assets[0].uri'),
    ('{"dag_id": "x", "schedule": {"assets": [{"name": "a", "uri": "airflow://a"}]}}', 'schedule.assets[0].uri'),
    ('{"dag_id": "x", "schedule": {"assets": [{"name": "a", "uri": "s3://café"}]}}', 'schedule.assets[0].uri'),
    ('{"dag_id": "x", "schedule": {"aliases": [""]}}', 'schedule.aliases[0]'),
    ('{"dag_id": "x", "schedule": {"name_refs": ["ok", 3]}}', 'schedule.name_refs[1]'),
    ('{"dag_id": "x", "schedule": {"uri_refs": ["AIRFLOW://x"]}}', 'schedule.uri_refs[0]'),
    ('{"dag_id": "x", "tasks": {}}', 'tasks'),
    ('{"dag_id": "x", "tasks": [{}]}', 'tasks[0].task_id'),
    ('{"dag_id": "x", "tasks": [{"task_id": " "}]}', 'tasks[0].task_id'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a"}, {"task_id": "a"}]}', 'tasks[1].task_id'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "retries": 1}]}', 'tasks[0].retries'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "max_tries": "2"}]}', 'tasks[0].max_tries'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "is_teardown": "no"}]}', 'tasks[0].is_teardown'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "outlets": [{"type": "Dataset", "name": "a"}]}]}', 'tasks[0].outlets[0].type'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "outlets": [{"type": "Asset", "name": "a"}]}]}', 'tasks[0].outlets[0]'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "outlets": [{"type": "AssetAlias"}]}]}', 'tasks[0].outlets[0].name'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "outlets": [{"type": "AssetUriRef", "name": "n"}]}]}', 'tasks[0].outlets[0].uri'),
    ('{"dag_id": "x", "tasks": [{"task_id": "a", "outlets": [{"name": "a", "uri": "s3://a"}]}]}', 'tasks[0].outlets[0].type')
) AS t (doc, field);

SELECT * FROM finish();
ROLLBACK;
