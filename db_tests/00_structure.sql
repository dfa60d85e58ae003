-- Structure of schema tistate: tables, keys and their ON DELETE actions, the indexes the functions
-- rely on, the column types of tistate's improvements, and the public functions' signatures,
-- return types and security settings (SECURITY DEFINER with a pinned search_path).
BEGIN;
SET LOCAL search_path = public;  -- names as written: tistate-qualified
SELECT plan(126);

SELECT has_schema('tistate');

SELECT tables_are('tistate', ARRAY[
    'schema_migrations', 'dag', 'dag_task', 'dag_run', 'trigger', 'task_instance', 'task_instance_history',
    'task_reschedule', 'log', 'asset', 'asset_active', 'asset_alias', 'asset_alias_asset', 'asset_event',
    'asset_alias_asset_event', 'asset_dag_run_queue', 'dag_schedule_asset_reference',
    'dag_schedule_asset_alias_reference', 'dag_schedule_asset_name_reference',
    'dag_schedule_asset_uri_reference', 'task_outlet_asset_reference', 'asset_event_outbox',
    'installation', 'airflow_revision', 'airflow_column', 'airflow_grant', 'asset_event_producer']);

------------------------------------------------------------------------------------------------
-- Public functions of 0003-0004: signature, return type, SECURITY DEFINER, pinned search_path
------------------------------------------------------------------------------------------------
SELECT has_function('tistate', 'schema_version', ARRAY[]::text[]);
SELECT has_function('tistate', 'define_dag', ARRAY['jsonb']);
SELECT has_function('tistate', 'create_dag_run',
                    ARRAY['text', 'text', 'timestamp with time zone', 'jsonb', 'timestamp with time zone', 'text']);
SELECT has_function('tistate', 'ti_run', ARRAY['uuid', 'jsonb', 'timestamp with time zone', 'interval']);
SELECT has_function('tistate', 'ti_update_state', ARRAY['uuid', 'jsonb', 'timestamp with time zone', 'interval']);

SELECT function_returns('tistate', 'schema_version', ARRAY[]::text[], 'integer');
SELECT function_returns('tistate', 'define_dag', ARRAY['jsonb'], 'jsonb');
SELECT function_returns('tistate', 'ti_run', ARRAY['uuid', 'jsonb', 'timestamp with time zone', 'interval'], 'jsonb');
SELECT function_returns('tistate', 'ti_update_state', ARRAY['uuid', 'jsonb', 'timestamp with time zone', 'interval'],
                        'tistate.state_update_result');
SELECT is(pg_get_function_result('tistate.create_dag_run(text, text, timestamptz, jsonb, timestamptz, text)'::regprocedure),
          'TABLE(task_id text, map_index integer, ti_id uuid)', 'create_dag_run returns TABLE(task_id, map_index, ti_id)');

-- Parameter names are API (callers use named notation).
SELECT is(pg_get_function_identity_arguments('tistate.ti_update_state(uuid, jsonb, timestamptz, interval)'::regprocedure),
          'p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval',
          'ti_update_state parameter names');
SELECT is(pg_get_function_identity_arguments('tistate.ti_run(uuid, jsonb, timestamptz, interval)'::regprocedure),
          'p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval',
          'ti_run parameter names');
SELECT is(pg_get_function_identity_arguments('tistate.create_dag_run(text, text, timestamptz, jsonb, timestamptz, text)'::regprocedure),
          'p_dag_id text, p_run_id text, p_logical_date timestamp with time zone, p_conf jsonb, p_now timestamp with time zone, p_partition_key text',
          'create_dag_run parameter names');
SELECT is(pg_get_function_identity_arguments('tistate.define_dag(jsonb)'::regprocedure), 'p_dag jsonb',
          'define_dag parameter names');

CREATE TEMP TABLE public_functions (sig regprocedure) ON COMMIT DROP;
INSERT INTO public_functions VALUES
    ('tistate.schema_version()'),
    ('tistate.define_dag(jsonb)'),
    ('tistate.create_dag_run(text, text, timestamptz, jsonb, timestamptz, text)'),
    ('tistate.ti_run(uuid, jsonb, timestamptz, interval)'),
    ('tistate.ti_update_state(uuid, jsonb, timestamptz, interval)');

