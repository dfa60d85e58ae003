-- Shared fixture of the pgTAP files: test helpers in pg_temp and a small world of DAGs and assets.
-- Include it with `\ir _fixtures.sql` right after BEGIN; the test's ROLLBACK removes everything.
--
-- The world (all times are fixed, tests never sleep):
--   assets   orders (s3://lake/orders), customers (s3://lake/customers), both active
--   alias    daily-tables
--   producer DAG "producer" (owners data-team) with tasks load, other
--   consumers c_asset (asset orders), c_alias (alias daily-tables), c_name (name ref orders),
--            c_uri (uri ref s3://lake/orders), c_paused (paused, asset orders + alias),
--            c_stale (stale, asset orders + alias), c_customers (asset customers)
SET client_min_messages = warning;

-- The error a statement raises, as {"sqlstate", "message", "detail"} (detail parsed when it is
-- JSON). A statement that succeeds is rolled back and gives {"sqlstate": null}.
CREATE FUNCTION pg_temp.error_of(p_sql text)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_state   text;
    v_message text;
    v_detail  text;
BEGIN
    BEGIN
        EXECUTE p_sql;
        RAISE EXCEPTION USING ERRCODE = 'TSOK0', MESSAGE = 'no error';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                v_detail = PG_EXCEPTION_DETAIL;
    END;
    IF v_state = 'TSOK0' THEN
        RETURN jsonb_build_object('sqlstate', NULL);
    END IF;
    RETURN jsonb_build_object(
        'sqlstate', v_state, 'message', v_message,
        'detail', CASE WHEN v_detail ~ '^\s*\{' THEN v_detail::jsonb ELSE to_jsonb(v_detail) END);
END
$$;

-- 'SQLSTATE field' of the error a statement raises ('TS422 end_date', 'TS404 '), or 'no error'.
CREATE FUNCTION pg_temp.code_field(p_sql text)
RETURNS text
LANGUAGE sql
AS $$
    SELECT coalesce((e ->> 'sqlstate') || ' ' || coalesce(e #>> '{detail,field}', ''), 'no error')
    FROM pg_temp.error_of(p_sql) AS e;
$$;

-- A fingerprint of every table tistate writes, as one text (see _digest.sql).
\ir _digest.sql
CREATE FUNCTION pg_temp.tistate_digest()
RETURNS text
LANGUAGE sql
AS $$
    SELECT string_agg(name || ':' || digest, E'\n' ORDER BY name) FROM pg_temp.table_digests();
$$;

-- The standard TIEnterRunningPayload of the fixture's worker.
CREATE FUNCTION pg_temp.run_payload(p_pid integer DEFAULT 4242, p_hostname text DEFAULT 'worker-1')
RETURNS jsonb
LANGUAGE sql
AS $$
    SELECT jsonb_build_object('state', 'running', 'hostname', p_hostname, 'unixname', 'airflow',
                              'pid', p_pid, 'start_date', '2025-01-01T00:00:00Z');
$$;

-- The id of a task instance of the producer DAG (NULL if absent).
CREATE FUNCTION pg_temp.ti(p_run_id text, p_task_id text DEFAULT 'load', p_dag_id text DEFAULT 'producer')
RETURNS uuid
LANGUAGE sql
AS $$
    SELECT id FROM task_instance
    WHERE dag_id = p_dag_id AND run_id = p_run_id AND task_id = p_task_id AND map_index = -1;
$$;

-- Create the run (if needed) and return its task instance, still queued.
CREATE FUNCTION pg_temp.queued_ti(p_run_id text, p_task_id text DEFAULT 'load', p_dag_id text DEFAULT 'producer',
                                  p_logical_date timestamptz DEFAULT NULL, p_partition_key text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM dag_run WHERE dag_id = p_dag_id AND run_id = p_run_id) THEN
        PERFORM tistate_test.create_dag_run(p_dag_id => p_dag_id, p_run_id => p_run_id, p_logical_date => p_logical_date,
                                       p_now => '2025-01-01T00:00:00Z', p_partition_key => p_partition_key);
    END IF;
    RETURN pg_temp.ti(p_run_id, p_task_id, p_dag_id);
END
$$;

-- Create the run (if needed) and return its task instance, running on worker-1 since 00:00:00Z.
CREATE FUNCTION pg_temp.running_ti(p_run_id text, p_task_id text DEFAULT 'load', p_dag_id text DEFAULT 'producer',
                                   p_logical_date timestamptz DEFAULT NULL, p_partition_key text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql
AS $$
DECLARE
    v_id uuid := pg_temp.queued_ti(p_run_id, p_task_id, p_dag_id, p_logical_date, p_partition_key);
BEGIN
    PERFORM tistate.ti_run(p_ti_id => v_id, p_payload => pg_temp.run_payload(), p_now => '2025-01-01T00:00:00Z');
    RETURN v_id;
END
$$;

-- ti_update_state to success at 00:01:30Z with the given outlets and events.
CREATE FUNCTION pg_temp.succeed(p_ti_id uuid, p_outlets jsonb DEFAULT '[]', p_events jsonb DEFAULT '[]')
RETURNS tistate.state_update_result
LANGUAGE sql
AS $$
    SELECT * FROM tistate.ti_update_state(
        p_ti_id => p_ti_id,
        p_payload => jsonb_build_object('state', 'success', 'end_date', '2025-01-01T00:01:30Z',
                                        'task_outlets', p_outlets, 'outlet_events', p_events),
        p_now => '2025-01-01T00:01:30Z');
$$;

CREATE FUNCTION pg_temp.asset_id(p_name text)
RETURNS integer
LANGUAGE sql
AS $$
    SELECT id FROM asset WHERE name = p_name;
$$;

CREATE FUNCTION pg_temp.alias_id(p_name text)
RETURNS integer
LANGUAGE sql
AS $$
    SELECT id FROM asset_alias WHERE name = p_name;
$$;

DO $$
BEGIN
    PERFORM tistate_test.define_dag('{"dag_id": "c_asset", "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_customers", "schedule": {"assets": [{"name": "customers", "uri": "s3://lake/customers"}]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_alias", "schedule": {"aliases": ["daily-tables"]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_name", "schedule": {"name_refs": ["orders"]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_uri", "schedule": {"uri_refs": ["s3://lake/orders"]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_paused", "is_paused": true, "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}], "aliases": ["daily-tables"]}}');
    PERFORM tistate_test.define_dag('{"dag_id": "c_stale", "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}], "aliases": ["daily-tables"]}}');
    UPDATE dag SET is_stale = true WHERE dag_id = 'c_stale';
    PERFORM tistate_test.define_dag('{"dag_id": "producer", "owners": "data-team", "tasks": [
        {"task_id": "load", "max_tries": 2, "outlets": [
            {"type": "Asset", "name": "orders", "uri": "s3://lake/orders"},
            {"type": "Asset", "name": "customers", "uri": "s3://lake/customers"},
            {"type": "AssetAlias", "name": "daily-tables"}]},
        {"task_id": "other"}]}');
END
$$;

-- The time a test expects an event or queue row to carry. Standalone: exactly p_now. Airflow mode
-- stamps them after share-locking the consumer DAGs (tistate._lock_consumers), with the later of
-- p_now and the clock: any such time reads as the expected one.
CREATE FUNCTION pg_temp.event_time(p_actual timestamptz, p_expected timestamptz)
RETURNS timestamptz
LANGUAGE sql
AS $$
    SELECT CASE WHEN tistate_test.is_airflow() AND p_actual BETWEEN p_expected AND clock_timestamp()
                THEN p_expected ELSE p_actual END;
$$;

-- Add outlets to a task's declaration without creating or activating anything (what the DAG
-- processor records for a declared outlet it could not activate, e.g. a conflicting asset): the
-- DAG document standalone, the serialized DAG in Airflow mode.
CREATE FUNCTION pg_temp.declare_outlets(p_task_id text, p_outlets jsonb, p_dag_id text DEFAULT 'producer')
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT tistate_test.is_airflow() THEN
        UPDATE tistate.dag_task SET outlets = outlets || p_outlets WHERE dag_id = p_dag_id AND task_id = p_task_id;
        RETURN;
    END IF;
    UPDATE public.serialized_dag AS sd
    SET data = jsonb_set(sd.data, ARRAY['dag', 'tasks', (t.ord - 1)::text, '__var', 'outlets'],
                         coalesce(t.task -> '__var' -> 'outlets', '[]') || (
                             SELECT jsonb_agg(CASE o ->> 'type'
                                 WHEN 'Asset' THEN jsonb_build_object('__type', 'asset', 'name', o ->> 'name', 'uri', o ->> 'uri')
                                 WHEN 'AssetAlias' THEN jsonb_build_object('__type', 'asset_alias', 'name', o ->> 'name')
                                 WHEN 'AssetNameRef' THEN jsonb_build_object('__type', 'asset_ref', 'name', o ->> 'name')
                                 ELSE jsonb_build_object('__type', 'asset_ref', 'uri', o ->> 'uri') END)
                             FROM jsonb_array_elements(p_outlets) AS o))
    FROM (SELECT v.id AS version FROM public.dag_version AS v WHERE v.dag_id = p_dag_id
          ORDER BY v.version_number DESC LIMIT 1) AS latest,
         LATERAL (SELECT x.task, x.ord FROM public.serialized_dag AS s2,
                         jsonb_array_elements(s2.data -> 'dag' -> 'tasks') WITH ORDINALITY AS x (task, ord)
                  WHERE s2.dag_version_id = latest.version AND x.task -> '__var' ->> 'task_id' = p_task_id) AS t
    WHERE sd.dag_version_id = latest.version;
END
$$;

