-- tistate schema: Airflow 3.3's metadata tables for task instances and assets (names, columns and
-- types follow Airflow; see ../shared/reference/airflow-semantics.md section 1), with tistate's
-- improvements: jsonb extras, database defaults for timestamps, producer ti_id/try_number on
-- asset_event, and a timezone-aware trigger_timeout in task_instance_history.

CREATE SCHEMA IF NOT EXISTS tistate;
COMMENT ON SCHEMA tistate IS 'tistate: task-instance state transitions and asset events (Airflow 3 data model)';

-- Migration bookkeeping (the Python runner and the psql loop in docs/dba.md both insert here).
CREATE TABLE tistate.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The group role workers and the HTTP service log in through: EXECUTE on the public functions only.
-- Roles are cluster-wide, so another database may have created it already (possibly concurrently).
DO $$
BEGIN
    CREATE ROLE tistate_executor NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

REVOKE ALL ON SCHEMA tistate FROM PUBLIC;
GRANT USAGE ON SCHEMA tistate TO tistate_executor;

------------------------------------------------------------------------------------------------
-- DAGs and their tasks
------------------------------------------------------------------------------------------------
CREATE TABLE tistate.dag (
    dag_id                varchar(250) PRIMARY KEY,
    is_paused             boolean NOT NULL DEFAULT false,
    is_stale              boolean NOT NULL DEFAULT false,
    owners                varchar(2000),
    description           text,
    fail_fast             boolean NOT NULL DEFAULT false,
    timetable_partitioned boolean NOT NULL DEFAULT false,
    max_active_runs       integer,
    has_import_errors     boolean DEFAULT false,
    last_parsed_time      timestamptz DEFAULT now()
);

-- Not an Airflow table: Airflow keeps task definitions in the serialized DAG. tistate needs them to
-- create a run's task instances and to know max_tries, pool and teardown status without it.
CREATE TABLE tistate.dag_task (
    dag_id          varchar(250) NOT NULL REFERENCES tistate.dag (dag_id) ON DELETE CASCADE,
    task_id         varchar(250) NOT NULL,
    max_tries       integer NOT NULL DEFAULT 0,
    pool            varchar(256) NOT NULL DEFAULT 'default_pool',
    pool_slots      integer NOT NULL DEFAULT 1,
    queue           varchar(256) NOT NULL DEFAULT 'default',
    priority_weight integer NOT NULL DEFAULT 1,
    operator        varchar(1000),
    is_teardown     boolean NOT NULL DEFAULT false,
    outlets         jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT dag_task_pkey PRIMARY KEY (dag_id, task_id)
);

CREATE TABLE tistate.dag_run (
    id             serial CONSTRAINT dag_run_pkey PRIMARY KEY,
    dag_id         varchar(250) NOT NULL,
    run_id         varchar(250) NOT NULL,
    logical_date   timestamptz,
    state          varchar(50) DEFAULT 'queued',
    run_type       varchar(50) NOT NULL DEFAULT 'manual',
    run_after      timestamptz NOT NULL DEFAULT now(),
    queued_at      timestamptz,
    start_date     timestamptz,
    end_date       timestamptz,
    conf           jsonb,
    clear_number   integer NOT NULL DEFAULT 0,
    span_status    varchar(250) NOT NULL DEFAULT 'not_started',
    partition_key  varchar(250),
    partition_date timestamptz,
    created_at     timestamptz DEFAULT now(),
    updated_at     timestamptz DEFAULT now(),
    CONSTRAINT dag_run_dag_id_run_id_key UNIQUE (dag_id, run_id),
    CONSTRAINT dag_run_dag_id_logical_date_key UNIQUE (dag_id, logical_date)
);
CREATE INDEX idx_dag_run_running_dags ON tistate.dag_run (state, dag_id) WHERE state = 'running';
CREATE INDEX idx_dag_run_queued_dags ON tistate.dag_run (state, dag_id) WHERE state = 'queued';

CREATE TABLE tistate.trigger (
    id           serial CONSTRAINT trigger_pkey PRIMARY KEY,
    classpath    varchar(1000) NOT NULL,
    kwargs       text NOT NULL,
    created_date timestamptz NOT NULL DEFAULT now(),
    triggerer_id integer,
    queue        varchar(256)
);