SELECT is(p.prosecdef, true, format('%s is SECURITY DEFINER', f.sig))
FROM public_functions AS f JOIN pg_proc AS p ON p.oid = f.sig ORDER BY f.sig::text;
SELECT ok('search_path=pg_catalog, tistate, pg_temp' = ANY (p.proconfig),
          format('%s pins search_path', f.sig))
FROM public_functions AS f JOIN pg_proc AS p ON p.oid = f.sig ORDER BY f.sig::text;
SELECT is(p.provolatile, CASE WHEN f.sig::text LIKE 'tistate.schema_version%' THEN 's' ELSE 'v' END::"char",
          format('%s volatility', f.sig))
FROM public_functions AS f JOIN pg_proc AS p ON p.oid = f.sig ORDER BY f.sig::text;
-- Every transition bounds its lock waits even when called outside ti_update_state's own logic.
SELECT ok(p.proconfig @> ARRAY['lock_timeout=2s'], format('%s sets lock_timeout', f.sig))
FROM public_functions AS f JOIN pg_proc AS p ON p.oid = f.sig
WHERE f.sig::text NOT LIKE 'tistate.schema_version%' ORDER BY f.sig::text;
SELECT ok(obj_description(f.sig, 'pg_proc') IS NOT NULL, format('%s has a COMMENT', f.sig))
FROM public_functions AS f ORDER BY f.sig::text;

-- Whatever other migrations add: every SECURITY DEFINER function of the schema pins search_path.
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'tistate'::regnamespace AND p.prosecdef
      AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, tistate, pg_temp']
$$, 'every SECURITY DEFINER function in tistate pins search_path = pg_catalog, tistate, pg_temp');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'tistate'::regnamespace AND p.proname LIKE '\_%' AND p.prosecdef
$$, 'no private (_) function is SECURITY DEFINER');

SELECT has_type('tistate', 'state_update_result', 'type tistate.state_update_result exists');
SELECT results_eq($$
    SELECT a.attname::text COLLATE "default", format_type(a.atttypid, a.atttypmod)
    FROM pg_attribute AS a WHERE a.attrelid = 'tistate.state_update_result'::regclass AND a.attnum > 0
      AND a.attname IN ('ti_id', 'previous_state', 'new_state', 'applied', 'new_ti_id', 'asset_event_ids', 'queued_dag_ids')
    ORDER BY a.attnum
$$, $$ VALUES ('ti_id', 'uuid'), ('previous_state', 'text'), ('new_state', 'text'), ('applied', 'boolean'),
              ('new_ti_id', 'uuid'), ('asset_event_ids', 'integer[]'), ('queued_dag_ids', 'text[]') $$,
   'state_update_result has the columns of DESIGN.md section 3');

------------------------------------------------------------------------------------------------
-- Primary keys
------------------------------------------------------------------------------------------------
SELECT col_is_pk('tistate', 'schema_migrations', 'version', 'schema_migrations pk');
SELECT col_is_pk('tistate', 'dag', 'dag_id', 'dag pk');
SELECT col_is_pk('tistate', 'dag_task', ARRAY['dag_id', 'task_id'], 'dag_task pk');
SELECT col_is_pk('tistate', 'dag_run', 'id', 'dag_run pk');
SELECT col_is_pk('tistate', 'trigger', 'id', 'trigger pk');
SELECT col_is_pk('tistate', 'task_instance', 'id', 'task_instance pk');
SELECT col_is_pk('tistate', 'task_instance_history', 'task_instance_id', 'task_instance_history pk');
SELECT col_is_pk('tistate', 'task_reschedule', 'id', 'task_reschedule pk');
SELECT col_is_pk('tistate', 'log', 'id', 'log pk');
SELECT col_is_pk('tistate', 'asset', 'id', 'asset pk');
SELECT col_is_pk('tistate', 'asset_active', ARRAY['name', 'uri'], 'asset_active pk');
SELECT col_is_pk('tistate', 'asset_alias', 'id', 'asset_alias pk');
SELECT col_is_pk('tistate', 'asset_alias_asset', ARRAY['alias_id', 'asset_id'], 'asset_alias_asset pk');
SELECT col_is_pk('tistate', 'asset_event', 'id', 'asset_event pk');
SELECT col_is_pk('tistate', 'asset_alias_asset_event', ARRAY['alias_id', 'event_id'], 'asset_alias_asset_event pk');
SELECT col_is_pk('tistate', 'asset_dag_run_queue', ARRAY['asset_id', 'target_dag_id'], 'asset_dag_run_queue pk');
SELECT col_is_pk('tistate', 'dag_schedule_asset_reference', ARRAY['asset_id', 'dag_id'], 'dsar pk');
SELECT col_is_pk('tistate', 'dag_schedule_asset_alias_reference', ARRAY['alias_id', 'dag_id'], 'dsaar pk');
SELECT col_is_pk('tistate', 'dag_schedule_asset_name_reference', ARRAY['name', 'dag_id'], 'dsanr pk');
SELECT col_is_pk('tistate', 'dag_schedule_asset_uri_reference', ARRAY['uri', 'dag_id'], 'dsaur pk');
SELECT col_is_pk('tistate', 'task_outlet_asset_reference', ARRAY['asset_id', 'dag_id', 'task_id'], 'toar pk');

