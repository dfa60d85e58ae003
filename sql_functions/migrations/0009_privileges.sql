-- Who may do what. tistate_owner owns everything in schema tistate, so the SECURITY DEFINER
-- functions run as it; logins get EXECUTE through tistate_executor and never a table right.
-- In the airflow flavor tistate_owner gets exactly the rights on Airflow's tables that the
-- functions need (docs/dba.md "Grants"); tistate.compatibility_problems() re-checks them, because
-- they are lost if Airflow ever recreates a table.
SELECT set_config('search_path', tistate._function_search_path(), true);

-- The Airflow tables and rights the functions need (empty in effect for the standalone flavor,
-- whose tables tistate_owner owns).
CREATE TABLE tistate.airflow_grant (
    table_name name NOT NULL,
    privilege  text NOT NULL CHECK (privilege IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'USAGE')),
    on_column  name,  -- a column privilege, when the table right is not needed
    PRIMARY KEY (table_name, privilege)
);
COMMENT ON TABLE tistate.airflow_grant IS
    'Airflow mode: the rights tistate_owner holds on Airflow''s tables and sequences (USAGE: a sequence)';
INSERT INTO tistate.airflow_grant (table_name, privilege, on_column)
SELECT t, p, CASE WHEN t = 'dag' AND p = 'UPDATE' THEN 'dag_id' END
FROM (VALUES
    ('alembic_version', 'SELECT'), ('team', 'SELECT'),
    -- UPDATE on one column: share-locking consumer DAG rows (FOR SHARE) needs an UPDATE right;
    -- no function updates dag.
    ('dag', 'SELECT'), ('dag', 'UPDATE'), ('dag_run', 'SELECT'), ('dag_version', 'SELECT'), ('serialized_dag', 'SELECT'),
    ('dag_schedule_asset_reference', 'SELECT'), ('dag_schedule_asset_alias_reference', 'SELECT'),
    ('dag_schedule_asset_name_reference', 'SELECT'), ('dag_schedule_asset_uri_reference', 'SELECT'),
    ('asset_active', 'SELECT'),
    ('task_instance', 'SELECT'), ('task_instance', 'UPDATE'),
    ('task_instance_history', 'SELECT'), ('task_instance_history', 'INSERT'),
    ('task_reschedule', 'SELECT'), ('task_reschedule', 'INSERT'), ('task_reschedule', 'DELETE'),
    ('trigger', 'SELECT'), ('trigger', 'INSERT'), ('log', 'SELECT'), ('log', 'INSERT'),
    ('asset', 'SELECT'), ('asset', 'INSERT'),
    ('asset_alias', 'SELECT'), ('asset_alias', 'INSERT'),
    ('asset_alias_asset', 'SELECT'), ('asset_alias_asset', 'INSERT'),
    ('asset_alias_asset_event', 'SELECT'), ('asset_alias_asset_event', 'INSERT'),
    ('asset_event', 'SELECT'), ('asset_event', 'INSERT'),
    ('asset_dag_run_queue', 'SELECT'), ('asset_dag_run_queue', 'INSERT'), ('asset_dag_run_queue', 'UPDATE'),
    ('asset_id_seq', 'USAGE'), ('asset_alias_id_seq', 'USAGE'), ('asset_event_id_seq', 'USAGE'),
    ('log_id_seq', 'USAGE'), ('trigger_id_seq', 'USAGE'), ('task_reschedule_id_seq', 'USAGE')
) AS g (t, p);

CREATE FUNCTION tistate._airflow_grant_problems(p_schema name)
 RETURNS SETOF text
 LANGUAGE sql
 STABLE
AS $function$
    SELECT format('tistate_owner lacks %s%s on %I.%I', g.privilege, ' (' || g.on_column || ')', p_schema, g.table_name)
    FROM tistate.airflow_grant AS g
    WHERE to_regclass(format('%I.%I', p_schema, g.table_name)) IS NOT NULL
      AND NOT CASE WHEN g.privilege = 'USAGE'
                   THEN has_sequence_privilege('tistate_owner', format('%I.%I', p_schema, g.table_name), 'USAGE')
                   WHEN g.on_column IS NOT NULL
                   THEN has_column_privilege('tistate_owner', format('%I.%I', p_schema, g.table_name), g.on_column, g.privilege)
                   ELSE has_table_privilege('tistate_owner', format('%I.%I', p_schema, g.table_name), g.privilege) END
    ORDER BY g.table_name, g.privilege
