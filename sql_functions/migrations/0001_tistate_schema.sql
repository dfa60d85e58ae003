-- tistate's own objects, in both flavors (docs/dba.md "Flavors"):
--   standalone: schema tistate also holds a copy of Airflow 3.3.2's tables (migration 0002);
--   airflow:    the functions run on the tables `airflow db migrate` made, in the schema named by
--               the setting tistate.airflow_schema (default public), which this migration checks
--               first: it refuses, with nothing installed, a database that is not a supported
--               Airflow 3.3 database.
-- The flavor is chosen once, at install, by the setting tistate.flavor (`tistate db migrate
-- --airflow` and `psql_migrate.sh --airflow` set it) and recorded in tistate.installation.
-- Nothing here depends on Airflow's tables (no view, foreign key or composite type), so tistate
-- never makes an `airflow db` command fail.

CREATE SCHEMA tistate;
COMMENT ON SCHEMA tistate IS 'tistate: task-instance state transitions and asset events (Airflow 3 data model)';

-- Roles are cluster-wide, so another database may have created them already (possibly concurrently).
--   tistate_owner:    owns schema tistate and every object in it; the SECURITY DEFINER functions
--                     run as it. In Airflow mode it holds only the grants of migration 0009.
--   tistate_executor: the worker role, what workers and the HTTP service log in through: EXECUTE
--                     on the worker functions only (run, heartbeat, finish, skip-downstream), with
--                     the database's clock.
--   tistate_operator: a worker's rights plus the operator functions (marks, DAG definitions, runs,
--                     queueing, manual events, reads) and choosing p_now.
DO $$
DECLARE
    v_role text;
