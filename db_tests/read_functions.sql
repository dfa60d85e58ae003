-- Read functions of 0007: ti_get, ti_list, dag_list, asset_list, asset_events. Shapes, filters,
-- limits, error codes (TS404, TS410, TS422), and that a login that is only a member of
-- tistate_executor (which cannot read any table) can call them.
BEGIN;
\ir _fixtures.sql
SELECT plan(58);

\o /dev/null
-- run1/load: success with direct events for orders and customers and one alias event (new asset).
SELECT pg_temp.succeed(pg_temp.running_ti('run1'),
    '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
      {"type": "Asset", "name": "customers", "uri": "s3://lake/customers"},
      {"type": "AssetAlias", "name": "daily-tables"}]',
    '[{"source_alias_name": "daily-tables", "dest_asset_key": {"name": "table-a", "uri": "s3://lake/a"},
       "extra": {"rows": 7}}]');
-- run2/load: first try retried (its id archived), second try succeeds with one event.
CREATE TEMP TABLE retried AS SELECT pg_temp.running_ti('run2') AS old_id;
SELECT tistate.ti_update_state((SELECT old_id FROM retried),
    '{"state": "up_for_retry", "end_date": "2025-01-01T00:00:30Z"}', p_now => '2025-01-01T00:00:30Z');
SELECT tistate_test.ti_queue(pg_temp.ti('run2'), p_now => '2025-01-01T00:01:00Z');
SELECT tistate.ti_run(pg_temp.ti('run2'), pg_temp.run_payload(), p_now => '2025-01-01T00:01:00Z');
SELECT pg_temp.succeed(pg_temp.ti('run2'), '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]');
CREATE TEMP TABLE doc AS SELECT tistate.ti_get(pg_temp.ti('run1')) AS d;
CREATE TEMP TABLE doc2 AS SELECT tistate.ti_get(pg_temp.ti('run2')) AS d;
\o

------------------------------------------------------------------------------------------------
-- ti_get
------------------------------------------------------------------------------------------------
SELECT is((SELECT array_agg(k ORDER BY k) FROM doc, jsonb_object_keys(d) AS k),
          ARRAY['alias_links', 'asset_events', 'dag_run', 'history', 'log', 'queued_consumers', 'task_instance'],
          'ti_get: document keys');