------------------------------------------------------------------------------------------------
-- Unique keys and indexes
------------------------------------------------------------------------------------------------
SELECT col_is_unique('tistate', 'dag_run', ARRAY['dag_id', 'run_id'], 'dag_run unique (dag_id, run_id)');
SELECT col_is_unique('tistate', 'dag_run', ARRAY['dag_id', 'logical_date'], 'dag_run unique (dag_id, logical_date)');
SELECT col_is_unique('tistate', 'task_instance', ARRAY['dag_id', 'task_id', 'run_id', 'map_index'],
                     'task_instance unique (dag_id, task_id, run_id, map_index)');
SELECT col_is_unique('tistate', 'task_instance_history', ARRAY['dag_id', 'task_id', 'run_id', 'map_index', 'try_number'],
                     'task_instance_history unique per try');
SELECT has_index('tistate', 'asset', 'idx_asset_name_uri_unique', ARRAY['name', 'uri']);
SELECT index_is_unique('tistate', 'asset', 'idx_asset_name_uri_unique');
SELECT has_index('tistate', 'asset_active', 'idx_asset_active_name_unique', ARRAY['name']);
SELECT index_is_unique('tistate', 'asset_active', 'idx_asset_active_name_unique');
SELECT has_index('tistate', 'asset_active', 'idx_asset_active_uri_unique', ARRAY['uri']);
SELECT index_is_unique('tistate', 'asset_active', 'idx_asset_active_uri_unique');
SELECT has_index('tistate', 'asset_alias', 'idx_asset_alias_name_unique', ARRAY['name']);
SELECT index_is_unique('tistate', 'asset_alias', 'idx_asset_alias_name_unique');
-- Indexes the success path and the FK cascades use.
SELECT has_index('tistate', 'asset_event_producer', 'asset_event_producer_ti', ARRAY['ti_id', 'try_number']);
SELECT has_index('tistate', 'asset_event', 'idx_asset_id_timestamp', ARRAY['asset_id', '"timestamp"']);
SELECT has_index('tistate', 'asset_alias_asset_event', 'idx_asset_alias_asset_event_event_id', ARRAY['event_id']);
SELECT has_index('tistate', 'asset_alias_asset', 'idx_asset_alias_asset_asset_id', ARRAY['asset_id']);
SELECT has_index('tistate', 'asset_dag_run_queue', 'idx_asset_dag_run_queue_target_dag_id', ARRAY['target_dag_id']);
SELECT has_index('tistate', 'dag_schedule_asset_reference', 'idx_dag_schedule_asset_reference_dag_id', ARRAY['dag_id']);
SELECT has_index('tistate', 'dag_schedule_asset_alias_reference', 'idx_dag_schedule_asset_alias_reference_dag_id', ARRAY['dag_id']);
SELECT has_index('tistate', 'task_instance', 'ti_dag_run', ARRAY['dag_id', 'run_id']);
SELECT has_index('tistate', 'task_reschedule', 'idx_task_reschedule_ti_id_id_desc', ARRAY['ti_id', 'id'],
                 'task_reschedule index (ti_id, id DESC)');
SELECT has_index('tistate', 'log', 'idx_log_task_instance', ARRAY['dag_id', 'task_id', 'run_id', 'map_index', 'try_number']);

