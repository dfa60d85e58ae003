--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: tistate; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA tistate;


--
-- Name: SCHEMA tistate; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA tistate IS 'tistate: task-instance state transitions and asset events (Airflow 3 data model)';


--
-- Name: _planned_event; Type: TYPE; Schema: tistate; Owner: -
--

CREATE TYPE tistate._planned_event AS (
	event_id integer,
	asset_id integer,
	extra jsonb,
	partition_key text,
	alias_ids integer[]
);


--
-- Name: _ti_row; Type: TYPE; Schema: tistate; Owner: -
--

CREATE TYPE tistate._ti_row AS (
	id uuid,
	task_id text,
	dag_id text,
	run_id text,
	map_index integer,
	state text,
	try_number integer,
	hostname text,
	unixname text,
	pid integer,
	start_date timestamp with time zone,
	rendered_map_index text,
	next_kwargs jsonb
);


--
-- Name: _ti_context; Type: TYPE; Schema: tistate; Owner: -
--

CREATE TYPE tistate._ti_context AS (
	ti tistate._ti_row,
	logical_date timestamp with time zone,
	owners text,
	fail_fast boolean,
	run_partition_key text
);


--
-- Name: asset_event_result; Type: TYPE; Schema: tistate; Owner: -
--

CREATE TYPE tistate.asset_event_result AS (
	asset_event_id integer,
	asset_id integer,
	queued_dag_ids text[]
);


--
-- Name: TYPE asset_event_result; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TYPE tistate.asset_event_result IS 'Result of emit_asset_event: the new event, its asset, and the consumer DAGs queued in asset_dag_run_queue';


--
-- Name: state_update_result; Type: TYPE; Schema: tistate; Owner: -
--

CREATE TYPE tistate.state_update_result AS (
	ti_id uuid,
	previous_state text,
	new_state text,
	applied boolean,
	new_ti_id uuid,
	asset_event_ids integer[],
	queued_dag_ids text[],
	lock_wait_ms double precision,
	lock_held_ms double precision
);


--
-- Name: TYPE state_update_result; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TYPE tistate.state_update_result IS 'Result of ti_update_state: applied=false for the same-state no-op; new_ti_id set on up_for_retry; lock_wait_ms / lock_held_ms time the row lock up to the function''s return (commit adds one WAL flush)';


--
-- Name: ti_state; Type: TYPE; Schema: tistate; Owner: -
--

CREATE TYPE tistate.ti_state AS ENUM (
    'scheduled',
    'queued',
    'running',
    'success',
    'failed',
    'skipped',
    'upstream_failed',
    'removed',
    'up_for_retry',
    'up_for_reschedule',
    'deferred',
    'restarting'
);


--
-- Name: TYPE ti_state; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TYPE tistate.ti_state IS 'The task-instance states (Airflow''s TaskInstanceState); NULL, shown as none, is no state';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: airflow_column; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.airflow_column (
    table_name name NOT NULL,
    column_name name NOT NULL,
    data_type text NOT NULL,
    not_null boolean NOT NULL,
    has_default boolean NOT NULL
);


--
-- Name: TABLE airflow_column; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TABLE tistate.airflow_column IS 'The columns of Airflow''s tables that tistate''s functions use, as Airflow 3.3.2 defines them (the fingerprint checked at install, by db verify and by /ready)';


--
-- Name: airflow_grant; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.airflow_grant (
    table_name name NOT NULL,
    privilege text NOT NULL,
    on_column name,
    CONSTRAINT airflow_grant_privilege_check CHECK ((privilege = ANY (ARRAY['SELECT'::text, 'INSERT'::text, 'UPDATE'::text, 'DELETE'::text, 'USAGE'::text])))
);


--
-- Name: TABLE airflow_grant; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TABLE tistate.airflow_grant IS 'Airflow mode: the rights tistate_owner holds on Airflow''s tables and sequences (USAGE: a sequence)';


--
-- Name: airflow_revision; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.airflow_revision (
    revision text NOT NULL,
    airflow text NOT NULL
);


