-- Privileges: a LOGIN role that is only a member of tistate_executor (the worker role) runs the
-- worker functions, not the operator functions, and cannot read or write any table, sequence or
-- private function of schema tistate; tistate_operator adds the operator functions; PUBLIC and roles
-- outside both cannot execute anything in the schema. (The database clock for workers needs a real
-- login, not SET ROLE: tests/test_security.py.)
-- Roles are cluster-wide: the roles get names unique to this backend and vanish with the ROLLBACK.
BEGIN;
\ir _fixtures.sql

SELECT plan(42
    + 5 * (SELECT count(*)::integer FROM pg_class AS c
           WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p'))
    + (SELECT count(*)::integer FROM pg_class AS c
       WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind = 'S'));

SELECT 'tistate_test_login_' || pg_backend_pid() AS login_role,
       'tistate_test_outsider_' || pg_backend_pid() AS outsider_role \gset
CREATE ROLE :"login_role" LOGIN IN ROLE tistate_executor;
CREATE ROLE :"outsider_role" LOGIN;
-- pgTAP keeps its results in temp tables of this session; the test roles must be able to write them.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pg_temp TO :"login_role", :"outsider_role";
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA pg_temp TO :"login_role", :"outsider_role";

------------------------------------------------------------------------------------------------
-- Catalog checks (as the superuser)
------------------------------------------------------------------------------------------------
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'tistate'::regnamespace AND has_function_privilege('public', p.oid, 'EXECUTE')
$$, 'PUBLIC has EXECUTE on no function in schema tistate');
SELECT is_empty(format($$
    SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'tistate'::regnamespace AND has_function_privilege(%L, p.oid, 'EXECUTE')
$$, :'outsider_role'), 'a role outside tistate_executor can execute no function in schema tistate');
SELECT ok(NOT has_schema_privilege(:'outsider_role', 'tistate', 'USAGE'), 'a role outside tistate_executor has no USAGE on tistate');
SELECT is_empty(format($$
    SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'tistate'::regnamespace AND p.proname LIKE '\_%%'
      AND has_function_privilege(%L, p.oid, 'EXECUTE')
$$, :'login_role'), 'the executor login cannot execute any private (_) function');
SELECT ok(has_function_privilege('tistate_executor', f, 'EXECUTE'), format('tistate_executor may execute %s', f))
FROM unnest(ARRAY[
    'tistate.schema_version()',
    'tistate.ti_run(uuid, jsonb, timestamptz, interval)',
    'tistate.ti_update_state(uuid, jsonb, timestamptz, interval)',
    'tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval)',
    'tistate.ti_heartbeat_batch(uuid[], text[], integer[], timestamptz)',
    'tistate.ti_skip_downstream(uuid, jsonb, timestamptz)']::regprocedure[]) AS f;
SELECT ok(NOT has_function_privilege('tistate_executor', f, 'EXECUTE') AND has_function_privilege('tistate_operator', f, 'EXECUTE'),
          format('only an operator may execute %s', f))
FROM unnest(ARRAY[
    'tistate.define_dag(jsonb)',
    'tistate.create_dag_run(text, text, timestamptz, jsonb, timestamptz, text)',
    'tistate.ti_queue(uuid, timestamptz, interval)',
    'tistate.ti_mark(uuid, text, text, timestamptz, interval)',
    'tistate.emit_asset_event(text, text, jsonb, text, timestamptz)',
    'tistate.ti_get(uuid, integer)']::regprocedure[]) AS f;
SELECT ok(pg_has_role('tistate_operator', 'tistate_executor', 'USAGE'), 'an operator has every right of a worker');
SELECT is(rolcanlogin, false, 'tistate_operator is a NOLOGIN group role') FROM pg_roles WHERE rolname = 'tistate_operator';
SELECT ok(NOT has_schema_privilege(:'login_role', 'tistate', 'CREATE'), 'the executor login cannot create objects in tistate');
SELECT is_empty(format($$
    SELECT c.oid::regclass::text FROM pg_class AS c
    WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
      AND (has_table_privilege(%1$L, c.oid, 'SELECT') OR has_table_privilege(%1$L, c.oid, 'INSERT')
           OR has_table_privilege(%1$L, c.oid, 'UPDATE') OR has_table_privilege(%1$L, c.oid, 'DELETE')
           OR has_table_privilege(%1$L, c.oid, 'TRUNCATE'))
$$, :'login_role'), 'the catalog grants the executor login no table privilege in tistate');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc AS p
    WHERE p.pronamespace = 'tistate'::regnamespace AND p.prosecdef
      AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=' || tistate._function_search_path()]
$$, 'every SECURITY DEFINER function pins search_path (proconfig)');
SELECT is(rolcanlogin, false, 'tistate_executor is a NOLOGIN group role') FROM pg_roles WHERE rolname = 'tistate_executor';

------------------------------------------------------------------------------------------------
-- As the executor login: the whole API works
------------------------------------------------------------------------------------------------
-- The world, made by the admin (in Airflow mode: what the DAG processor and scheduler write).
\o /dev/null
SELECT tistate_test.define_dag('{"dag_id": "priv_dag", "owners": "ops", "tasks": [{"task_id": "t", "outlets": [{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]}]}');
\o
SELECT ti_id AS priv_ti FROM tistate_test.create_dag_run(p_dag_id => 'priv_dag', p_run_id => 'priv_run',
                                                         p_now => '2025-01-01T00:00:00Z') \gset