------------------------------------------------------------------------------------------------
-- Task instances
------------------------------------------------------------------------------------------------
CREATE TABLE tistate.task_instance (
    id                   uuid CONSTRAINT task_instance_pkey PRIMARY KEY,
    task_id              varchar(250) NOT NULL,
    dag_id               varchar(250) NOT NULL,
    run_id               varchar(250) NOT NULL,
    map_index            integer NOT NULL DEFAULT -1,
    start_date           timestamptz,
    end_date             timestamptz,
    duration             double precision,
    state                varchar(20),
    try_number           integer NOT NULL DEFAULT 0,
    max_tries            integer NOT NULL DEFAULT -1,
    hostname             varchar(1000),
    unixname             varchar(1000),
    pool                 varchar(256) NOT NULL DEFAULT 'default_pool',
    pool_slots           integer NOT NULL DEFAULT 1,
    queue                varchar(256),
    priority_weight      integer,
    operator             varchar(1000),
    custom_operator_name varchar(1000),
    queued_dttm          timestamptz,
    scheduled_dttm       timestamptz,
    queued_by_job_id     integer,
    last_heartbeat_at    timestamptz,
    pid                  integer,
    executor             varchar(1000),
    executor_config      bytea,
    updated_at           timestamptz DEFAULT now(),
    rendered_map_index   varchar(250),
    context_carrier      jsonb,
    span_status          varchar(250) NOT NULL DEFAULT 'not_started',
    external_executor_id text,
    trigger_id           integer,
    trigger_timeout      timestamptz,
    next_method          varchar(1000),
    next_kwargs          jsonb,
    task_display_name    varchar(2000),
    retry_delay_override double precision,
    retry_reason         varchar(500),
    CONSTRAINT task_instance_composite_key UNIQUE (dag_id, task_id, run_id, map_index),
    CONSTRAINT task_instance_dag_run_fkey FOREIGN KEY (dag_id, run_id)
        REFERENCES tistate.dag_run (dag_id, run_id) ON DELETE CASCADE,
    CONSTRAINT task_instance_trigger_id_fkey FOREIGN KEY (trigger_id)
        REFERENCES tistate.trigger (id) ON DELETE CASCADE
);
CREATE INDEX ti_dag_state ON tistate.task_instance (dag_id, state);
CREATE INDEX ti_dag_run ON tistate.task_instance (dag_id, run_id);
CREATE INDEX ti_state ON tistate.task_instance (state);
CREATE INDEX ti_state_lkp ON tistate.task_instance (dag_id, task_id, run_id, state);
CREATE INDEX ti_pool ON tistate.task_instance (pool, state, priority_weight);
CREATE INDEX ti_trigger_id ON tistate.task_instance (trigger_id);
CREATE INDEX ti_heartbeat ON tistate.task_instance (last_heartbeat_at);

CREATE TABLE tistate.task_instance_history (
    task_instance_id     uuid CONSTRAINT task_instance_history_pkey PRIMARY KEY,
    task_id              varchar(250) NOT NULL,
    dag_id               varchar(250) NOT NULL,
    run_id               varchar(250) NOT NULL,
    map_index            integer NOT NULL DEFAULT -1,
    try_number           integer NOT NULL,
    start_date           timestamptz,
    end_date             timestamptz,
    duration             double precision,
    state                varchar(20),
    max_tries            integer DEFAULT -1,
    hostname             varchar(1000),
    unixname             varchar(1000),
    pool                 varchar(256) NOT NULL,
    pool_slots           integer NOT NULL,
    queue                varchar(256),
    priority_weight      integer,
    operator             varchar(1000),
    custom_operator_name varchar(1000),
    queued_dttm          timestamptz,
    scheduled_dttm       timestamptz,
    queued_by_job_id     integer,
    pid                  integer,
    executor             varchar(1000),
    executor_config      bytea,
    updated_at           timestamptz DEFAULT now(),
    rendered_map_index   varchar(250),
    context_carrier      jsonb,
    span_status          varchar(250) NOT NULL DEFAULT 'not_started',
    external_executor_id text,
    trigger_id           integer,
    trigger_timeout      timestamptz,
    next_method          varchar(1000),
    next_kwargs          jsonb,
    task_display_name    varchar(2000),
    retry_delay_override double precision,
    retry_reason         varchar(500),
    CONSTRAINT task_instance_history_dtrt_uq UNIQUE (dag_id, task_id, run_id, map_index, try_number),
    CONSTRAINT task_instance_history_ti_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index)
        REFERENCES tistate.task_instance (dag_id, task_id, run_id, map_index)
        ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX idx_tih_dag_run ON tistate.task_instance_history (dag_id, run_id);