BEGIN
    FOREACH v_role IN ARRAY ARRAY['tistate_owner', 'tistate_executor', 'tistate_operator'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', v_role);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END LOOP;
    -- The migrating role hands objects over to tistate_owner, so it must be a member.
    IF NOT pg_has_role(current_user, 'tistate_owner', 'MEMBER') THEN
        EXECUTE format('GRANT tistate_owner TO %I', current_user);
    END IF;
END
$$;

REVOKE ALL ON SCHEMA tistate FROM PUBLIC;
GRANT USAGE ON SCHEMA tistate TO tistate_executor, tistate_operator;
DO $$
BEGIN
    IF NOT pg_has_role('tistate_operator', 'tistate_executor', 'MEMBER') THEN
        GRANT tistate_executor TO tistate_operator;  -- an operator can do what a worker can
    END IF;
END
$$;

-- Migration bookkeeping (the Python runner and sql_functions/psql_migrate.sh both insert here).
CREATE TABLE tistate.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The flavor of this install, one row.
CREATE TABLE tistate.installation (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    flavor         text NOT NULL CHECK (flavor IN ('standalone', 'airflow')),
    airflow_schema name CHECK ((flavor = 'airflow') = (airflow_schema IS NOT NULL)),
    installed_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tistate.installation IS
    'The flavor tistate was installed as: standalone (its own copy of Airflow''s tables) or airflow (Airflow''s tables in airflow_schema)';

INSERT INTO tistate.installation (flavor, airflow_schema)
SELECT v.flavor, CASE WHEN v.flavor = 'airflow' THEN coalesce(nullif(current_setting('tistate.airflow_schema', true), ''), 'public') END
FROM (SELECT coalesce(nullif(current_setting('tistate.flavor', true), ''), 'standalone') AS flavor) AS v;

-- The Airflow 3.3 revisions whose tables tistate's functions are written for (3.3.0-3.3.2 share one
-- alembic head), and the columns the functions use, as `airflow db migrate` makes them: a column
-- that changes type, nullability or default presence breaks the functions, so it is refused.
-- The standalone tables of 0002 are exactly these columns (tests/test_airflow_columns.py).
CREATE TABLE tistate.airflow_revision (
    revision text PRIMARY KEY,
    airflow  text NOT NULL
);
INSERT INTO tistate.airflow_revision VALUES ('d2f4e1b3c5a7', '3.3.0-3.3.2');

CREATE TABLE tistate.airflow_column (
    table_name  name NOT NULL,
    column_name name NOT NULL,
    data_type   text NOT NULL,
    not_null    boolean NOT NULL,
    has_default boolean NOT NULL,
    PRIMARY KEY (table_name, column_name)
);
COMMENT ON TABLE tistate.airflow_column IS
    'The columns of Airflow''s tables that tistate''s functions use, as Airflow 3.3.2 defines them (the fingerprint checked at install, by db verify and by /ready)';
INSERT INTO tistate.airflow_column VALUES
    ('asset', 'id', 'integer', true, true),
    ('asset', 'name', 'character varying(1500)', true, false),
    ('asset', 'uri', 'character varying(1500)', true, false),
    ('asset', 'group', 'character varying(1500)', true, false),
    ('asset', 'extra', 'json', true, false),
    ('asset', 'created_at', 'timestamp with time zone', true, false),
    ('asset', 'updated_at', 'timestamp with time zone', true, false),
    ('asset_active', 'name', 'character varying(1500)', true, false),
    ('asset_active', 'uri', 'character varying(1500)', true, false),
    ('asset_alias', 'id', 'integer', true, true),
    ('asset_alias', 'name', 'character varying(1500)', true, false),
    ('asset_alias', 'group', 'character varying(1500)', true, false),
    ('asset_alias_asset', 'alias_id', 'integer', true, false),
    ('asset_alias_asset', 'asset_id', 'integer', true, false),
    ('asset_alias_asset_event', 'alias_id', 'integer', true, false),
    ('asset_alias_asset_event', 'event_id', 'integer', true, false),
    ('asset_dag_run_queue', 'asset_id', 'integer', true, false),
    ('asset_dag_run_queue', 'target_dag_id', 'character varying(250)', true, false),
    ('asset_dag_run_queue', 'created_at', 'timestamp with time zone', true, false),
    ('asset_event', 'id', 'integer', true, true),
    ('asset_event', 'asset_id', 'integer', true, false),
    ('asset_event', 'extra', 'json', true, false),
    ('asset_event', 'source_task_id', 'character varying(250)', false, false),
    ('asset_event', 'source_dag_id', 'character varying(250)', false, false),
    ('asset_event', 'source_run_id', 'character varying(250)', false, false),
    ('asset_event', 'source_map_index', 'integer', false, true),
    ('asset_event', 'timestamp', 'timestamp with time zone', true, false),
    ('asset_event', 'partition_key', 'character varying(250)', false, false),
    ('dag', 'dag_id', 'character varying(250)', true, false),
    ('dag', 'is_paused', 'boolean', true, false),
    ('dag', 'is_stale', 'boolean', true, false),
    ('dag', 'last_parsed_time', 'timestamp with time zone', false, false),
    ('dag', 'owners', 'character varying(2000)', false, false),
    ('dag', 'description', 'text', false, false),
    ('dag', 'timetable_partitioned', 'boolean', true, true),
    ('dag', 'max_active_runs', 'integer', false, false),
    ('dag', 'has_import_errors', 'boolean', false, true),
    ('dag', 'fail_fast', 'boolean', true, true),
    ('dag_run', 'id', 'integer', true, true),
    ('dag_run', 'dag_id', 'character varying(250)', true, false),
    ('dag_run', 'queued_at', 'timestamp with time zone', false, false),
    ('dag_run', 'logical_date', 'timestamp with time zone', false, false),
    ('dag_run', 'start_date', 'timestamp with time zone', false, false),
    ('dag_run', 'end_date', 'timestamp with time zone', false, false),
    ('dag_run', 'state', 'character varying(50)', false, false),
    ('dag_run', 'run_id', 'character varying(250)', true, false),
    ('dag_run', 'run_type', 'character varying(50)', true, false),
    ('dag_run', 'conf', 'jsonb', false, false),
    ('dag_run', 'run_after', 'timestamp with time zone', true, false),
    ('dag_run', 'created_at', 'timestamp with time zone', false, false),
    ('dag_run', 'updated_at', 'timestamp with time zone', false, false),
    ('dag_run', 'clear_number', 'integer', true, true),
    ('dag_run', 'span_status', 'character varying(250)', true, true),
    ('dag_run', 'partition_key', 'character varying(250)', false, false),
    ('dag_run', 'partition_date', 'timestamp with time zone', false, false),
    ('dag_schedule_asset_alias_reference', 'alias_id', 'integer', true, false),
    ('dag_schedule_asset_alias_reference', 'dag_id', 'character varying(250)', true, false),
    ('dag_schedule_asset_alias_reference', 'created_at', 'timestamp with time zone', true, false),
    ('dag_schedule_asset_alias_reference', 'updated_at', 'timestamp with time zone', true, false),
    ('dag_schedule_asset_name_reference', 'name', 'character varying(1500)', true, false),
    ('dag_schedule_asset_name_reference', 'dag_id', 'character varying(250)', true, false),
    ('dag_schedule_asset_name_reference', 'created_at', 'timestamp with time zone', true, false),
    ('dag_schedule_asset_reference', 'asset_id', 'integer', true, false),
    ('dag_schedule_asset_reference', 'dag_id', 'character varying(250)', true, false),
    ('dag_schedule_asset_reference', 'allow_producer_teams', 'json', false, false),
    ('dag_schedule_asset_reference', 'allow_global_producers', 'boolean', true, true),
    ('dag_schedule_asset_reference', 'created_at', 'timestamp with time zone', true, false),
    ('dag_schedule_asset_reference', 'updated_at', 'timestamp with time zone', true, false),
    ('dag_schedule_asset_uri_reference', 'uri', 'character varying(1500)', true, false),
    ('dag_schedule_asset_uri_reference', 'dag_id', 'character varying(250)', true, false),
    ('dag_schedule_asset_uri_reference', 'created_at', 'timestamp with time zone', true, false),
    ('log', 'id', 'integer', true, true),
    ('log', 'dttm', 'timestamp with time zone', false, false),
    ('log', 'dag_id', 'character varying(250)', false, false),
    ('log', 'task_id', 'character varying(250)', false, false),
    ('log', 'map_index', 'integer', false, false),
    ('log', 'event', 'character varying(60)', true, false),
    ('log', 'logical_date', 'timestamp with time zone', false, false),
    ('log', 'run_id', 'character varying(250)', false, false),
    ('log', 'owner', 'character varying(500)', false, false),
    ('log', 'owner_display_name', 'character varying(500)', false, false),
    ('log', 'extra', 'text', false, false),
    ('log', 'try_number', 'integer', false, false),
    ('task_instance', 'id', 'uuid', true, false),
    ('task_instance', 'task_id', 'character varying(250)', true, false),
    ('task_instance', 'dag_id', 'character varying(250)', true, false),
    ('task_instance', 'run_id', 'character varying(250)', true, false),
    ('task_instance', 'map_index', 'integer', true, true),
    ('task_instance', 'start_date', 'timestamp with time zone', false, false),
    ('task_instance', 'end_date', 'timestamp with time zone', false, false),
    ('task_instance', 'duration', 'double precision', false, false),
    ('task_instance', 'state', 'character varying(20)', false, false),
    ('task_instance', 'try_number', 'integer', true, false),
    ('task_instance', 'max_tries', 'integer', true, true),
    ('task_instance', 'hostname', 'character varying(1000)', false, false),
    ('task_instance', 'unixname', 'character varying(1000)', false, false),
    ('task_instance', 'pool', 'character varying(256)', true, false),
    ('task_instance', 'pool_slots', 'integer', true, false),
    ('task_instance', 'queue', 'character varying(256)', false, false),
    ('task_instance', 'priority_weight', 'integer', false, false),
    ('task_instance', 'operator', 'character varying(1000)', false, false),
    ('task_instance', 'custom_operator_name', 'character varying(1000)', false, false),
    ('task_instance', 'queued_dttm', 'timestamp with time zone', false, false),
    ('task_instance', 'scheduled_dttm', 'timestamp with time zone', false, false),
    ('task_instance', 'queued_by_job_id', 'integer', false, false),
    ('task_instance', 'last_heartbeat_at', 'timestamp with time zone', false, false),
    ('task_instance', 'pid', 'integer', false, false),
    ('task_instance', 'executor', 'character varying(1000)', false, false),
    ('task_instance', 'executor_config', 'bytea', false, false),
    ('task_instance', 'updated_at', 'timestamp with time zone', false, false),
    ('task_instance', 'rendered_map_index', 'character varying(250)', false, false),
    ('task_instance', 'context_carrier', 'jsonb', false, false),
    ('task_instance', 'span_status', 'character varying(250)', true, true),
    ('task_instance', 'external_executor_id', 'text', false, false),
    ('task_instance', 'trigger_id', 'integer', false, false),
    ('task_instance', 'trigger_timeout', 'timestamp with time zone', false, false),
    ('task_instance', 'next_method', 'character varying(1000)', false, false),
    ('task_instance', 'next_kwargs', 'jsonb', false, false),
    ('task_instance', 'task_display_name', 'character varying(2000)', false, false),
    ('task_instance', 'dag_version_id', 'uuid', false, false),
    ('task_instance', 'retry_delay_override', 'double precision', false, false),
    ('task_instance', 'retry_reason', 'character varying(500)', false, false),
    ('task_instance_history', 'task_instance_id', 'uuid', true, false),
    ('task_instance_history', 'task_id', 'character varying(250)', true, false),
    ('task_instance_history', 'dag_id', 'character varying(250)', true, false),
    ('task_instance_history', 'run_id', 'character varying(250)', true, false),
    ('task_instance_history', 'map_index', 'integer', true, true),
    ('task_instance_history', 'try_number', 'integer', true, false),
    ('task_instance_history', 'start_date', 'timestamp with time zone', false, false),
    ('task_instance_history', 'end_date', 'timestamp with time zone', false, false),
    ('task_instance_history', 'duration', 'double precision', false, false),
    ('task_instance_history', 'state', 'character varying(20)', false, false),
    ('task_instance_history', 'max_tries', 'integer', false, true),
    ('task_instance_history', 'hostname', 'character varying(1000)', false, false),
    ('task_instance_history', 'unixname', 'character varying(1000)', false, false),
    ('task_instance_history', 'pool', 'character varying(256)', true, false),
    ('task_instance_history', 'pool_slots', 'integer', true, false),
    ('task_instance_history', 'queue', 'character varying(256)', false, false),
    ('task_instance_history', 'priority_weight', 'integer', false, false),
    ('task_instance_history', 'operator', 'character varying(1000)', false, false),
    ('task_instance_history', 'custom_operator_name', 'character varying(1000)', false, false),
    ('task_instance_history', 'queued_dttm', 'timestamp with time zone', false, false),
    ('task_instance_history', 'scheduled_dttm', 'timestamp with time zone', false, false),
    ('task_instance_history', 'queued_by_job_id', 'integer', false, false),
    ('task_instance_history', 'pid', 'integer', false, false),
    ('task_instance_history', 'executor', 'character varying(1000)', false, false),
    ('task_instance_history', 'executor_config', 'bytea', false, false),
    ('task_instance_history', 'updated_at', 'timestamp with time zone', false, false),
    ('task_instance_history', 'rendered_map_index', 'character varying(250)', false, false),
    ('task_instance_history', 'context_carrier', 'jsonb', false, false),
    ('task_instance_history', 'span_status', 'character varying(250)', true, true),
    ('task_instance_history', 'external_executor_id', 'text', false, false),
    ('task_instance_history', 'trigger_id', 'integer', false, false),
    ('task_instance_history', 'trigger_timeout', 'timestamp without time zone', false, false),
    ('task_instance_history', 'next_method', 'character varying(1000)', false, false),
    ('task_instance_history', 'next_kwargs', 'jsonb', false, false),
    ('task_instance_history', 'task_display_name', 'character varying(2000)', false, false),
    ('task_instance_history', 'dag_version_id', 'uuid', false, false),
    ('task_instance_history', 'retry_delay_override', 'double precision', false, false),
    ('task_instance_history', 'retry_reason', 'character varying(500)', false, false),
    ('task_outlet_asset_reference', 'asset_id', 'integer', true, false),
    ('task_outlet_asset_reference', 'dag_id', 'character varying(250)', true, false),
    ('task_outlet_asset_reference', 'task_id', 'character varying(250)', true, false),
    ('task_outlet_asset_reference', 'allow_consumer_teams', 'json', false, false),
    ('task_outlet_asset_reference', 'allow_global_consumers', 'boolean', true, true),
    ('task_outlet_asset_reference', 'created_at', 'timestamp with time zone', true, false),
    ('task_outlet_asset_reference', 'updated_at', 'timestamp with time zone', true, false),
    ('task_reschedule', 'id', 'integer', true, true),
    ('task_reschedule', 'ti_id', 'uuid', true, false),
    ('task_reschedule', 'start_date', 'timestamp with time zone', true, false),
    ('task_reschedule', 'end_date', 'timestamp with time zone', true, false),
    ('task_reschedule', 'duration', 'integer', true, false),
    ('task_reschedule', 'reschedule_date', 'timestamp with time zone', true, false),
    ('trigger', 'id', 'integer', true, true),
    ('trigger', 'classpath', 'character varying(1000)', true, false),
    ('trigger', 'kwargs', 'text', true, false),
    ('trigger', 'created_date', 'timestamp with time zone', true, false),
    ('trigger', 'triggerer_id', 'integer', false, false),
    ('trigger', 'queue', 'character varying(256)', false, false);

CREATE FUNCTION tistate._is_airflow()
RETURNS boolean
LANGUAGE sql
STABLE
AS $$
    SELECT i.flavor = 'airflow' FROM tistate.installation AS i
$$;
COMMENT ON FUNCTION tistate._is_airflow() IS 'True when tistate runs on Airflow''s own tables';

-- Every migration that creates functions starts with
--   SELECT set_config('search_path', tistate._function_search_path(), true);
-- and the functions pin it with SET search_path FROM CURRENT: one source, and each flavor's
-- functions find the tables of that flavor (tistate's copy, or Airflow's schema).
CREATE FUNCTION tistate._function_search_path()
RETURNS text
LANGUAGE sql
STABLE
AS $$
    SELECT 'pg_catalog, tistate' || CASE WHEN i.flavor = 'airflow' THEN ', ' || quote_ident(i.airflow_schema) ELSE '' END
           || ', pg_temp'
    FROM tistate.installation AS i
$$;
COMMENT ON FUNCTION tistate._function_search_path() IS 'The search_path the functions of this flavor are created with';

-- What stops tistate from running correctly on this Airflow database, one line each (empty when
-- fine): not an Airflow database, an unsupported revision, a column that differs, multi-team.
CREATE FUNCTION tistate._airflow_shape_problems(p_schema name)
RETURNS SETOF text
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_revision text;
    v_teams    boolean;
BEGIN
    IF to_regclass(format('%I.alembic_version', p_schema)) IS NULL THEN
        RETURN NEXT format('not an Airflow database: no table %I.alembic_version (run `airflow db migrate` first, '
                           'or pass the schema Airflow uses with --airflow-schema)', p_schema);
        RETURN;
    END IF;
    EXECUTE format('SELECT string_agg(version_num, '','') FROM %I.alembic_version', p_schema) INTO v_revision;
    IF NOT EXISTS (SELECT 1 FROM tistate.airflow_revision AS r WHERE r.revision = v_revision) THEN
        RETURN NEXT format('Airflow database at alembic revision %s, which this tistate does not support; supported: %s',
                           coalesce(v_revision, '(none)'),
                           (SELECT string_agg(r.revision || ' (Airflow ' || r.airflow || ')', ', ') FROM tistate.airflow_revision AS r));
    END IF;
    RETURN QUERY
        SELECT format('column %I.%I: expected %s%s%s, found %s', e.table_name, e.column_name,
                      e.data_type, CASE WHEN e.not_null THEN ' NOT NULL' ELSE ' NULL' END,
                      CASE WHEN e.has_default THEN ' with a default' ELSE ' without default' END,
                      CASE WHEN a.attname IS NULL THEN 'no such column'
                           ELSE format_type(a.atttypid, a.atttypmod)
                                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
                                || CASE WHEN a.atthasdef THEN ' with a default' ELSE ' without default' END END)
        FROM tistate.airflow_column AS e
        LEFT JOIN pg_catalog.pg_attribute AS a
               ON a.attrelid = to_regclass(format('%I.%I', p_schema, e.table_name))
              AND a.attname = e.column_name AND a.attnum > 0 AND NOT a.attisdropped
        WHERE a.attname IS NULL
           OR format_type(a.atttypid, a.atttypmod) <> e.data_type
           OR a.attnotnull <> e.not_null
           OR a.atthasdef <> e.has_default
        ORDER BY e.table_name, e.column_name;
    -- Multi-team deployments filter producers and consumers by team; tistate does not.
    IF to_regclass(format('%I.team', p_schema)) IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.team)', p_schema) INTO v_teams;
        IF v_teams THEN
            RETURN NEXT 'multi-team deployment (rows in team): not supported by tistate';
        END IF;
    END IF;