SELECT tistate_test.is_airflow() AS is_airflow \gset
SET ROLE :"login_role";
SELECT is(current_user::text, :'login_role', 'running as the executor login');
SELECT cmp_ok(tistate.schema_version(), '>=', 4, 'schema_version() is callable');
SELECT throws_ok($$SELECT tistate.define_dag('{"dag_id": "priv_dag2"}')$$, '42501', NULL,
                 'a worker cannot define DAGs (an operator function)');
SELECT isnt(:'priv_ti'::uuid, NULL::uuid, 'the run has its task instance');
SELECT is(tistate.ti_run(p_ti_id => :'priv_ti', p_payload => '{"state": "running", "hostname": "h", "unixname": "u", "pid": 1, "start_date": "2025-01-01T00:00:00Z"}',
                         p_now => '2025-01-01T00:00:00Z') -> 'dag_run' ->> 'run_id',
          'priv_run', 'ti_run is callable');
SELECT is(tistate.ti_heartbeat_batch(ARRAY[:'priv_ti'::uuid], ARRAY['h'], ARRAY[1]), ARRAY[1],
          'ti_heartbeat_batch is callable and records (the database clock)');
SELECT is((tistate.ti_update_state(p_ti_id => :'priv_ti',
              p_payload => '{"state": "success", "end_date": "2025-01-01T00:00:10Z", "task_outlets": [{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]}',
              p_now => '2025-01-01T00:00:10Z')).applied,
          true, 'ti_update_state is callable and applies');
SELECT throws_ok($$SELECT tistate.ti_update_state(p_ti_id => '00000000-0000-0000-0000-000000000000', p_payload => '{"state": "success", "end_date": "2025-01-01T00:00:10Z"}')$$,
                 'TS404', NULL, 'errors surface with their TS code for the executor login');

-- ... and no table, sequence or private function is reachable directly.
SELECT throws_ok(format('SELECT * FROM tistate.%I', c.relname), '42501', NULL, format('cannot SELECT tistate.%I', c.relname))
FROM pg_class AS c WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname;
SELECT throws_ok(format('INSERT INTO tistate.%I DEFAULT VALUES', c.relname), '42501', NULL, format('cannot INSERT into tistate.%I', c.relname))
FROM pg_class AS c WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname;
SELECT throws_ok(format('UPDATE tistate.%1$I SET %2$I = %2$I', c.relname,
                        (SELECT a.attname FROM pg_attribute AS a WHERE a.attrelid = c.oid AND a.attnum = 1)),
                 '42501', NULL, format('cannot UPDATE tistate.%I', c.relname))
FROM pg_class AS c WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname;
SELECT throws_ok(format('DELETE FROM tistate.%I', c.relname), '42501', NULL, format('cannot DELETE from tistate.%I', c.relname))
FROM pg_class AS c WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname;
SELECT throws_ok(format('TRUNCATE tistate.%I', c.relname), '42501', NULL, format('cannot TRUNCATE tistate.%I', c.relname))
FROM pg_class AS c WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname;
SELECT throws_ok(format('SELECT nextval(%L)', format('tistate.%I', c.relname)), '42501', NULL, format('cannot use sequence tistate.%I', c.relname))
FROM pg_class AS c WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind = 'S' ORDER BY c.relname;

SELECT throws_ok($$SELECT tistate._uuid7()$$, '42501', NULL, 'cannot call tistate._uuid7');
SELECT throws_ok($$SELECT tistate._raise('TS404', 'x')$$, '42501', NULL, 'cannot call tistate._raise');
SELECT throws_ok($$SELECT tistate._invalid('f', 'x')$$, '42501', NULL, 'cannot call tistate._invalid');
SELECT throws_ok($$SELECT tistate._set_lock_timeout('1 s')$$, '42501', NULL, 'cannot call tistate._set_lock_timeout');
SELECT throws_ok($$SELECT tistate._lock_ti('00000000-0000-0000-0000-000000000000')$$, '42501', NULL, 'cannot call tistate._lock_ti');
SELECT throws_ok($$SELECT tistate._normalize_success('{}')$$, '42501', NULL, 'cannot call tistate._normalize_success');
SELECT throws_ok($$SELECT tistate._queue_consumers('{}', now())$$, '42501', NULL, 'cannot call tistate._queue_consumers');
RESET ROLE;

------------------------------------------------------------------------------------------------
-- As a login outside tistate_executor: nothing at all
------------------------------------------------------------------------------------------------
SET ROLE :"outsider_role";
SELECT throws_ok($$SELECT tistate.schema_version()$$, '42501', NULL, 'an outsider cannot call schema_version');
SELECT throws_ok($$SELECT tistate.define_dag('{"dag_id": "x"}')$$, '42501', NULL, 'an outsider cannot call define_dag');
SELECT throws_ok($$SELECT tistate.ti_update_state(p_ti_id => '00000000-0000-0000-0000-000000000000', p_payload => '{}')$$,
                 '42501', NULL, 'an outsider cannot call ti_update_state');
RESET ROLE;

-- The executor login's calls really wrote through the definer's rights.
SELECT results_eq($$SELECT state::text, try_number FROM task_instance WHERE dag_id = 'priv_dag'$$,
                  $$VALUES ('success', 1)$$, 'the executor login''s transition was applied');
SELECT is((SELECT count(*)::integer FROM asset_event WHERE source_dag_id = 'priv_dag'), 1,
          'the executor login''s success wrote its event');

SELECT * FROM finish();
ROLLBACK;