SELECT is((SELECT d #>> '{task_instance,state}' FROM doc), 'success', 'ti_get: task_instance.state');
SELECT is((SELECT d #>> '{task_instance,id}' FROM doc), pg_temp.ti('run1')::text, 'ti_get: task_instance.id');
SELECT ok((SELECT NOT (d -> 'task_instance') ? 'executor_config' FROM doc), 'ti_get: no bytea executor_config');
SELECT is((SELECT d #>> '{dag_run,run_id}' FROM doc), 'run1', 'ti_get: dag_run.run_id');
SELECT is((SELECT jsonb_array_length(d -> 'asset_events') FROM doc), 3, 'ti_get: three events produced');
SELECT is((SELECT array_agg(e ->> 'name' ORDER BY e ->> 'name') FROM doc, jsonb_array_elements(d -> 'asset_events') AS e),
          ARRAY['customers', 'orders', 'table-a'], 'ti_get: events of orders, customers and the alias target');
SELECT is((SELECT e -> 'aliases' FROM doc, jsonb_array_elements(d -> 'asset_events') AS e WHERE e ->> 'name' = 'table-a'),
          '["daily-tables"]'::jsonb, 'ti_get: the alias event names its alias');
SELECT is((SELECT e -> 'extra' FROM doc, jsonb_array_elements(d -> 'asset_events') AS e WHERE e ->> 'name' = 'table-a'),
          '{"rows": 7}'::jsonb, 'ti_get: the alias event keeps its extra');
SELECT is((SELECT jsonb_array_length(d -> 'alias_links') FROM doc), 1, 'ti_get: one alias link');
SELECT is((SELECT d -> 'alias_links' -> 0 ->> 'alias' FROM doc), 'daily-tables', 'ti_get: alias link alias');
SELECT is((SELECT d -> 'alias_links' -> 0 ->> 'uri' FROM doc), 's3://lake/a', 'ti_get: alias link asset uri');
SELECT is((SELECT array_agg(DISTINCT q ->> 'target_dag_id' ORDER BY q ->> 'target_dag_id')
           FROM doc, jsonb_array_elements(d -> 'queued_consumers') AS q),
          ARRAY['c_alias', 'c_asset', 'c_customers', 'c_name', 'c_uri'],
          'ti_get: queued consumers (not the paused or stale DAGs)');
SELECT is((SELECT array_agg(g ->> 'event' ORDER BY (g ->> 'id')::integer) FROM doc, jsonb_array_elements(d -> 'log') AS g),
          ARRAY['running', 'success'], 'ti_get: the audit rows');
SELECT is((SELECT d -> 'log' -> 0 ->> 'event' FROM doc), 'success', 'ti_get: log is newest first');
SELECT is((SELECT jsonb_array_length(d -> 'history') FROM doc), 0, 'ti_get: no archived try');
SELECT is(jsonb_array_length(tistate.ti_get(pg_temp.ti('run1'), p_log_limit => 1) -> 'log'), 1,
          'ti_get: p_log_limit bounds the log rows');
SELECT is(jsonb_array_length(tistate.ti_get(pg_temp.ti('run1'), p_log_limit => 0) -> 'log'), 0,
          'ti_get: p_log_limit 0 gives no log rows');

-- A retried task instance: the new id shows the archived try and the events of every try.
SELECT is((SELECT jsonb_array_length(d -> 'history') FROM doc2), 1, 'ti_get after retry: one archived try');
SELECT is((SELECT d -> 'history' -> 0 ->> 'task_instance_id' FROM doc2), (SELECT old_id::text FROM retried),
          'ti_get after retry: the archived id');
SELECT is((SELECT d -> 'history' -> 0 ->> 'try_number' FROM doc2), '1', 'ti_get after retry: archived try number');
SELECT is((SELECT jsonb_array_length(d -> 'asset_events') FROM doc2), 1, 'ti_get after retry: the second try''s event');
SELECT is((SELECT d #>> '{task_instance,try_number}' FROM doc2), '2', 'ti_get after retry: try_number 2');

SELECT is(pg_temp.error_of(format('SELECT tistate.ti_get(%L)', (SELECT old_id FROM retried))) ->> 'sqlstate', 'TS410',
          'ti_get: TS410 for an id archived by a retry');
SELECT is(pg_temp.error_of($$SELECT tistate.ti_get('00000000-0000-7000-8000-000000000000')$$) ->> 'sqlstate', 'TS404',
          'ti_get: TS404 for an unknown id');
SELECT is(pg_temp.code_field(format('SELECT tistate.ti_get(%L, p_log_limit => -1)', pg_temp.ti('run1'))),
          'TS422 log_limit', 'ti_get: TS422 for a negative log limit');

------------------------------------------------------------------------------------------------
-- ti_list
------------------------------------------------------------------------------------------------
SELECT is((SELECT count(*)::integer FROM tistate.ti_list(p_dag_id => 'producer')), 4, 'ti_list: every TI of the DAG');
SELECT results_eq($$SELECT run_id, task_id, state FROM tistate.ti_list(p_dag_id => 'producer')$$,
                  $$VALUES ('run1', 'load', 'success'), ('run1', 'other', 'queued'),
                           ('run2', 'load', 'success'), ('run2', 'other', 'queued')$$,
                  'ti_list: ordered by run_id, task_id, with states');
SELECT is((SELECT count(*)::integer FROM tistate.ti_list(p_state => 'success')), 2, 'ti_list: filter by state');
SELECT is((SELECT count(*)::integer FROM tistate.ti_list(p_run_id => 'run2', p_state => 'queued')), 1,
          'ti_list: filter by run and state');
SELECT is((SELECT try_number FROM tistate.ti_list(p_run_id => 'run2', p_state => 'success')), 2, 'ti_list: try_number');
SELECT is((SELECT count(*)::integer FROM tistate.ti_list(p_limit => 1)), 1, 'ti_list: limit');
SELECT is((SELECT count(*)::integer FROM tistate.ti_list(p_state => 'none')), 0, 'ti_list: ''none'' selects TIs without state');
\o /dev/null
SELECT tistate.ti_mark(pg_temp.ti('run1', 'other'), 'none', 'test');
\o
SELECT is((SELECT task_id FROM tistate.ti_list(p_state => 'none')), 'other', 'ti_list: ''none'' finds a TI marked none');
SELECT is(pg_temp.code_field('SELECT * FROM tistate.ti_list(p_limit => 10001)'), 'TS422 limit', 'ti_list: TS422 above 10000');

------------------------------------------------------------------------------------------------
-- dag_list
------------------------------------------------------------------------------------------------
SELECT is((SELECT array_agg(dag_id ORDER BY dag_id) FROM tistate.dag_list()),
          ARRAY['c_alias', 'c_asset', 'c_customers', 'c_name', 'c_paused', 'c_stale', 'c_uri', 'producer'],
          'dag_list: every DAG');
SELECT is((SELECT ROW(task_count, run_count, owners)::text FROM tistate.dag_list() WHERE dag_id = 'producer'),
          '(2,2,data-team)', 'dag_list: task and run counts, owners');
SELECT is((SELECT jsonb_array_length(outlets) FROM tistate.dag_list() WHERE dag_id = 'producer'), 3,
          'dag_list: the producer''s outlets');
SELECT is((SELECT outlets -> 2 FROM tistate.dag_list() WHERE dag_id = 'producer'),
          '{"task_id": "load", "type": "AssetAlias", "name": "daily-tables", "uri": null}'::jsonb,
          'dag_list: an outlet names its task');
SELECT is((SELECT schedule FROM tistate.dag_list() WHERE dag_id = 'c_paused'),
          '{"assets": [{"name": "orders", "uri": "s3://lake/orders"}], "aliases": ["daily-tables"], "name_refs": [], "uri_refs": []}'::jsonb,
          'dag_list: schedule document');
SELECT is((SELECT ROW(is_paused, is_stale)::text FROM tistate.dag_list() WHERE dag_id = 'c_stale'), '(f,t)',
          'dag_list: paused and stale flags');

------------------------------------------------------------------------------------------------
-- asset_list
------------------------------------------------------------------------------------------------
SELECT is((SELECT array_agg(name ORDER BY name) FROM tistate.asset_list()), ARRAY['customers', 'orders', 'table-a'],
          'asset_list: every asset');
SELECT is((SELECT ROW(active, event_count)::text FROM tistate.asset_list() WHERE name = 'orders'), '(t,2)',
          'asset_list: orders is active with two events');
SELECT is((SELECT consumers FROM tistate.asset_list() WHERE name = 'orders'),
          ARRAY['c_asset', 'c_name', 'c_paused', 'c_stale', 'c_uri'],
          'asset_list: consumers by asset, name and uri');
SELECT is((SELECT consumers FROM tistate.asset_list() WHERE name = 'table-a'), ARRAY['c_alias', 'c_paused', 'c_stale'],
          'asset_list: consumers through the alias linked to the asset');
SELECT is((SELECT aliases FROM tistate.asset_list() WHERE name = 'table-a'), ARRAY['daily-tables'],
          'asset_list: alias linked by the alias event');
SELECT is((SELECT queued_for FROM tistate.asset_list() WHERE name = 'table-a'), ARRAY['c_alias'],
          'asset_list: the consumer queued for the alias target');

------------------------------------------------------------------------------------------------
-- asset_events
------------------------------------------------------------------------------------------------
SELECT is((SELECT count(*)::integer FROM tistate.asset_events()), 4, 'asset_events: all events');
SELECT is((SELECT array_agg(source_run_id ORDER BY id DESC) FROM tistate.asset_events(p_name => 'orders')),
          ARRAY['run2', 'run1'], 'asset_events: by asset name');
SELECT is((SELECT count(*)::integer FROM tistate.asset_events(p_ti_id => pg_temp.ti('run1'))), 3,
          'asset_events: by producing task instance');
SELECT is((SELECT count(*)::integer FROM tistate.asset_events(p_limit => 2)), 2, 'asset_events: limit');
SELECT is(pg_temp.error_of($$SELECT * FROM tistate.asset_events(p_name => 'nope')$$) ->> 'sqlstate', 'TS404',
          'asset_events: TS404 for an unknown asset');

------------------------------------------------------------------------------------------------
-- Privileges: a login that is only a member of tistate_executor reads through the functions.
------------------------------------------------------------------------------------------------
SELECT 'tistate_test_reader_' || pg_backend_pid() AS reader \gset
CREATE ROLE :"reader" LOGIN IN ROLE tistate_operator;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pg_temp TO :"reader";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA pg_temp TO :"reader";
CREATE TEMP TABLE as_reader (n integer);
GRANT ALL ON as_reader TO :"reader";
SET ROLE :"reader";
INSERT INTO as_reader
SELECT jsonb_array_length(tistate.ti_get(ti.id) -> 'asset_events')
     + (SELECT count(*) FROM tistate.dag_list())::integer
     + (SELECT count(*) FROM tistate.asset_list())::integer
     + (SELECT count(*) FROM tistate.asset_events())::integer
FROM tistate.ti_list(p_run_id => 'run1', p_state => 'success') AS ti;
RESET ROLE;
SELECT is((SELECT n FROM as_reader), 3 + 8 + 3 + 4, 'an operator login calls every read function');

CREATE TEMP TABLE read_functions (sig regprocedure) ON COMMIT DROP;
INSERT INTO read_functions VALUES
    ('tistate.ti_get(uuid, integer)'), ('tistate.ti_list(text, text, text, integer)'), ('tistate.dag_list()'),
    ('tistate.asset_list()'), ('tistate.asset_events(text, text, uuid, integer)');
SELECT ok(p.prosecdef AND 'search_path=' || tistate._function_search_path() = ANY (p.proconfig) AND p.provolatile = 's'
          AND obj_description(f.sig, 'pg_proc') IS NOT NULL
          AND has_function_privilege('tistate_operator', f.sig, 'EXECUTE')
          AND NOT has_function_privilege('tistate_executor', f.sig, 'EXECUTE')
          AND NOT has_function_privilege('public', f.sig, 'EXECUTE'),
          format('%s: STABLE SECURITY DEFINER, pinned search_path, commented, operators only', f.sig))
FROM read_functions AS f JOIN pg_proc AS p ON p.oid = f.sig ORDER BY f.sig::text;

SELECT * FROM finish();
ROLLBACK;