END
$$;
COMMENT ON FUNCTION tistate._airflow_shape_problems(name) IS
    'Why this schema is not an Airflow database tistate supports (revision, column fingerprint, multi-team); empty when it is';

-- Refuse an Airflow install that cannot work, before anything else is created (this transaction
-- rolls back: nothing is installed).
DO $$
DECLARE
    v_problems text;
BEGIN
    IF tistate._is_airflow() THEN
        SELECT string_agg(p, E'\n  ') INTO v_problems
        FROM tistate._airflow_shape_problems((SELECT i.airflow_schema FROM tistate.installation AS i)) AS p;
        IF v_problems IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'TS501',
                MESSAGE = format('cannot install tistate on this database:%s  %s', E'\n', v_problems),
                HINT = 'tistate''s Airflow mode needs a database made by `airflow db migrate` of a supported Airflow version';
        END IF;
    END IF;
END
$$;

------------------------------------------------------------------------------------------------
-- tistate's own data, in both flavors
------------------------------------------------------------------------------------------------

-- Who produced each asset event (Airflow's asset_event has no room for it): the try whose success
-- registered it. Manual events have no row. The no-op answer of a retried success reads it.
CREATE TABLE tistate.asset_event_producer (
    event_id   integer PRIMARY KEY,
    ti_id      uuid NOT NULL,
    try_number integer NOT NULL
);
CREATE INDEX asset_event_producer_ti ON tistate.asset_event_producer (ti_id, try_number);
COMMENT ON TABLE tistate.asset_event_producer IS
    'Producer attribution of asset events: the task instance id and try that registered each event (no row for manual events)';

-- Announcements waiting for the relay (tistate.notify_events = relay): one row per notifying
-- transaction, no index, so inserts stay as cheap as they get.
CREATE TABLE tistate.asset_event_outbox (
    event_ids  integer[]   NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMENT ON TABLE tistate.asset_event_outbox IS
    'Asset events to announce on tistate_events once committed (tistate.notify_events = relay); drained by tistate.relay_notifications()';

------------------------------------------------------------------------------------------------
-- Composite types (tistate's own; none embeds an Airflow table's row type)
------------------------------------------------------------------------------------------------
CREATE TYPE tistate.state_update_result AS (
    ti_id           uuid,
    previous_state  text,
    new_state       text,
    applied         boolean,
    new_ti_id       uuid,
    asset_event_ids integer[],
    queued_dag_ids  text[],
    lock_wait_ms    double precision,
    lock_held_ms    double precision
);
COMMENT ON TYPE tistate.state_update_result IS
    'Result of ti_update_state: applied=false for the same-state no-op; new_ti_id set on up_for_retry; lock_wait_ms / lock_held_ms time the row lock up to the function''s return (commit adds one WAL flush)';

CREATE TYPE tistate.asset_event_result AS (
    asset_event_id integer,
    asset_id       integer,
    queued_dag_ids text[]
);
COMMENT ON TYPE tistate.asset_event_result IS
    'Result of emit_asset_event: the new event, its asset, and the consumer DAGs queued in asset_dag_run_queue';

-- The task-instance columns the transitions read.
CREATE TYPE tistate._ti_row AS (
    id                 uuid,
    task_id            text,
    dag_id             text,
    run_id             text,
    map_index          integer,
    state              text,
    try_number         integer,
    hostname           text,
    unixname           text,
    pid                integer,
    start_date         timestamptz,
    rendered_map_index text,
    next_kwargs        jsonb
);

-- The locked task instance with the run and DAG facts every transition needs.
CREATE TYPE tistate._ti_context AS (
    ti                tistate._ti_row,
    logical_date      timestamptz,
    owners            text,
    fail_fast         boolean,
    run_partition_key text
);

-- One asset event planned by the success transition, before it is inserted.
CREATE TYPE tistate._planned_event AS (
    event_id      integer,
    asset_id      integer,
    extra         jsonb,
    partition_key text,
    alias_ids     integer[]
);