CREATE TABLE tistate.task_reschedule (
    id              serial CONSTRAINT task_reschedule_pkey PRIMARY KEY,
    ti_id           uuid NOT NULL,
    start_date      timestamptz NOT NULL,
    end_date        timestamptz NOT NULL,
    duration        integer NOT NULL,
    reschedule_date timestamptz NOT NULL,
    CONSTRAINT task_reschedule_ti_fkey FOREIGN KEY (ti_id)
        REFERENCES tistate.task_instance (id) ON DELETE CASCADE
);
CREATE INDEX idx_task_reschedule_ti_id_id_desc ON tistate.task_reschedule (ti_id, id DESC);

-- Audit trail: one row per applied transition (and per operator override).
CREATE TABLE tistate.log (
    id                 serial CONSTRAINT log_pkey PRIMARY KEY,
    dttm               timestamptz DEFAULT now(),
    dag_id             varchar(250),
    task_id            varchar(250),
    map_index          integer,
    event              varchar(60) NOT NULL,
    logical_date       timestamptz,
    run_id             varchar(250),
    owner              varchar(500),
    owner_display_name varchar(500),
    extra              text,
    try_number         integer
);
CREATE INDEX idx_log_dttm ON tistate.log (dttm);
CREATE INDEX idx_log_event ON tistate.log (event);
CREATE INDEX idx_log_task_instance ON tistate.log (dag_id, task_id, run_id, map_index, try_number);