--
-- Name: asset; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset (
    id integer NOT NULL,
    name character varying(1500) NOT NULL,
    uri character varying(1500) NOT NULL,
    "group" character varying(1500) NOT NULL,
    extra json NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: asset_active; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_active (
    name character varying(1500) NOT NULL,
    uri character varying(1500) NOT NULL
);


--
-- Name: asset_alias; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_alias (
    id integer NOT NULL,
    name character varying(1500) NOT NULL,
    "group" character varying(1500) NOT NULL
);


--
-- Name: asset_alias_asset; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_alias_asset (
    alias_id integer NOT NULL,
    asset_id integer NOT NULL
);


--
-- Name: asset_alias_asset_event; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_alias_asset_event (
    alias_id integer NOT NULL,
    event_id integer NOT NULL
);


--
-- Name: asset_alias_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.asset_alias_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_alias_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.asset_alias_id_seq OWNED BY tistate.asset_alias.id;


--
-- Name: asset_dag_run_queue; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_dag_run_queue (
    asset_id integer NOT NULL,
    target_dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: asset_event; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_event (
    id integer NOT NULL,
    asset_id integer NOT NULL,
    extra json NOT NULL,
    source_task_id character varying(250),
    source_dag_id character varying(250),
    source_run_id character varying(250),
    source_map_index integer DEFAULT '-1'::integer,
    "timestamp" timestamp with time zone NOT NULL,
    partition_key character varying(250)
);


--
-- Name: asset_event_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.asset_event_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_event_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.asset_event_id_seq OWNED BY tistate.asset_event.id;


--
-- Name: asset_event_outbox; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_event_outbox (
    event_ids integer[] NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);


--
-- Name: TABLE asset_event_outbox; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TABLE tistate.asset_event_outbox IS 'Asset events to announce on tistate_events once committed (tistate.notify_events = relay); drained by tistate.relay_notifications()';


--
-- Name: asset_event_producer; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.asset_event_producer (
    event_id integer NOT NULL,
    ti_id uuid NOT NULL,
    try_number integer NOT NULL
);


--
-- Name: TABLE asset_event_producer; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TABLE tistate.asset_event_producer IS 'Producer attribution of asset events: the task instance id and try that registered each event (no row for manual events)';


--
-- Name: asset_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.asset_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: asset_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.asset_id_seq OWNED BY tistate.asset.id;


--
-- Name: dag; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag (
    dag_id character varying(250) NOT NULL,
    is_paused boolean NOT NULL,
    is_stale boolean NOT NULL,
    last_parsed_time timestamp with time zone,
    owners character varying(2000),
    description text,
    timetable_partitioned boolean DEFAULT false NOT NULL,
    max_active_runs integer,
    has_import_errors boolean DEFAULT false,
    fail_fast boolean DEFAULT false NOT NULL
);


--
-- Name: dag_run; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag_run (
    id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    queued_at timestamp with time zone,
    logical_date timestamp with time zone,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    state character varying(50),
    run_id character varying(250) NOT NULL,
    run_type character varying(50) NOT NULL,
    conf jsonb,
    run_after timestamp with time zone NOT NULL,
    created_at timestamp with time zone,
    updated_at timestamp with time zone,
    clear_number integer DEFAULT 0 NOT NULL,
    span_status character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    partition_key character varying(250),
    partition_date timestamp with time zone
);


--
-- Name: dag_run_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.dag_run_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: dag_run_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.dag_run_id_seq OWNED BY tistate.dag_run.id;


--
-- Name: dag_schedule_asset_alias_reference; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag_schedule_asset_alias_reference (
    alias_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: dag_schedule_asset_name_reference; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag_schedule_asset_name_reference (
    name character varying(1500) NOT NULL,
    dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: dag_schedule_asset_reference; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag_schedule_asset_reference (
    asset_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    allow_producer_teams json,
    allow_global_producers boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: dag_schedule_asset_uri_reference; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag_schedule_asset_uri_reference (
    uri character varying(1500) NOT NULL,
    dag_id character varying(250) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: dag_task; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.dag_task (
    dag_id character varying(250) NOT NULL,
    task_id character varying(250) NOT NULL,
    max_tries integer DEFAULT 0 NOT NULL,
    pool character varying(256) DEFAULT 'default_pool'::character varying NOT NULL,
    pool_slots integer DEFAULT 1 NOT NULL,
    queue character varying(256) DEFAULT 'default'::character varying NOT NULL,
    priority_weight integer DEFAULT 1 NOT NULL,
    operator character varying(1000),
    is_teardown boolean DEFAULT false NOT NULL,
    outlets jsonb DEFAULT '[]'::jsonb NOT NULL
);


--
-- Name: installation; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.installation (
    singleton boolean DEFAULT true NOT NULL,
    flavor text NOT NULL,
    airflow_schema name,
    installed_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT installation_check CHECK (((flavor = 'airflow'::text) = (airflow_schema IS NOT NULL))),
    CONSTRAINT installation_flavor_check CHECK ((flavor = ANY (ARRAY['standalone'::text, 'airflow'::text]))),
    CONSTRAINT installation_singleton_check CHECK (singleton)
);


--
-- Name: TABLE installation; Type: COMMENT; Schema: tistate; Owner: -
--

COMMENT ON TABLE tistate.installation IS 'The flavor tistate was installed as: standalone (its own copy of Airflow''s tables) or airflow (Airflow''s tables in airflow_schema)';


--
-- Name: log; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.log (
    id integer NOT NULL,
    dttm timestamp with time zone,
    dag_id character varying(250),
    task_id character varying(250),
    map_index integer,
    event character varying(60) NOT NULL,
    logical_date timestamp with time zone,
    run_id character varying(250),
    owner character varying(500),
    owner_display_name character varying(500),
    extra text,
    try_number integer
);


--
-- Name: log_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: log_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.log_id_seq OWNED BY tistate.log.id;


--
-- Name: schema_migrations; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);


--
-- Name: task_instance; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.task_instance (
    id uuid NOT NULL,
    task_id character varying(250) NOT NULL,
    dag_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    duration double precision,
    state character varying(20),
    try_number integer NOT NULL,
    max_tries integer DEFAULT '-1'::integer NOT NULL,
    hostname character varying(1000),
    unixname character varying(1000),
    pool character varying(256) NOT NULL,
    pool_slots integer NOT NULL,
    queue character varying(256),
    priority_weight integer,
    operator character varying(1000),
    custom_operator_name character varying(1000),
    queued_dttm timestamp with time zone,
    scheduled_dttm timestamp with time zone,
    queued_by_job_id integer,
    last_heartbeat_at timestamp with time zone,
    pid integer,
    executor character varying(1000),
    executor_config bytea,
    updated_at timestamp with time zone,
    rendered_map_index character varying(250),
    context_carrier jsonb,
    span_status character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    external_executor_id text,
    trigger_id integer,
    trigger_timeout timestamp with time zone,
    next_method character varying(1000),
    next_kwargs jsonb,
    task_display_name character varying(2000),
    dag_version_id uuid,
    retry_delay_override double precision,
    retry_reason character varying(500)
);


--
-- Name: task_instance_history; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.task_instance_history (
    task_instance_id uuid NOT NULL,
    task_id character varying(250) NOT NULL,
    dag_id character varying(250) NOT NULL,
    run_id character varying(250) NOT NULL,
    map_index integer DEFAULT '-1'::integer NOT NULL,
    try_number integer NOT NULL,
    start_date timestamp with time zone,
    end_date timestamp with time zone,
    duration double precision,
    state character varying(20),
    max_tries integer DEFAULT '-1'::integer,
    hostname character varying(1000),
    unixname character varying(1000),
    pool character varying(256) NOT NULL,
    pool_slots integer NOT NULL,
    queue character varying(256),
    priority_weight integer,
    operator character varying(1000),
    custom_operator_name character varying(1000),
    queued_dttm timestamp with time zone,
    scheduled_dttm timestamp with time zone,
    queued_by_job_id integer,
    pid integer,
    executor character varying(1000),
    executor_config bytea,
    updated_at timestamp with time zone,
    rendered_map_index character varying(250),
    context_carrier jsonb,
    span_status character varying(250) DEFAULT 'not_started'::character varying NOT NULL,
    external_executor_id text,
    trigger_id integer,
    trigger_timeout timestamp without time zone,
    next_method character varying(1000),
    next_kwargs jsonb,
    task_display_name character varying(2000),
    dag_version_id uuid,
    retry_delay_override double precision,
    retry_reason character varying(500)
);


--
-- Name: task_outlet_asset_reference; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.task_outlet_asset_reference (
    asset_id integer NOT NULL,
    dag_id character varying(250) NOT NULL,
    task_id character varying(250) NOT NULL,
    allow_consumer_teams json,
    allow_global_consumers boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: task_reschedule; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.task_reschedule (
    id integer NOT NULL,
    ti_id uuid NOT NULL,
    start_date timestamp with time zone NOT NULL,
    end_date timestamp with time zone NOT NULL,
    duration integer NOT NULL,
    reschedule_date timestamp with time zone NOT NULL
);


--
-- Name: task_reschedule_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.task_reschedule_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: task_reschedule_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.task_reschedule_id_seq OWNED BY tistate.task_reschedule.id;


--
-- Name: trigger; Type: TABLE; Schema: tistate; Owner: -
--

CREATE TABLE tistate.trigger (
    id integer NOT NULL,
    classpath character varying(1000) NOT NULL,
    kwargs text NOT NULL,
    created_date timestamp with time zone NOT NULL,
    triggerer_id integer,
    queue character varying(256)
);


--
-- Name: trigger_id_seq; Type: SEQUENCE; Schema: tistate; Owner: -
--

CREATE SEQUENCE tistate.trigger_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: trigger_id_seq; Type: SEQUENCE OWNED BY; Schema: tistate; Owner: -
--

ALTER SEQUENCE tistate.trigger_id_seq OWNED BY tistate.trigger.id;


--
-- Name: asset id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset ALTER COLUMN id SET DEFAULT nextval('tistate.asset_id_seq'::regclass);


--
-- Name: asset_alias id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias ALTER COLUMN id SET DEFAULT nextval('tistate.asset_alias_id_seq'::regclass);


--
-- Name: asset_event id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_event ALTER COLUMN id SET DEFAULT nextval('tistate.asset_event_id_seq'::regclass);


--
-- Name: dag_run id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_run ALTER COLUMN id SET DEFAULT nextval('tistate.dag_run_id_seq'::regclass);


--
-- Name: log id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.log ALTER COLUMN id SET DEFAULT nextval('tistate.log_id_seq'::regclass);


--
-- Name: task_reschedule id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_reschedule ALTER COLUMN id SET DEFAULT nextval('tistate.task_reschedule_id_seq'::regclass);


--
-- Name: trigger id; Type: DEFAULT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.trigger ALTER COLUMN id SET DEFAULT nextval('tistate.trigger_id_seq'::regclass);


--
-- Name: airflow_column airflow_column_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.airflow_column
    ADD CONSTRAINT airflow_column_pkey PRIMARY KEY (table_name, column_name);


--
-- Name: airflow_grant airflow_grant_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.airflow_grant
    ADD CONSTRAINT airflow_grant_pkey PRIMARY KEY (table_name, privilege);


--
-- Name: airflow_revision airflow_revision_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.airflow_revision
    ADD CONSTRAINT airflow_revision_pkey PRIMARY KEY (revision);


--
-- Name: asset_active asset_active_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_active
    ADD CONSTRAINT asset_active_pkey PRIMARY KEY (name, uri);


--
-- Name: asset_alias_asset_event asset_alias_asset_event_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias_asset_event
    ADD CONSTRAINT asset_alias_asset_event_pkey PRIMARY KEY (alias_id, event_id);


--
-- Name: asset_alias_asset asset_alias_asset_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias_asset
    ADD CONSTRAINT asset_alias_asset_pkey PRIMARY KEY (alias_id, asset_id);


--
-- Name: asset_alias asset_alias_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias
    ADD CONSTRAINT asset_alias_pkey PRIMARY KEY (id);


--
-- Name: asset_event asset_event_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_event
    ADD CONSTRAINT asset_event_pkey PRIMARY KEY (id);


--
-- Name: asset_event_producer asset_event_producer_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_event_producer
    ADD CONSTRAINT asset_event_producer_pkey PRIMARY KEY (event_id);


--
-- Name: asset asset_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset
    ADD CONSTRAINT asset_pkey PRIMARY KEY (id);


--
-- Name: asset_dag_run_queue assetdagrunqueue_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_dag_run_queue
    ADD CONSTRAINT assetdagrunqueue_pkey PRIMARY KEY (asset_id, target_dag_id);


--
-- Name: dag dag_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag
    ADD CONSTRAINT dag_pkey PRIMARY KEY (dag_id);


--
-- Name: dag_run dag_run_dag_id_logical_date_key; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_run
    ADD CONSTRAINT dag_run_dag_id_logical_date_key UNIQUE (dag_id, logical_date);


--
-- Name: dag_run dag_run_dag_id_run_id_key; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_run
    ADD CONSTRAINT dag_run_dag_id_run_id_key UNIQUE (dag_id, run_id);


--
-- Name: dag_run dag_run_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_run
    ADD CONSTRAINT dag_run_pkey PRIMARY KEY (id);


--
-- Name: dag_task dag_task_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_task
    ADD CONSTRAINT dag_task_pkey PRIMARY KEY (dag_id, task_id);


--
-- Name: dag_schedule_asset_alias_reference dsaar_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_alias_reference
    ADD CONSTRAINT dsaar_pkey PRIMARY KEY (alias_id, dag_id);


--
-- Name: dag_schedule_asset_name_reference dsanr_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_name_reference
    ADD CONSTRAINT dsanr_pkey PRIMARY KEY (name, dag_id);


--
-- Name: dag_schedule_asset_reference dsar_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_reference
    ADD CONSTRAINT dsar_pkey PRIMARY KEY (asset_id, dag_id);


--
-- Name: dag_schedule_asset_uri_reference dsaur_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_uri_reference
    ADD CONSTRAINT dsaur_pkey PRIMARY KEY (uri, dag_id);


--
-- Name: installation installation_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.installation
    ADD CONSTRAINT installation_pkey PRIMARY KEY (singleton);


--
-- Name: log log_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.log
    ADD CONSTRAINT log_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: task_instance task_instance_composite_key; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance
    ADD CONSTRAINT task_instance_composite_key UNIQUE (dag_id, task_id, run_id, map_index);


--
-- Name: task_instance_history task_instance_history_dtrt_uq; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance_history
    ADD CONSTRAINT task_instance_history_dtrt_uq UNIQUE (dag_id, task_id, run_id, map_index, try_number);


--
-- Name: task_instance_history task_instance_history_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance_history
    ADD CONSTRAINT task_instance_history_pkey PRIMARY KEY (task_instance_id);


--
-- Name: task_instance task_instance_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance
    ADD CONSTRAINT task_instance_pkey PRIMARY KEY (id);


--
-- Name: task_reschedule task_reschedule_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_reschedule
    ADD CONSTRAINT task_reschedule_pkey PRIMARY KEY (id);


--
-- Name: task_outlet_asset_reference toar_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_outlet_asset_reference
    ADD CONSTRAINT toar_pkey PRIMARY KEY (asset_id, dag_id, task_id);


--
-- Name: trigger trigger_pkey; Type: CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.trigger
    ADD CONSTRAINT trigger_pkey PRIMARY KEY (id);


--
-- Name: asset_event_producer_ti; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX asset_event_producer_ti ON tistate.asset_event_producer USING btree (ti_id, try_number);


--
-- Name: idx_asset_active_name_unique; Type: INDEX; Schema: tistate; Owner: -
--

CREATE UNIQUE INDEX idx_asset_active_name_unique ON tistate.asset_active USING btree (name);


--
-- Name: idx_asset_active_uri_unique; Type: INDEX; Schema: tistate; Owner: -
--

CREATE UNIQUE INDEX idx_asset_active_uri_unique ON tistate.asset_active USING btree (uri);


--
-- Name: idx_asset_alias_asset_alias_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_asset_alias_asset_alias_id ON tistate.asset_alias_asset USING btree (alias_id);


--
-- Name: idx_asset_alias_asset_asset_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_asset_alias_asset_asset_id ON tistate.asset_alias_asset USING btree (asset_id);


--
-- Name: idx_asset_alias_asset_event_alias_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_asset_alias_asset_event_alias_id ON tistate.asset_alias_asset_event USING btree (alias_id);


--
-- Name: idx_asset_alias_asset_event_event_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_asset_alias_asset_event_event_id ON tistate.asset_alias_asset_event USING btree (event_id);


--
-- Name: idx_asset_alias_name_unique; Type: INDEX; Schema: tistate; Owner: -
--

CREATE UNIQUE INDEX idx_asset_alias_name_unique ON tistate.asset_alias USING btree (name);


--
-- Name: idx_asset_dag_run_queue_target_dag_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_asset_dag_run_queue_target_dag_id ON tistate.asset_dag_run_queue USING btree (target_dag_id);


--
-- Name: idx_asset_id_timestamp; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_asset_id_timestamp ON tistate.asset_event USING btree (asset_id, "timestamp");


--
-- Name: idx_asset_name_uri_unique; Type: INDEX; Schema: tistate; Owner: -
--

CREATE UNIQUE INDEX idx_asset_name_uri_unique ON tistate.asset USING btree (name, uri);


--
-- Name: idx_dag_run_queued_dags; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_dag_run_queued_dags ON tistate.dag_run USING btree (state, dag_id) WHERE ((state)::text = 'queued'::text);


--
-- Name: idx_dag_run_running_dags; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_dag_run_running_dags ON tistate.dag_run USING btree (state, dag_id) WHERE ((state)::text = 'running'::text);


--
-- Name: idx_dag_schedule_asset_alias_reference_dag_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_alias_reference_dag_id ON tistate.dag_schedule_asset_alias_reference USING btree (dag_id);


--
-- Name: idx_dag_schedule_asset_name_reference_dag; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_name_reference_dag ON tistate.dag_schedule_asset_name_reference USING btree (dag_id);


--
-- Name: idx_dag_schedule_asset_reference_dag_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_reference_dag_id ON tistate.dag_schedule_asset_reference USING btree (dag_id);


--
-- Name: idx_dag_schedule_asset_uri_reference_dag; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_dag_schedule_asset_uri_reference_dag ON tistate.dag_schedule_asset_uri_reference USING btree (dag_id);


--
-- Name: idx_log_dttm; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_log_dttm ON tistate.log USING btree (dttm);


--
-- Name: idx_log_event; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_log_event ON tistate.log USING btree (event);


--
-- Name: idx_log_task_instance; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_log_task_instance ON tistate.log USING btree (dag_id, task_id, run_id, map_index, try_number);


--
-- Name: idx_task_outlet_asset_reference_dag_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_task_outlet_asset_reference_dag_id ON tistate.task_outlet_asset_reference USING btree (dag_id);


--
-- Name: idx_task_reschedule_ti_id_id_desc; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_task_reschedule_ti_id_id_desc ON tistate.task_reschedule USING btree (ti_id, id DESC);


--
-- Name: idx_tih_dag_run; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX idx_tih_dag_run ON tistate.task_instance_history USING btree (dag_id, run_id);


--
-- Name: ti_dag_run; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_dag_run ON tistate.task_instance USING btree (dag_id, run_id);


--
-- Name: ti_dag_state; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_dag_state ON tistate.task_instance USING btree (dag_id, state);


--
-- Name: ti_heartbeat; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_heartbeat ON tistate.task_instance USING btree (last_heartbeat_at);


--
-- Name: ti_pool; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_pool ON tistate.task_instance USING btree (pool, state, priority_weight);


--
-- Name: ti_state; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_state ON tistate.task_instance USING btree (state);


--
-- Name: ti_state_lkp; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_state_lkp ON tistate.task_instance USING btree (dag_id, task_id, run_id, state);


--
-- Name: ti_trigger_id; Type: INDEX; Schema: tistate; Owner: -
--

CREATE INDEX ti_trigger_id ON tistate.task_instance USING btree (trigger_id);


--
-- Name: asset_dag_run_queue adrq_asset_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_dag_run_queue
    ADD CONSTRAINT adrq_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;


--
-- Name: asset_dag_run_queue adrq_dag_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_dag_run_queue
    ADD CONSTRAINT adrq_dag_fkey FOREIGN KEY (target_dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: asset_active asset_active_asset_name_uri_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_active
    ADD CONSTRAINT asset_active_asset_name_uri_fkey FOREIGN KEY (name, uri) REFERENCES tistate.asset(name, uri) ON DELETE CASCADE;


--
-- Name: asset_alias_asset asset_alias_asset_alias_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias_asset
    ADD CONSTRAINT asset_alias_asset_alias_id_fkey FOREIGN KEY (alias_id) REFERENCES tistate.asset_alias(id) ON DELETE CASCADE;


--
-- Name: asset_alias_asset asset_alias_asset_asset_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias_asset
    ADD CONSTRAINT asset_alias_asset_asset_id_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;


--
-- Name: asset_alias_asset_event asset_alias_asset_event_alias_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias_asset_event
    ADD CONSTRAINT asset_alias_asset_event_alias_id_fkey FOREIGN KEY (alias_id) REFERENCES tistate.asset_alias(id) ON DELETE CASCADE;


--
-- Name: asset_alias_asset_event asset_alias_asset_event_event_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.asset_alias_asset_event
    ADD CONSTRAINT asset_alias_asset_event_event_id_fkey FOREIGN KEY (event_id) REFERENCES tistate.asset_event(id) ON DELETE CASCADE;


--
-- Name: dag_task dag_task_dag_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_task
    ADD CONSTRAINT dag_task_dag_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: dag_schedule_asset_alias_reference dsaar_asset_alias_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_alias_reference
    ADD CONSTRAINT dsaar_asset_alias_fkey FOREIGN KEY (alias_id) REFERENCES tistate.asset_alias(id) ON DELETE CASCADE;


--
-- Name: dag_schedule_asset_alias_reference dsaar_dag_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_alias_reference
    ADD CONSTRAINT dsaar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: dag_schedule_asset_name_reference dsanr_dag_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_name_reference
    ADD CONSTRAINT dsanr_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: dag_schedule_asset_reference dsar_asset_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_reference
    ADD CONSTRAINT dsar_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;


--
-- Name: dag_schedule_asset_reference dsar_dag_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_reference
    ADD CONSTRAINT dsar_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: dag_schedule_asset_uri_reference dsaur_dag_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.dag_schedule_asset_uri_reference
    ADD CONSTRAINT dsaur_dag_id_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: task_instance task_instance_dag_run_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance
    ADD CONSTRAINT task_instance_dag_run_fkey FOREIGN KEY (dag_id, run_id) REFERENCES tistate.dag_run(dag_id, run_id) ON DELETE CASCADE;


--
-- Name: task_instance_history task_instance_history_ti_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance_history
    ADD CONSTRAINT task_instance_history_ti_fkey FOREIGN KEY (dag_id, task_id, run_id, map_index) REFERENCES tistate.task_instance(dag_id, task_id, run_id, map_index) ON UPDATE CASCADE ON DELETE CASCADE;


--
-- Name: task_instance task_instance_trigger_id_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_instance
    ADD CONSTRAINT task_instance_trigger_id_fkey FOREIGN KEY (trigger_id) REFERENCES tistate.trigger(id) ON DELETE CASCADE;


--
-- Name: task_reschedule task_reschedule_ti_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_reschedule
    ADD CONSTRAINT task_reschedule_ti_fkey FOREIGN KEY (ti_id) REFERENCES tistate.task_instance(id) ON DELETE CASCADE;


--
-- Name: task_outlet_asset_reference toar_asset_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_outlet_asset_reference
    ADD CONSTRAINT toar_asset_fkey FOREIGN KEY (asset_id) REFERENCES tistate.asset(id) ON DELETE CASCADE;


--
-- Name: task_outlet_asset_reference toar_dag_fkey; Type: FK CONSTRAINT; Schema: tistate; Owner: -
--

ALTER TABLE ONLY tistate.task_outlet_asset_reference
    ADD CONSTRAINT toar_dag_fkey FOREIGN KEY (dag_id) REFERENCES tistate.dag(dag_id) ON DELETE CASCADE;


--
-- Name: SCHEMA tistate; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA tistate TO tistate_executor;
GRANT USAGE ON SCHEMA tistate TO tistate_operator;


--
-- PostgreSQL database dump complete
--
