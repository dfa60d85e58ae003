-- Test setup for both flavors: schema tistate_test, installed into each test template database.
--
-- Tests build their world (DAGs, runs, task instances) through tistate_test.define_dag and
-- tistate_test.create_dag_run. In the standalone flavor they are tistate's own functions. In the
-- airflow flavor tistate refuses them (the DAG processor and the scheduler own those rows), so
-- here they write the rows Airflow's DAG processor and scheduler write for the same document:
-- dag (with its bundle), dag_version, serialized_dag (tasks with retries, is_teardown and outlets
-- in Airflow's serialization), assets, active assets, aliases and references; dag_run and its
-- queued task instances. Only test setup: the transitions under test run tistate's functions, and
-- tests/test_airflow_scheduler.py proves with Airflow's own scheduler that real rows work too.

CREATE SCHEMA tistate_test;
SET search_path = tistate, public;

CREATE FUNCTION tistate_test.is_airflow()
RETURNS boolean
LANGUAGE sql
STABLE
AS $$
    SELECT flavor = 'airflow' FROM tistate.installation
$$;

CREATE FUNCTION tistate_test.define_dag(p_dag jsonb)
RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_dag_id   text := p_dag ->> 'dag_id';
    v_schedule jsonb := coalesce(p_dag -> 'schedule', '{}');
    v_tasks    jsonb := coalesce(p_dag -> 'tasks', '[]');
    v_assets   jsonb;
    v_aliases  text[];
    v_version  uuid := gen_random_uuid();
    v_now      timestamptz := now();
BEGIN
    IF NOT tistate_test.is_airflow() THEN
        RETURN tistate.define_dag(p_dag);
    END IF;
    -- Every asset and alias the document names (schedule and outlets).
    v_assets := coalesce((SELECT jsonb_agg(DISTINCT jsonb_build_object('name', a ->> 'name', 'uri', a ->> 'uri'))
                          FROM (SELECT jsonb_array_elements(coalesce(v_schedule -> 'assets', '[]')) AS a
                                UNION ALL
                                SELECT o FROM jsonb_array_elements(v_tasks) AS t,
                                              jsonb_array_elements(coalesce(t -> 'outlets', '[]')) AS o
                                WHERE o ->> 'type' = 'Asset') AS x), '[]');
    v_aliases := ARRAY(SELECT jsonb_array_elements_text(coalesce(v_schedule -> 'aliases', '[]'))
                       UNION
                       SELECT o ->> 'name' FROM jsonb_array_elements(v_tasks) AS t,
                                                jsonb_array_elements(coalesce(t -> 'outlets', '[]')) AS o
                       WHERE o ->> 'type' = 'AssetAlias');

    INSERT INTO public.dag_bundle (name, active) VALUES ('tistate-test', true) ON CONFLICT DO NOTHING;
    INSERT INTO public.dag AS d (dag_id, is_paused, is_stale, bundle_name, owners, timetable_type, timetable_summary,
                                 partition_mapper_info, asset_expression, max_active_tasks, max_active_runs,
                                 max_consecutive_failed_dag_runs, has_task_concurrency_limits, has_import_errors,
                                 fail_fast, timetable_partitioned, last_parsed_time)
    VALUES (v_dag_id, coalesce((p_dag ->> 'is_paused')::boolean, false), false, 'tistate-test', p_dag ->> 'owners',
            CASE WHEN v_schedule = '{}' THEN 'airflow.timetables.simple.NullTimetable'
                 ELSE 'airflow.timetables.simple.AssetTriggeredTimetable' END, NULL, '{}',
            CASE WHEN v_schedule = '{}' THEN NULL ELSE '{"any": []}'::json END, 16,
            (p_dag ->> 'max_active_runs')::integer, 0, false, false,
            coalesce((p_dag ->> 'fail_fast')::boolean, false),
            coalesce((p_dag ->> 'timetable_partitioned')::boolean, false), v_now)
    ON CONFLICT (dag_id) DO UPDATE SET
        is_paused = CASE WHEN p_dag ? 'is_paused' THEN excluded.is_paused ELSE d.is_paused END,
        is_stale = false, owners = excluded.owners, fail_fast = excluded.fail_fast,
        timetable_partitioned = excluded.timetable_partitioned, max_active_runs = excluded.max_active_runs,
        asset_expression = excluded.asset_expression, timetable_type = excluded.timetable_type;

    INSERT INTO public.asset (name, uri, "group", extra, created_at, updated_at)
    SELECT a ->> 'name', a ->> 'uri', 'asset', '{}', v_now, v_now FROM jsonb_array_elements(v_assets) AS a
    ORDER BY 1, 2
    ON CONFLICT (name, uri) DO NOTHING;
    INSERT INTO public.asset_active (name, uri)
    SELECT a ->> 'name', a ->> 'uri' FROM jsonb_array_elements(v_assets) AS a
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    INSERT INTO public.asset_alias (name, "group")
    SELECT n, '' FROM unnest(v_aliases) AS n ORDER BY 1
    ON CONFLICT (name) DO NOTHING;

    DELETE FROM public.dag_schedule_asset_reference WHERE dag_id = v_dag_id;
    INSERT INTO public.dag_schedule_asset_reference (asset_id, dag_id, created_at, updated_at)
    SELECT DISTINCT a.id, v_dag_id, v_now, v_now
    FROM jsonb_array_elements(coalesce(v_schedule -> 'assets', '[]')) AS s
    JOIN public.asset AS a ON a.name = s ->> 'name' AND a.uri = s ->> 'uri';
    DELETE FROM public.dag_schedule_asset_alias_reference WHERE dag_id = v_dag_id;
    INSERT INTO public.dag_schedule_asset_alias_reference (alias_id, dag_id, created_at, updated_at)
    SELECT al.id, v_dag_id, v_now, v_now FROM public.asset_alias AS al
    WHERE al.name IN (SELECT jsonb_array_elements_text(coalesce(v_schedule -> 'aliases', '[]')));
    DELETE FROM public.dag_schedule_asset_name_reference WHERE dag_id = v_dag_id;
    INSERT INTO public.dag_schedule_asset_name_reference (name, dag_id, created_at)
    SELECT DISTINCT n, v_dag_id, v_now FROM jsonb_array_elements_text(coalesce(v_schedule -> 'name_refs', '[]')) AS n;
    DELETE FROM public.dag_schedule_asset_uri_reference WHERE dag_id = v_dag_id;
    INSERT INTO public.dag_schedule_asset_uri_reference (uri, dag_id, created_at)
    SELECT DISTINCT u, v_dag_id, v_now FROM jsonb_array_elements_text(coalesce(v_schedule -> 'uri_refs', '[]')) AS u;
    DELETE FROM public.task_outlet_asset_reference WHERE dag_id = v_dag_id;
    INSERT INTO public.task_outlet_asset_reference (asset_id, dag_id, task_id, created_at, updated_at)
    SELECT DISTINCT a.id, v_dag_id, t ->> 'task_id', v_now, v_now
    FROM jsonb_array_elements(v_tasks) AS t
    CROSS JOIN jsonb_array_elements(coalesce(t -> 'outlets', '[]')) AS o
    JOIN public.asset AS a ON a.name = o ->> 'name' AND a.uri = o ->> 'uri'
    WHERE o ->> 'type' = 'Asset';

    -- A new DAG version with its serialized DAG, in Airflow's encoding of tasks and outlets.
    INSERT INTO public.dag_version (id, version_number, dag_id, bundle_name, created_at, last_updated)
    SELECT v_version, coalesce(max(v.version_number), 0) + 1, v_dag_id, 'tistate-test', v_now, v_now
    FROM public.dag_version AS v WHERE v.dag_id = v_dag_id;
    INSERT INTO public.serialized_dag (id, dag_id, data, created_at, last_updated, dag_hash, dag_version_id)
    VALUES (gen_random_uuid(), v_dag_id, jsonb_build_object('__version', 3, 'dag', jsonb_build_object(
                'dag_id', v_dag_id,
                'tasks', coalesce((SELECT jsonb_agg(jsonb_build_object('__type', 'operator', '__var',
                             jsonb_strip_nulls(jsonb_build_object(
                                 'task_id', t ->> 'task_id',
                                 'retries', coalesce((t ->> 'max_tries')::integer, 0),
                                 'pool', coalesce(t ->> 'pool', 'default_pool'),
                                 'is_teardown', CASE WHEN (t ->> 'is_teardown')::boolean THEN true END,
                                 'outlets', (SELECT jsonb_agg(CASE o ->> 'type'
                                         WHEN 'Asset' THEN jsonb_build_object('__type', 'asset', 'name', o ->> 'name',
                                                                              'uri', o ->> 'uri', 'group', 'asset', 'extra', '{}'::jsonb)
                                         WHEN 'AssetAlias' THEN jsonb_build_object('__type', 'asset_alias', 'name', o ->> 'name', 'group', '')
                                         WHEN 'AssetNameRef' THEN jsonb_build_object('__type', 'asset_ref', 'name', o ->> 'name')
                                         ELSE jsonb_build_object('__type', 'asset_ref', 'uri', o ->> 'uri') END)
                                     FROM jsonb_array_elements(coalesce(t -> 'outlets', '[]')) AS o))))
                         ORDER BY t ->> 'task_id') FROM jsonb_array_elements(v_tasks) AS t), '[]'))),
            v_now, v_now, md5(p_dag::text), v_version);

    RETURN jsonb_build_object(
        'dag_id', v_dag_id,
        'tasks', (SELECT coalesce(jsonb_agg(t ->> 'task_id' ORDER BY t ->> 'task_id'), '[]') FROM jsonb_array_elements(v_tasks) AS t),
        'assets', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'name', a.name, 'uri', a.uri) ORDER BY a.id), '[]')
                   FROM public.asset AS a
                   WHERE (a.name, a.uri) IN (SELECT x ->> 'name', x ->> 'uri' FROM jsonb_array_elements(v_assets) AS x)),
        'aliases', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', al.id, 'name', al.name) ORDER BY al.id), '[]')
                    FROM public.asset_alias AS al WHERE al.name = ANY (v_aliases)));