------------------------------------------------------------------------------------------------
-- Foreign keys and their ON DELETE / ON UPDATE actions
------------------------------------------------------------------------------------------------
SELECT fk_ok('tistate', 'dag_task', 'dag_id', 'tistate', 'dag', 'dag_id');
SELECT fk_ok('tistate', 'task_instance', ARRAY['dag_id', 'run_id'], 'tistate', 'dag_run', ARRAY['dag_id', 'run_id']);
SELECT fk_ok('tistate', 'task_instance', 'trigger_id', 'tistate', 'trigger', 'id');
SELECT fk_ok('tistate', 'task_instance_history', ARRAY['dag_id', 'task_id', 'run_id', 'map_index'],
             'tistate', 'task_instance', ARRAY['dag_id', 'task_id', 'run_id', 'map_index']);
SELECT fk_ok('tistate', 'task_reschedule', 'ti_id', 'tistate', 'task_instance', 'id');
SELECT fk_ok('tistate', 'asset_active', ARRAY['name', 'uri'], 'tistate', 'asset', ARRAY['name', 'uri']);
SELECT fk_ok('tistate', 'asset_alias_asset', 'alias_id', 'tistate', 'asset_alias', 'id');
SELECT fk_ok('tistate', 'asset_alias_asset', 'asset_id', 'tistate', 'asset', 'id');
SELECT fk_ok('tistate', 'asset_alias_asset_event', 'alias_id', 'tistate', 'asset_alias', 'id');
SELECT fk_ok('tistate', 'asset_alias_asset_event', 'event_id', 'tistate', 'asset_event', 'id');
SELECT fk_ok('tistate', 'asset_dag_run_queue', 'asset_id', 'tistate', 'asset', 'id');
SELECT fk_ok('tistate', 'asset_dag_run_queue', 'target_dag_id', 'tistate', 'dag', 'dag_id');
SELECT fk_ok('tistate', 'dag_schedule_asset_reference', 'asset_id', 'tistate', 'asset', 'id');
SELECT fk_ok('tistate', 'dag_schedule_asset_reference', 'dag_id', 'tistate', 'dag', 'dag_id');
SELECT fk_ok('tistate', 'dag_schedule_asset_alias_reference', 'alias_id', 'tistate', 'asset_alias', 'id');
SELECT fk_ok('tistate', 'dag_schedule_asset_alias_reference', 'dag_id', 'tistate', 'dag', 'dag_id');
SELECT fk_ok('tistate', 'dag_schedule_asset_name_reference', 'dag_id', 'tistate', 'dag', 'dag_id');
SELECT fk_ok('tistate', 'dag_schedule_asset_uri_reference', 'dag_id', 'tistate', 'dag', 'dag_id');
SELECT fk_ok('tistate', 'task_outlet_asset_reference', 'asset_id', 'tistate', 'asset', 'id');
SELECT fk_ok('tistate', 'task_outlet_asset_reference', 'dag_id', 'tistate', 'dag', 'dag_id');

-- All foreign keys of the 0001 tables, with their actions (c = CASCADE, a = NO ACTION). asset_event
-- has no FK to asset by design (events outlive deleted assets).
SELECT results_eq($$
    SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, c.confdeltype::text, c.confupdtype::text
    FROM pg_constraint AS c
    WHERE c.contype = 'f' AND c.connamespace = 'tistate'::regnamespace
      AND c.conrelid::regclass::text IN ('tistate.dag_task', 'tistate.task_instance', 'tistate.task_instance_history',
          'tistate.task_reschedule', 'tistate.asset_active', 'tistate.asset_alias_asset', 'tistate.asset_event',
          'tistate.asset_alias_asset_event', 'tistate.asset_dag_run_queue', 'tistate.dag_schedule_asset_reference',
          'tistate.dag_schedule_asset_alias_reference', 'tistate.dag_schedule_asset_name_reference',
          'tistate.dag_schedule_asset_uri_reference', 'tistate.task_outlet_asset_reference', 'tistate.dag',
          'tistate.dag_run', 'tistate.log', 'tistate.asset', 'tistate.asset_alias', 'tistate.trigger')
    ORDER BY 1, 2, 3, 4
$$, $$ VALUES
    ('tistate.asset_active', 'tistate.asset', 'c', 'a'),
    ('tistate.asset_alias_asset', 'tistate.asset', 'c', 'a'),
    ('tistate.asset_alias_asset', 'tistate.asset_alias', 'c', 'a'),
    ('tistate.asset_alias_asset_event', 'tistate.asset_alias', 'c', 'a'),
    ('tistate.asset_alias_asset_event', 'tistate.asset_event', 'c', 'a'),
    ('tistate.asset_dag_run_queue', 'tistate.asset', 'c', 'a'),
    ('tistate.asset_dag_run_queue', 'tistate.dag', 'c', 'a'),
    ('tistate.dag_schedule_asset_alias_reference', 'tistate.asset_alias', 'c', 'a'),
    ('tistate.dag_schedule_asset_alias_reference', 'tistate.dag', 'c', 'a'),
    ('tistate.dag_schedule_asset_name_reference', 'tistate.dag', 'c', 'a'),
    ('tistate.dag_schedule_asset_reference', 'tistate.asset', 'c', 'a'),
    ('tistate.dag_schedule_asset_reference', 'tistate.dag', 'c', 'a'),
    ('tistate.dag_schedule_asset_uri_reference', 'tistate.dag', 'c', 'a'),
    ('tistate.dag_task', 'tistate.dag', 'c', 'a'),
    ('tistate.task_instance', 'tistate.dag_run', 'c', 'a'),
    ('tistate.task_instance', 'tistate.trigger', 'c', 'a'),
    ('tistate.task_instance_history', 'tistate.task_instance', 'c', 'c'),
    ('tistate.task_outlet_asset_reference', 'tistate.asset', 'c', 'a'),
    ('tistate.task_outlet_asset_reference', 'tistate.dag', 'c', 'a'),
    ('tistate.task_reschedule', 'tistate.task_instance', 'c', 'a')
$$, 'foreign keys of the 0001 tables with their ON DELETE and ON UPDATE actions');