------------------------------------------------------------------------------------------------
-- Assets, aliases and events
------------------------------------------------------------------------------------------------
CREATE TABLE tistate.asset (
    id         serial CONSTRAINT asset_pkey PRIMARY KEY,
    name       varchar(1500) NOT NULL,
    uri        varchar(1500) NOT NULL,
    "group"    varchar(1500) NOT NULL DEFAULT '',
    extra      jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_asset_name_uri_unique ON tistate.asset (name, uri);

CREATE TABLE tistate.asset_active (
    name varchar(1500) NOT NULL,
    uri  varchar(1500) NOT NULL,
    CONSTRAINT asset_active_pkey PRIMARY KEY (name, uri),
    CONSTRAINT asset_active_asset_name_uri_fkey FOREIGN KEY (name, uri)
        REFERENCES tistate.asset (name, uri) ON DELETE CASCADE
);
CREATE UNIQUE INDEX idx_asset_active_name_unique ON tistate.asset_active (name);
CREATE UNIQUE INDEX idx_asset_active_uri_unique ON tistate.asset_active (uri);

CREATE TABLE tistate.asset_alias (
    id      serial CONSTRAINT asset_alias_pkey PRIMARY KEY,
    name    varchar(1500) NOT NULL,
    "group" varchar(1500) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_asset_alias_name_unique ON tistate.asset_alias (name);

CREATE TABLE tistate.asset_alias_asset (
    alias_id integer NOT NULL REFERENCES tistate.asset_alias (id) ON DELETE CASCADE,
    asset_id integer NOT NULL REFERENCES tistate.asset (id) ON DELETE CASCADE,
    CONSTRAINT asset_alias_asset_pkey PRIMARY KEY (alias_id, asset_id)
);
CREATE INDEX idx_asset_alias_asset_alias_id ON tistate.asset_alias_asset (alias_id);
CREATE INDEX idx_asset_alias_asset_asset_id ON tistate.asset_alias_asset (asset_id);

-- No FK to asset, by design (as in Airflow): events outlive deleted assets.
CREATE TABLE tistate.asset_event (
    id               serial CONSTRAINT asset_event_pkey PRIMARY KEY,
    asset_id         integer NOT NULL,
    extra            jsonb NOT NULL DEFAULT '{}',
    source_task_id   varchar(250),
    source_dag_id    varchar(250),
    source_run_id    varchar(250),
    source_map_index integer DEFAULT -1,
    "timestamp"      timestamptz NOT NULL DEFAULT clock_timestamp(),
    partition_key    varchar(250),
    ti_id            uuid,
    try_number       integer
);
COMMENT ON COLUMN tistate.asset_event.ti_id IS 'tistate: id of the producing task instance (NULL for manual events)';
COMMENT ON COLUMN tistate.asset_event.try_number IS 'tistate: try of the producing task instance';
CREATE INDEX idx_asset_id_timestamp ON tistate.asset_event (asset_id, "timestamp");
CREATE INDEX idx_asset_event_ti_id ON tistate.asset_event (ti_id, try_number) WHERE ti_id IS NOT NULL;

CREATE TABLE tistate.asset_alias_asset_event (
    alias_id integer NOT NULL REFERENCES tistate.asset_alias (id) ON DELETE CASCADE,
    event_id integer NOT NULL REFERENCES tistate.asset_event (id) ON DELETE CASCADE,
    CONSTRAINT asset_alias_asset_event_pkey PRIMARY KEY (alias_id, event_id)
);
CREATE INDEX idx_asset_alias_asset_event_alias_id ON tistate.asset_alias_asset_event (alias_id);
CREATE INDEX idx_asset_alias_asset_event_event_id ON tistate.asset_alias_asset_event (event_id);

CREATE TABLE tistate.asset_dag_run_queue (
    asset_id      integer NOT NULL,
    target_dag_id varchar(250) NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT assetdagrunqueue_pkey PRIMARY KEY (asset_id, target_dag_id),
    CONSTRAINT adrq_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset (id) ON DELETE CASCADE,
    CONSTRAINT adrq_dag_fkey FOREIGN KEY (target_dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);
CREATE INDEX idx_asset_dag_run_queue_target_dag_id ON tistate.asset_dag_run_queue (target_dag_id);

------------------------------------------------------------------------------------------------
-- Consumer (schedule) and producer (outlet) references
------------------------------------------------------------------------------------------------
CREATE TABLE tistate.dag_schedule_asset_reference (
    asset_id               integer NOT NULL,
    dag_id                 varchar(250) NOT NULL,
    allow_producer_teams   jsonb,
    allow_global_producers boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dsar_pkey PRIMARY KEY (asset_id, dag_id),
    CONSTRAINT dsar_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset (id) ON DELETE CASCADE,
    CONSTRAINT dsar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);
CREATE INDEX idx_dag_schedule_asset_reference_dag_id ON tistate.dag_schedule_asset_reference (dag_id);

CREATE TABLE tistate.dag_schedule_asset_alias_reference (
    alias_id   integer NOT NULL,
    dag_id     varchar(250) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dsaar_pkey PRIMARY KEY (alias_id, dag_id),
    CONSTRAINT dsaar_asset_alias_fkey FOREIGN KEY (alias_id)
        REFERENCES tistate.asset_alias (id) ON DELETE CASCADE,
    CONSTRAINT dsaar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);
CREATE INDEX idx_dag_schedule_asset_alias_reference_dag_id ON tistate.dag_schedule_asset_alias_reference (dag_id);

CREATE TABLE tistate.dag_schedule_asset_name_reference (
    name       varchar(1500) NOT NULL,
    dag_id     varchar(250) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dsanr_pkey PRIMARY KEY (name, dag_id),
    CONSTRAINT dsanr_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);
CREATE INDEX idx_dag_schedule_asset_name_reference_dag ON tistate.dag_schedule_asset_name_reference (dag_id);

CREATE TABLE tistate.dag_schedule_asset_uri_reference (
    uri        varchar(1500) NOT NULL,
    dag_id     varchar(250) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dsaur_pkey PRIMARY KEY (uri, dag_id),
    CONSTRAINT dsaur_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);
CREATE INDEX idx_dag_schedule_asset_uri_reference_dag ON tistate.dag_schedule_asset_uri_reference (dag_id);

CREATE TABLE tistate.task_outlet_asset_reference (
    asset_id               integer NOT NULL,
    dag_id                 varchar(250) NOT NULL,
    task_id                varchar(250) NOT NULL,
    allow_consumer_teams   jsonb,
    allow_global_consumers boolean NOT NULL DEFAULT true,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT toar_pkey PRIMARY KEY (asset_id, dag_id, task_id),
    CONSTRAINT toar_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset (id) ON DELETE CASCADE,
    CONSTRAINT toar_dag_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);
CREATE INDEX idx_task_outlet_asset_reference_dag_id ON tistate.task_outlet_asset_reference (dag_id);