END
$$;

CREATE FUNCTION tistate_test.create_dag_run(p_dag_id text, p_run_id text, p_logical_date timestamptz DEFAULT NULL,
                                            p_conf jsonb DEFAULT '{}', p_now timestamptz DEFAULT clock_timestamp(),
                                            p_partition_key text DEFAULT NULL)
RETURNS TABLE (task_id text, map_index integer, ti_id uuid)
LANGUAGE plpgsql
AS $$
DECLARE
    v_version uuid;
BEGIN
    IF NOT tistate_test.is_airflow() THEN
        RETURN QUERY SELECT * FROM tistate.create_dag_run(p_dag_id => p_dag_id, p_run_id => p_run_id,
                                                          p_logical_date => p_logical_date, p_conf => p_conf,
                                                          p_now => p_now, p_partition_key => p_partition_key);
        RETURN;
    END IF;
    SELECT v.id INTO v_version FROM public.dag_version AS v WHERE v.dag_id = p_dag_id
    ORDER BY v.version_number DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'TS404', MESSAGE = format('dag %s not found', p_dag_id);
    END IF;
    INSERT INTO public.dag_run (dag_id, run_id, logical_date, state, run_type, triggered_by, run_after, queued_at,
                                start_date, conf, partition_key, created_at, updated_at, clear_number,
                                created_dag_version_id, data_interval_start, data_interval_end)
    VALUES (p_dag_id, p_run_id, p_logical_date, 'running', 'manual', 'test', coalesce(p_logical_date, p_now), p_now,
            p_now, coalesce(p_conf, '{}'), p_partition_key, p_now, p_now, 0, v_version, p_logical_date, p_logical_date);
    RETURN QUERY
    INSERT INTO public.task_instance AS ti (id, dag_id, run_id, task_id, map_index, state, try_number, max_tries,
                                            pool, pool_slots, queue, priority_weight, operator, queued_dttm,
                                            scheduled_dttm, updated_at, dag_version_id)
    SELECT tistate._uuid7(p_now), p_dag_id, p_run_id, t.tv ->> 'task_id', -1, 'queued', 1,
           coalesce((t.tv ->> 'retries')::integer, 0), coalesce(t.tv ->> 'pool', 'default_pool'), 1, 'default', 1,
           'EmptyOperator', p_now, p_now, p_now, v_version
    FROM public.serialized_dag AS sd
    CROSS JOIN LATERAL jsonb_array_elements(sd.data -> 'dag' -> 'tasks') AS x (t)
    CROSS JOIN LATERAL (SELECT x.t -> '__var' AS tv) AS t
    WHERE sd.dag_version_id = v_version
    ORDER BY t.tv ->> 'task_id'
    RETURNING ti.task_id::text, ti.map_index, ti.id;