------------------------------------------------------------------------------------------------
-- Column types the functions depend on
------------------------------------------------------------------------------------------------
SELECT col_type_is('tistate', 'asset_event', 'extra', 'json', 'asset_event.extra is json, as Airflow''s');
SELECT col_not_null('tistate', 'asset_event', 'extra', 'asset_event.extra is NOT NULL');
SELECT hasnt_column('tistate', 'asset_event', 'ti_id', 'producer attribution is not a column of asset_event');
SELECT col_type_is('tistate', 'asset_event_producer', 'try_number', 'integer', 'asset_event_producer.try_number is integer');
SELECT col_type_is('tistate', 'asset_event', 'partition_key', 'character varying(250)', 'asset_event.partition_key is character varying(250)');
SELECT col_type_is('tistate', 'asset_event', 'timestamp', 'timestamp with time zone', 'asset_event.timestamp is timestamp with time zone');
SELECT col_type_is('tistate', 'asset', 'extra', 'json', 'asset.extra is json, as Airflow''s');
SELECT col_type_is('tistate', 'dag_run', 'conf', 'jsonb', 'dag_run.conf is jsonb');
SELECT col_type_is('tistate', 'task_instance', 'id', 'uuid', 'task_instance.id is uuid');
SELECT col_type_is('tistate', 'task_instance', 'next_kwargs', 'jsonb', 'task_instance.next_kwargs is jsonb');
SELECT col_type_is('tistate', 'task_instance', 'duration', 'double precision', 'task_instance.duration is double precision');
SELECT col_type_is('tistate', 'task_instance', 'end_date', 'timestamp with time zone', 'task_instance.end_date is timestamp with time zone');
SELECT col_type_is('tistate', 'task_instance', 'state', 'character varying(20)', 'task_instance.state is character varying(20)');
SELECT col_type_is('tistate', 'log', 'extra', 'text', 'log.extra is text');
SELECT col_hasnt_default('tistate', 'asset_event', 'timestamp', 'asset_event.timestamp has no default, as Airflow''s');
SELECT col_hasnt_default('tistate', 'asset_dag_run_queue', 'created_at', 'asset_dag_run_queue.created_at has no default, as Airflow''s');
SELECT col_hasnt_default('tistate', 'log', 'dttm', 'log.dttm has no default, as Airflow''s');
-- The standalone copies are exactly the columns recorded as Airflow's (tistate.airflow_column).
SELECT set_eq($$
    SELECT c.relname::name, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef
    FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = 'tistate' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
      AND c.relname IN (SELECT table_name FROM tistate.airflow_column)
$$, $$SELECT table_name, column_name, data_type, not_null, has_default FROM tistate.airflow_column$$,
'the standalone tables have exactly the Airflow columns of tistate.airflow_column');

SELECT * FROM finish();
ROLLBACK;