$function$;

CREATE FUNCTION tistate.compatibility_problems()
 RETURNS SETOF text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
DECLARE
    v_schema name := (SELECT i.airflow_schema FROM tistate.installation AS i);
BEGIN
    IF NOT tistate._is_airflow() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT p FROM tistate._airflow_shape_problems(v_schema) AS p;
    RETURN QUERY SELECT p FROM tistate._airflow_grant_problems(v_schema) AS p;
END
$function$;
COMMENT ON FUNCTION tistate.compatibility_problems() IS
    'Why tistate cannot run safely on this database now, one line each (empty when it can): in Airflow mode an unsupported revision, a changed column, multi-team, or a missing grant. tistate db verify, serve and /ready check it';

-- Ownership: everything in schema tistate belongs to tistate_owner.
DO $$
DECLARE
    v_object record;
BEGIN
    EXECUTE 'ALTER SCHEMA tistate OWNER TO tistate_owner';
    FOR v_object IN
        SELECT format('ALTER %s tistate.%I OWNER TO tistate_owner',
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname) AS stmt
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'tistate' AND c.relkind IN ('r', 'p')
        UNION ALL
        SELECT format('ALTER TYPE tistate.%I OWNER TO tistate_owner', t.typname)
        FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
        WHERE n.nspname = 'tistate' AND t.typtype = 'c'
          AND NOT EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
        UNION ALL
        SELECT format('ALTER FUNCTION %s OWNER TO tistate_owner', p.oid::regprocedure)
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'tistate'
    LOOP
        EXECUTE v_object.stmt;
    END LOOP;
END
$$;

-- Airflow mode: the rights listed above on Airflow's tables, nothing more.
DO $$
DECLARE
    v_schema name := (SELECT i.airflow_schema FROM tistate.installation AS i);
    v_grant  record;
BEGIN
    IF NOT tistate._is_airflow() THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO tistate_owner', v_schema);
    FOR v_grant IN SELECT * FROM tistate.airflow_grant AS g
                   WHERE to_regclass(format('%I.%I', v_schema, g.table_name)) IS NOT NULL LOOP
        EXECUTE format('GRANT %s%s ON %s %I.%I TO tistate_owner', v_grant.privilege,
                       ' (' || quote_ident(v_grant.on_column) || ')',
                       CASE WHEN v_grant.privilege = 'USAGE' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       v_schema, v_grant.table_name);
    END LOOP;
END
$$;

-- Logins: EXECUTE on the public functions only. Workers (and the HTTP service) get the worker
-- functions; operators (members of tistate_executor too) the rest.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    tistate.schema_version(),
    tistate.compatibility_problems(),
    tistate.ti_run(uuid, jsonb, timestamptz, interval),
    tistate.ti_update_state(uuid, jsonb, timestamptz, interval),
    tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval),
    tistate.ti_skip_downstream(uuid, jsonb, timestamptz),
    tistate.relay_notifications(integer),
    tistate.notification_backlog()
TO tistate_executor;
GRANT EXECUTE ON FUNCTION
    tistate.ti_queue(uuid, timestamptz, interval),
    tistate.ti_mark(uuid, text, text, timestamptz, interval),
    tistate.emit_asset_event(text, text, jsonb, text, timestamptz),
    tistate.define_dag(jsonb),
    tistate.create_dag_run(text, text, timestamptz, jsonb, timestamptz, text),
    tistate.ti_get(uuid, integer),
    tistate.ti_list(text, text, text, integer),
    tistate.dag_list(),
    tistate.asset_list(),
    tistate.asset_events(text, text, uuid, integer)
TO tistate_operator;