END
$$;

-- Asset events with their producer (tistate.asset_event_producer) and extra as jsonb, for
-- assertions that read both.
CREATE VIEW tistate_test.asset_event AS
SELECT e.id, e.asset_id, e.extra::jsonb AS extra, e.source_task_id, e.source_dag_id, e.source_run_id,
       e.source_map_index, e."timestamp", e.partition_key, p.ti_id, p.try_number
FROM asset_event AS e
LEFT JOIN tistate.asset_event_producer AS p ON p.event_id = e.id;

-- The scheduler's step back to queued: tistate.ti_queue standalone; in Airflow mode the update
-- Airflow's scheduler makes (a new try from none or up_for_retry), after tistate's own lock and
-- 404/410 checks.
CREATE FUNCTION tistate_test.ti_queue(p_ti_id uuid, p_now timestamptz DEFAULT clock_timestamp())
RETURNS tistate.state_update_result
LANGUAGE plpgsql
AS $$
DECLARE
    v_ctx    tistate._ti_context;
    v_result tistate.state_update_result;
    v_new    boolean;
BEGIN
    IF NOT tistate_test.is_airflow() THEN
        RETURN tistate.ti_queue(p_ti_id => p_ti_id, p_now => p_now);
    END IF;
    v_ctx := tistate._lock_ti(p_ti_id, NULL);
    v_new := (v_ctx.ti).state IS NULL OR (v_ctx.ti).state = 'up_for_retry';
    UPDATE task_instance SET state = 'queued', try_number = try_number + CASE WHEN v_new THEN 1 ELSE 0 END,
                             queued_dttm = p_now, scheduled_dttm = p_now, trigger_id = NULL, trigger_timeout = NULL,
                             updated_at = p_now
    WHERE id = p_ti_id;
    v_result.ti_id := p_ti_id;
    v_result.previous_state := (v_ctx.ti).state;
    v_result.new_state := 'queued';
    v_result.applied := true;
    v_result.asset_event_ids := '{}';
    v_result.queued_dag_ids := '{}';
    RETURN v_result;
END
$$;
