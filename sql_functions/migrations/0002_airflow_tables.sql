-- tistate:flavor=standalone
-- The standalone flavor's copy of Airflow 3.3.2's tables, in schema tistate: for every column the
-- functions use, name, type (json where Airflow has json), nullability and default presence are
-- Airflow's (generated from a database made by `airflow db migrate` 3.3.2 and listed in
-- tistate.airflow_column), so the functions that pass here run on Airflow's own tables. Keys,
-- unique constraints, foreign keys and indexes are Airflow's too. Columns the functions never use
-- are left out. In the airflow flavor this migration is recorded but not run.

CREATE TABLE tistate.asset (
    id                       serial,
    name                     character varying(1500) NOT NULL,
    uri                      character varying(1500) NOT NULL,
    "group"                  character varying(1500) NOT NULL,
    extra                    json NOT NULL,
    created_at               timestamp with time zone NOT NULL,
    updated_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.asset_active (
    name                     character varying(1500) NOT NULL,
    uri                      character varying(1500) NOT NULL
);

CREATE TABLE tistate.asset_alias (
    id                       serial,
    name                     character varying(1500) NOT NULL,
    "group"                  character varying(1500) NOT NULL
);

CREATE TABLE tistate.asset_alias_asset (
    alias_id                 integer NOT NULL,
    asset_id                 integer NOT NULL
);

CREATE TABLE tistate.asset_alias_asset_event (
    alias_id                 integer NOT NULL,
    event_id                 integer NOT NULL
);

CREATE TABLE tistate.asset_dag_run_queue (
    asset_id                 integer NOT NULL,
    target_dag_id            character varying(250) NOT NULL,
    created_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.asset_event (
    id                       serial,
    asset_id                 integer NOT NULL,
    extra                    json NOT NULL,
    source_task_id           character varying(250),
    source_dag_id            character varying(250),
    source_run_id            character varying(250),
    source_map_index         integer DEFAULT '-1'::integer,
    "timestamp"              timestamp with time zone NOT NULL,
    partition_key            character varying(250)
);

CREATE TABLE tistate.dag (
    dag_id                   character varying(250) NOT NULL,
    is_paused                boolean NOT NULL,
    is_stale                 boolean NOT NULL,
    last_parsed_time         timestamp with time zone,
    owners                   character varying(2000),
    description              text,
    timetable_partitioned    boolean DEFAULT false NOT NULL,
    max_active_runs          integer,
    has_import_errors        boolean DEFAULT false,
    fail_fast                boolean DEFAULT false NOT NULL
);

CREATE TABLE tistate.dag_run (
    id                       serial,
    dag_id                   character varying(250) NOT NULL,
    queued_at                timestamp with time zone,
    logical_date             timestamp with time zone,
    start_date               timestamp with time zone,
    end_date                 timestamp with time zone,
    state                    character varying(50),
    run_id                   character varying(250) NOT NULL,
    run_type                 character varying(50) NOT NULL,
    conf                     jsonb,
    run_after                timestamp with time zone NOT NULL,
    created_at               timestamp with time zone,
    updated_at               timestamp with time zone,
    clear_number             integer DEFAULT 0 NOT NULL,
    span_status              character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    partition_key            character varying(250),
    partition_date           timestamp with time zone
);

CREATE TABLE tistate.dag_schedule_asset_alias_reference (
    alias_id                 integer NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    created_at               timestamp with time zone NOT NULL,
    updated_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.dag_schedule_asset_name_reference (
    name                     character varying(1500) NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    created_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.dag_schedule_asset_reference (
    asset_id                 integer NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    allow_producer_teams     json,
    allow_global_producers   boolean DEFAULT true NOT NULL,
    created_at               timestamp with time zone NOT NULL,
    updated_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.dag_schedule_asset_uri_reference (
    uri                      character varying(1500) NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    created_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.log (
    id                       serial,
    dttm                     timestamp with time zone,
    dag_id                   character varying(250),
    task_id                  character varying(250),
    map_index                integer,
    event                    character varying(60) NOT NULL,
    logical_date             timestamp with time zone,
    run_id                   character varying(250),
    owner                    character varying(500),
    owner_display_name       character varying(500),
    extra                    text,
    try_number               integer
);

CREATE TABLE tistate.task_instance (
    id                       uuid NOT NULL,
    task_id                  character varying(250) NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    run_id                   character varying(250) NOT NULL,
    map_index                integer DEFAULT '-1'::integer NOT NULL,
    start_date               timestamp with time zone,
    end_date                 timestamp with time zone,
    duration                 double precision,
    state                    character varying(20),
    try_number               integer NOT NULL,
    max_tries                integer DEFAULT '-1'::integer NOT NULL,
    hostname                 character varying(1000),
    unixname                 character varying(1000),
    pool                     character varying(256) NOT NULL,
    pool_slots               integer NOT NULL,
    queue                    character varying(256),
    priority_weight          integer,
    operator                 character varying(1000),
    custom_operator_name     character varying(1000),
    queued_dttm              timestamp with time zone,
    scheduled_dttm           timestamp with time zone,
    queued_by_job_id         integer,
    last_heartbeat_at        timestamp with time zone,
    pid                      integer,
    executor                 character varying(1000),
    executor_config          bytea,
    updated_at               timestamp with time zone,
    rendered_map_index       character varying(250),
    context_carrier          jsonb,
    span_status              character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    external_executor_id     text,
    trigger_id               integer,
    trigger_timeout          timestamp with time zone,
    next_method              character varying(1000),
    next_kwargs              jsonb,
    task_display_name        character varying(2000),
    dag_version_id           uuid,
    retry_delay_override     double precision,
    retry_reason             character varying(500)
);

CREATE TABLE tistate.task_instance_history (
    task_instance_id         uuid NOT NULL,
    task_id                  character varying(250) NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    run_id                   character varying(250) NOT NULL,
    map_index                integer DEFAULT '-1'::integer NOT NULL,
    try_number               integer NOT NULL,
    start_date               timestamp with time zone,
    end_date                 timestamp with time zone,
    duration                 double precision,
    state                    character varying(20),
    max_tries                integer DEFAULT '-1'::integer,
    hostname                 character varying(1000),
    unixname                 character varying(1000),
    pool                     character varying(256) NOT NULL,
    pool_slots               integer NOT NULL,
    queue                    character varying(256),
    priority_weight          integer,
    operator                 character varying(1000),
    custom_operator_name     character varying(1000),
    queued_dttm              timestamp with time zone,
    scheduled_dttm           timestamp with time zone,
    queued_by_job_id         integer,
    pid                      integer,
    executor                 character varying(1000),
    executor_config          bytea,
    updated_at               timestamp with time zone,
    rendered_map_index       character varying(250),
    context_carrier          jsonb,
    span_status              character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    external_executor_id     text,
    trigger_id               integer,
    trigger_timeout          timestamp without time zone,
    next_method              character varying(1000),
    next_kwargs              jsonb,
    task_display_name        character varying(2000),
    dag_version_id           uuid,
    retry_delay_override     double precision,
    retry_reason             character varying(500)
);

CREATE TABLE tistate.task_outlet_asset_reference (
    asset_id                 integer NOT NULL,
    dag_id                   character varying(250) NOT NULL,
    task_id                  character varying(250) NOT NULL,
    allow_consumer_teams     json,
    allow_global_consumers   boolean DEFAULT true NOT NULL,
    created_at               timestamp with time zone NOT NULL,
    updated_at               timestamp with time zone NOT NULL
);

CREATE TABLE tistate.task_reschedule (
    id                       serial,
    ti_id                    uuid NOT NULL,
    start_date               timestamp with time zone NOT NULL,
    end_date                 timestamp with time zone NOT NULL,
    duration                 integer NOT NULL,
    reschedule_date          timestamp with time zone NOT NULL
);

CREATE TABLE tistate.trigger (
    id                       serial,
    classpath                character varying(1000) NOT NULL,
    kwargs                   text NOT NULL,
    created_date             timestamp with time zone NOT NULL,
    triggerer_id             integer,
    queue                    character varying(256)
);

-- Keys, foreign keys and indexes, as Airflow's.
ALTER TABLE tistate.asset_active ADD CONSTRAINT asset_active_pkey PRIMARY KEY (name, uri);
ALTER TABLE tistate.asset_alias_asset_event ADD CONSTRAINT asset_alias_asset_event_pkey PRIMARY KEY (alias_id, event_id);
ALTER TABLE tistate.asset_alias_asset ADD CONSTRAINT asset_alias_asset_pkey PRIMARY KEY (alias_id, asset_id);
ALTER TABLE tistate.asset_alias ADD CONSTRAINT asset_alias_pkey PRIMARY KEY (id);
ALTER TABLE tistate.asset_event ADD CONSTRAINT asset_event_pkey PRIMARY KEY (id);
ALTER TABLE tistate.asset ADD CONSTRAINT asset_pkey PRIMARY KEY (id);
ALTER TABLE tistate.asset_dag_run_queue ADD CONSTRAINT assetdagrunqueue_pkey PRIMARY KEY (asset_id, target_dag_id);
ALTER TABLE tistate.dag ADD CONSTRAINT dag_pkey PRIMARY KEY (dag_id);
ALTER TABLE tistate.dag_run ADD CONSTRAINT dag_run_dag_id_logical_date_key UNIQUE (dag_id, logical_date);
ALTER TABLE tistate.dag_run ADD CONSTRAINT dag_run_dag_id_run_id_key UNIQUE (dag_id, run_id);
ALTER TABLE tistate.dag_run ADD CONSTRAINT dag_run_pkey PRIMARY KEY (id);
ALTER TABLE tistate.dag_schedule_asset_alias_reference ADD CONSTRAINT dsaar_pkey PRIMARY KEY (alias_id, dag_id);
ALTER TABLE tistate.dag_schedule_asset_name_reference ADD CONSTRAINT dsanr_pkey PRIMARY KEY (name, dag_id);
ALTER TABLE tistate.dag_schedule_asset_reference ADD CONSTRAINT dsar_pkey PRIMARY KEY (asset_id, dag_id);
ALTER TABLE tistate.dag_schedule_asset_uri_reference ADD CONSTRAINT dsaur_pkey PRIMARY KEY (uri, dag_id);
ALTER TABLE tistate.log ADD CONSTRAINT log_pkey PRIMARY KEY (id);
ALTER TABLE tistate.task_instance ADD CONSTRAINT task_instance_composite_key UNIQUE (dag_id, task_id, run_id, map_index);
ALTER TABLE tistate.task_instance_history ADD CONSTRAINT task_instance_history_dtrt_uq UNIQUE (dag_id, task_id, run_id, map_index, try_number);
ALTER TABLE tistate.task_instance_history ADD CONSTRAINT task_instance_history_pkey PRIMARY KEY (task_instance_id);
ALTER TABLE tistate.task_instance ADD CONSTRAINT task_instance_pkey PRIMARY KEY (id);
ALTER TABLE tistate.task_reschedule ADD CONSTRAINT task_reschedule_pkey PRIMARY KEY (id);
ALTER TABLE tistate.task_outlet_asset_reference ADD CONSTRAINT toar_pkey PRIMARY KEY (asset_id, dag_id, task_id);
ALTER TABLE tistate.trigger ADD CONSTRAINT trigger_pkey PRIMARY KEY (id);
CREATE UNIQUE INDEX idx_asset_active_name_unique ON tistate.asset_active USING btree (name);
CREATE UNIQUE INDEX idx_asset_active_uri_unique ON tistate.asset_active USING btree (uri);
CREATE INDEX idx_asset_alias_asset_alias_id ON tistate.asset_alias_asset USING btree (alias_id);
CREATE INDEX idx_asset_alias_asset_asset_id ON tistate.asset_alias_asset USING btree (asset_id);
CREATE INDEX idx_asset_alias_asset_event_alias_id ON tistate.asset_alias_asset_event USING btree (alias_id);
CREATE INDEX idx_asset_alias_asset_event_event_id ON tistate.asset_alias_asset_event USING btree (event_id);
CREATE UNIQUE INDEX idx_asset_alias_name_unique ON tistate.asset_alias USING btree (name);
CREATE INDEX idx_asset_dag_run_queue_target_dag_id ON tistate.asset_dag_run_queue USING btree (target_dag_id);
CREATE INDEX idx_asset_id_timestamp ON tistate.asset_event USING btree (asset_id, "timestamp");
CREATE UNIQUE INDEX idx_asset_name_uri_unique ON tistate.asset USING btree (name, uri);
CREATE INDEX idx_dag_run_queued_dags ON tistate.dag_run USING btree (state, dag_id) WHERE ((state)::text = 'queued'::text);
CREATE INDEX idx_dag_run_running_dags ON tistate.dag_run USING btree (state, dag_id) WHERE ((state)::text = 'running'::text);
CREATE INDEX idx_dag_schedule_asset_alias_reference_dag_id ON tistate.dag_schedule_asset_alias_reference USING btree (dag_id);
CREATE INDEX idx_dag_schedule_asset_name_reference_dag ON tistate.dag_schedule_asset_name_reference USING btree (dag_id);
CREATE INDEX idx_dag_schedule_asset_reference_dag_id ON tistate.dag_schedule_asset_reference USING btree (dag_id);
CREATE INDEX idx_dag_schedule_asset_uri_reference_dag ON tistate.dag_schedule_asset_uri_reference USING btree (dag_id);
CREATE INDEX idx_log_dttm ON tistate.log USING btree (dttm);
CREATE INDEX idx_log_event ON tistate.log USING btree (event);
CREATE INDEX idx_log_task_instance ON tistate.log USING btree (dag_id, task_id, run_id, map_index, try_number);
CREATE INDEX idx_task_outlet_asset_reference_dag_id ON tistate.task_outlet_asset_reference USING btree (dag_id);
CREATE INDEX idx_task_reschedule_ti_id_id_desc ON tistate.task_reschedule USING btree (ti_id, id DESC);
CREATE INDEX idx_tih_dag_run ON tistate.task_instance_history USING btree (dag_id, run_id);
CREATE INDEX ti_dag_run ON tistate.task_instance USING btree (dag_id, run_id);
CREATE INDEX ti_dag_state ON tistate.task_instance USING btree (dag_id, state);
CREATE INDEX ti_heartbeat ON tistate.task_instance USING btree (last_heartbeat_at);
CREATE INDEX ti_pool ON tistate.task_instance USING btree (pool, state, priority_weight);
CREATE INDEX ti_state ON tistate.task_instance USING btree (state);
CREATE INDEX ti_state_lkp ON tistate.task_instance USING btree (dag_id, task_id, run_id, state);
CREATE INDEX ti_trigger_id ON tistate.task_instance USING btree (trigger_id);
ALTER TABLE tistate.asset_dag_run_queue ADD CONSTRAINT adrq_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;
ALTER TABLE tistate.asset_dag_run_queue ADD CONSTRAINT adrq_dag_fkey FOREIGN KEY (target_dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;
ALTER TABLE tistate.asset_active ADD CONSTRAINT asset_active_asset_name_uri_fkey FOREIGN KEY (name, uri) REFERENCES tistate.asset(name, uri) ON DELETE CASCADE;
ALTER TABLE tistate.asset_alias_asset ADD CONSTRAINT asset_alias_asset_alias_id_fkey FOREIGN KEY (alias_id) REFERENCES tistate.asset_alias(id) ON DELETE CASCADE;
ALTER TABLE tistate.asset_alias_asset ADD CONSTRAINT asset_alias_asset_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;
ALTER TABLE tistate.asset_alias_asset_event ADD CONSTRAINT asset_alias_asset_event_alias_id_fkey FOREIGN KEY (alias_id) REFERENCES tistate.asset_alias(id) ON DELETE CASCADE;
ALTER TABLE tistate.asset_alias_asset_event ADD CONSTRAINT asset_alias_asset_event_event_id_fkey FOREIGN KEY (event_id) REFERENCES tistate.asset_event(id) ON DELETE CASCADE;
ALTER TABLE tistate.dag_schedule_asset_alias_reference ADD CONSTRAINT dsaar_asset_alias_fkey FOREIGN KEY (alias_id) REFERENCES tistate.asset_alias(id) ON DELETE CASCADE;
ALTER TABLE tistate.dag_schedule_asset_alias_reference ADD CONSTRAINT dsaar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;
ALTER TABLE tistate.dag_schedule_asset_name_reference ADD CONSTRAINT dsanr_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;
ALTER TABLE tistate.dag_schedule_asset_reference ADD CONSTRAINT dsar_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;
ALTER TABLE tistate.dag_schedule_asset_reference ADD CONSTRAINT dsar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;
ALTER TABLE tistate.dag_schedule_asset_uri_reference ADD CONSTRAINT dsaur_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;
ALTER TABLE tistate.task_instance ADD CONSTRAINT task_instance_dag_run_fkey FOREIGN KEY (dag_id, run_id) REFERENCES tistate.dag_run(dag_id, run_id) ON DELETE CASCADE;
ALTER TABLE tistate.task_instance_history ADD CONSTRAINT task_instance_history_ti_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index) REFERENCES tistate.task_instance(dag_id, task_id, run_id, map_index) ON UPDATE CASCADE ON DELETE CASCADE;
ALTER TABLE tistate.task_instance ADD CONSTRAINT task_instance_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES tistate.trigger(id) ON DELETE CASCADE;
ALTER TABLE tistate.task_reschedule ADD CONSTRAINT task_reschedule_ti_fkey FOREIGN KEY (ti_id) REFERENCES tistate.task_instance(id) ON DELETE CASCADE;
ALTER TABLE tistate.task_outlet_asset_reference ADD CONSTRAINT toar_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;
ALTER TABLE tistate.task_outlet_asset_reference ADD CONSTRAINT toar_dag_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;

-- Not an Airflow table: task definitions, which Airflow keeps in the serialized DAG. tistate needs
-- them to create a run's task instances and to know max_tries, pool and teardown status.
CREATE TABLE tistate.dag_task (
    dag_id          varchar(250) NOT NULL,
    task_id         varchar(250) NOT NULL,
    max_tries       integer NOT NULL DEFAULT 0,
    pool            varchar(256) NOT NULL DEFAULT 'default_pool',
    pool_slots      integer NOT NULL DEFAULT 1,
    queue           varchar(256) NOT NULL DEFAULT 'default',
    priority_weight integer NOT NULL DEFAULT 1,
    operator        varchar(1000),
    is_teardown     boolean NOT NULL DEFAULT false,
    outlets         jsonb NOT NULL DEFAULT '[]',
    CONSTRAINT dag_task_pkey PRIMARY KEY (dag_id, task_id),
    CONSTRAINT dag_task_dag_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag (dag_id) ON DELETE CASCADE
);

