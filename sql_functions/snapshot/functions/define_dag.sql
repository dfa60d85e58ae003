-- defined by migration 0004_dag_definitions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.define_dag(p_dag jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_dag_id    text;
    v_schedule  jsonb;
    v_tasks     jsonb := '[]';
    v_task      jsonb;
    v_outlets   jsonb;
    v_assets    jsonb := '[]';   -- [{name, uri}] the DAG schedules on or a task emits to directly
    v_aliases   text[] := '{}';
    v_name_refs text[] := '{}';
    v_uri_refs  text[] := '{}';
    v_item      jsonb;
    v_i         integer;
    v_j         integer;
    v_conflict  record;
BEGIN
    PERFORM tistate._standalone_only('define_dag', 'Airflow''s DAG processor defines DAGs from the DAG files');
    ---------------------------------------------------------------- validate the whole document
    PERFORM tistate._check_object(p_dag, '', ARRAY['dag_id', 'owners', 'description', 'is_paused',
        'fail_fast', 'max_active_runs', 'timetable_partitioned', 'schedule', 'tasks'], ARRAY['dag_id']);
    v_dag_id := tistate._text(p_dag -> 'dag_id', 'dag_id', 250, false);
    IF btrim(v_dag_id) = '' THEN
        PERFORM tistate._invalid('dag_id', 'must not be empty');
    END IF;
    -- Ids are indexed together (task_instance's dag_id, task_id, run_id): bytes bound the entry.
    IF octet_length(v_dag_id) > 250 THEN
        PERFORM tistate._invalid('dag_id', 'longer than 250 bytes');
    END IF;
    PERFORM tistate._text(p_dag -> 'owners', 'owners', 2000);
    PERFORM tistate._text(p_dag -> 'description', 'description', 100000);
    PERFORM tistate._boolean(p_dag -> 'is_paused', 'is_paused', false);
    PERFORM tistate._boolean(p_dag -> 'fail_fast', 'fail_fast', false);
    PERFORM tistate._boolean(p_dag -> 'timetable_partitioned', 'timetable_partitioned', false);
    PERFORM tistate._integer(p_dag -> 'max_active_runs', 'max_active_runs', true);

    v_schedule := tistate._json_object(p_dag -> 'schedule', 'schedule');
    PERFORM tistate._check_object(v_schedule, 'schedule', ARRAY['assets', 'aliases', 'name_refs', 'uri_refs']);
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(v_schedule -> 'assets', 'schedule.assets')) - 1 LOOP
        v_assets := v_assets || tistate._asset_key(v_schedule -> 'assets' -> v_i, format('schedule.assets[%s]', v_i));
    END LOOP;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(v_schedule -> 'aliases', 'schedule.aliases')) - 1 LOOP
        v_aliases := v_aliases || tistate._asset_name(v_schedule -> 'aliases' -> v_i, format('schedule.aliases[%s]', v_i));
    END LOOP;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(v_schedule -> 'name_refs', 'schedule.name_refs')) - 1 LOOP
        v_name_refs := v_name_refs || tistate._asset_name(v_schedule -> 'name_refs' -> v_i, format('schedule.name_refs[%s]', v_i));
    END LOOP;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(v_schedule -> 'uri_refs', 'schedule.uri_refs')) - 1 LOOP
        v_uri_refs := v_uri_refs || tistate._check_uri(
            tistate._text(v_schedule -> 'uri_refs' -> v_i, format('schedule.uri_refs[%s]', v_i), 1500, false),
            format('schedule.uri_refs[%s]', v_i));
    END LOOP;
    -- The validated schedule, with absent or null lists as empty arrays (the writes below read it).
    v_schedule := jsonb_build_object('assets', v_assets, 'aliases', to_jsonb(v_aliases));

    FOR v_i IN 0 .. jsonb_array_length(tistate._array(p_dag -> 'tasks', 'tasks')) - 1 LOOP
        v_task := tistate._check_object(p_dag -> 'tasks' -> v_i, format('tasks[%s]', v_i),
            ARRAY['task_id', 'max_tries', 'pool', 'pool_slots', 'queue', 'priority_weight', 'operator',
                  'is_teardown', 'outlets'], ARRAY['task_id']);
        IF btrim(tistate._text(v_task -> 'task_id', format('tasks[%s].task_id', v_i), 250, false)) = '' THEN
            PERFORM tistate._invalid(format('tasks[%s].task_id', v_i), 'must not be empty');
        END IF;
        IF octet_length(v_task ->> 'task_id') > 250 THEN
            PERFORM tistate._invalid(format('tasks[%s].task_id', v_i), 'longer than 250 bytes');
        END IF;
        IF v_tasks @> jsonb_build_array(jsonb_build_object('task_id', v_task -> 'task_id')) THEN
            PERFORM tistate._invalid(format('tasks[%s].task_id', v_i), 'duplicate task_id');
        END IF;
        v_outlets := '[]';
        FOR v_j IN 0 .. jsonb_array_length(tistate._array(v_task -> 'outlets', format('tasks[%s].outlets', v_i))) - 1 LOOP
            v_item := tistate._asset_profile(v_task -> 'outlets' -> v_j, format('tasks[%s].outlets[%s]', v_i, v_j));
            v_outlets := v_outlets || v_item;
            IF v_item ->> 'type' = 'Asset' THEN
                v_assets := v_assets || jsonb_build_object('name', v_item -> 'name', 'uri', v_item -> 'uri');
            ELSIF v_item ->> 'type' = 'AssetAlias' THEN
                v_aliases := v_aliases || (v_item ->> 'name');
            END IF;
        END LOOP;
        v_tasks := v_tasks || jsonb_build_object(
            'task_id', v_task -> 'task_id',
            'max_tries', greatest(0, coalesce(tistate._integer(v_task -> 'max_tries', format('tasks[%s].max_tries', v_i), true), 0)),
            'pool', coalesce(tistate._text(v_task -> 'pool', format('tasks[%s].pool', v_i), 256), 'default_pool'),
            'pool_slots', coalesce(tistate._integer(v_task -> 'pool_slots', format('tasks[%s].pool_slots', v_i), true), 1),
            'queue', coalesce(tistate._text(v_task -> 'queue', format('tasks[%s].queue', v_i), 256), 'default'),
            'priority_weight', coalesce(tistate._integer(v_task -> 'priority_weight', format('tasks[%s].priority_weight', v_i), true), 1),
            'operator', tistate._text(v_task -> 'operator', format('tasks[%s].operator', v_i), 1000),
            'is_teardown', tistate._boolean(v_task -> 'is_teardown', format('tasks[%s].is_teardown', v_i), false),
            'outlets', v_outlets);
    END LOOP;

    ---------------------------------------------------------------- write
    INSERT INTO dag AS d (dag_id, owners, description, is_paused, is_stale, fail_fast,
                                  timetable_partitioned, max_active_runs, last_parsed_time)
    VALUES (v_dag_id, p_dag ->> 'owners', p_dag ->> 'description',
            coalesce((p_dag ->> 'is_paused')::boolean, false), false,
            coalesce((p_dag ->> 'fail_fast')::boolean, false),
            coalesce((p_dag ->> 'timetable_partitioned')::boolean, false),
            tistate._integer(p_dag -> 'max_active_runs', 'max_active_runs', true), now())
    ON CONFLICT (dag_id) DO UPDATE SET
        owners = excluded.owners,
        description = excluded.description,
        -- pausing is an operator's decision: keep it unless the document says otherwise
        is_paused = CASE WHEN p_dag ? 'is_paused' AND jsonb_typeof(p_dag -> 'is_paused') <> 'null'
                         THEN excluded.is_paused ELSE d.is_paused END,
        is_stale = false,
        fail_fast = excluded.fail_fast,
        timetable_partitioned = excluded.timetable_partitioned,
        max_active_runs = excluded.max_active_runs,
        last_parsed_time = excluded.last_parsed_time;

    DELETE FROM tistate.dag_task AS t
    WHERE t.dag_id = v_dag_id
      AND t.task_id NOT IN (SELECT x ->> 'task_id' FROM jsonb_array_elements(v_tasks) AS x);
    INSERT INTO tistate.dag_task AS t (dag_id, task_id, max_tries, pool, pool_slots, queue, priority_weight,
                                       operator, is_teardown, outlets)
    SELECT v_dag_id, x ->> 'task_id', (x ->> 'max_tries')::integer, x ->> 'pool', (x ->> 'pool_slots')::integer,
           x ->> 'queue', (x ->> 'priority_weight')::integer, x ->> 'operator', (x ->> 'is_teardown')::boolean,
           x -> 'outlets'
    FROM jsonb_array_elements(v_tasks) AS x
    ORDER BY 2
    ON CONFLICT (dag_id, task_id) DO UPDATE SET
        max_tries = excluded.max_tries, pool = excluded.pool, pool_slots = excluded.pool_slots,
        queue = excluded.queue, priority_weight = excluded.priority_weight, operator = excluded.operator,
        is_teardown = excluded.is_teardown, outlets = excluded.outlets;

    -- Assets and aliases named anywhere in the document exist and are active afterwards
    -- (rows in a fixed order so concurrent definitions cannot deadlock).
    INSERT INTO asset (name, uri, "group", extra, created_at, updated_at)
    SELECT k.name, k.uri, 'asset', '{}', now(), now()
    FROM (SELECT DISTINCT a ->> 'name' AS name, a ->> 'uri' AS uri FROM jsonb_array_elements(v_assets) AS a) AS k
    ORDER BY 1, 2
    ON CONFLICT (name, uri) DO NOTHING;
    INSERT INTO asset_active (name, uri)
    SELECT DISTINCT a ->> 'name', a ->> 'uri' FROM jsonb_array_elements(v_assets) AS a
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    SELECT a ->> 'name' AS name, a ->> 'uri' AS uri INTO v_conflict
    FROM jsonb_array_elements(v_assets) AS a
    WHERE NOT EXISTS (SELECT 1 FROM asset_active AS act
                      WHERE act.name = a ->> 'name' AND act.uri = a ->> 'uri')
    LIMIT 1;
    IF FOUND THEN
        PERFORM tistate._raise('TS409',
            format('asset (name=%s, uri=%s) conflicts with an active asset of the same name or uri',
                   v_conflict.name, v_conflict.uri),
            jsonb_build_object('reason', 'asset_conflict', 'name', v_conflict.name, 'uri', v_conflict.uri),
            'an active asset is unique by name and by uri');
    END IF;
    INSERT INTO asset_alias (name, "group")
    SELECT DISTINCT unnest(v_aliases), '' ORDER BY 1
    ON CONFLICT (name) DO NOTHING;

    -- Consumer references: exactly what the document says.
    DELETE FROM dag_schedule_asset_reference AS r
    WHERE r.dag_id = v_dag_id
      AND r.asset_id NOT IN (SELECT a.id FROM asset AS a
                             JOIN jsonb_array_elements(v_schedule -> 'assets') AS s
                               ON a.name = s ->> 'name' AND a.uri = s ->> 'uri');
    INSERT INTO dag_schedule_asset_reference (asset_id, dag_id, created_at, updated_at)
    SELECT DISTINCT a.id, v_dag_id, now(), now() FROM asset AS a
    JOIN jsonb_array_elements(coalesce(v_schedule -> 'assets', '[]')) AS s
      ON a.name = s ->> 'name' AND a.uri = s ->> 'uri'
    ORDER BY 1
    ON CONFLICT DO NOTHING;

    DELETE FROM dag_schedule_asset_alias_reference AS r
    WHERE r.dag_id = v_dag_id
      AND r.alias_id NOT IN (SELECT al.id FROM asset_alias AS al
                             WHERE al.name IN (SELECT jsonb_array_elements_text(v_schedule -> 'aliases')));
    INSERT INTO dag_schedule_asset_alias_reference (alias_id, dag_id, created_at, updated_at)
    SELECT al.id, v_dag_id, now(), now() FROM asset_alias AS al
    WHERE al.name IN (SELECT jsonb_array_elements_text(coalesce(v_schedule -> 'aliases', '[]')))
    ORDER BY 1
    ON CONFLICT DO NOTHING;

    DELETE FROM dag_schedule_asset_name_reference AS r
    WHERE r.dag_id = v_dag_id AND r.name <> ALL (v_name_refs);
    INSERT INTO dag_schedule_asset_name_reference (name, dag_id, created_at)
    SELECT DISTINCT n, v_dag_id, now() FROM unnest(v_name_refs) AS n ORDER BY 1
    ON CONFLICT DO NOTHING;

    DELETE FROM dag_schedule_asset_uri_reference AS r
    WHERE r.dag_id = v_dag_id AND r.uri <> ALL (v_uri_refs);
    INSERT INTO dag_schedule_asset_uri_reference (uri, dag_id, created_at)
    SELECT DISTINCT u, v_dag_id, now() FROM unnest(v_uri_refs) AS u ORDER BY 1
    ON CONFLICT DO NOTHING;

    -- Producer references: the Asset outlets of each task.
    DELETE FROM task_outlet_asset_reference AS r
    WHERE r.dag_id = v_dag_id
      AND (r.task_id, r.asset_id) NOT IN (
          SELECT t ->> 'task_id', a.id
          FROM jsonb_array_elements(v_tasks) AS t
          CROSS JOIN jsonb_array_elements(t -> 'outlets') AS o
          JOIN asset AS a ON a.name = o ->> 'name' AND a.uri = o ->> 'uri'
          WHERE o ->> 'type' = 'Asset');
    INSERT INTO task_outlet_asset_reference (asset_id, dag_id, task_id, created_at, updated_at)
    SELECT DISTINCT a.id, v_dag_id, t ->> 'task_id', now(), now()
    FROM jsonb_array_elements(v_tasks) AS t
    CROSS JOIN jsonb_array_elements(t -> 'outlets') AS o
    JOIN asset AS a ON a.name = o ->> 'name' AND a.uri = o ->> 'uri'
    WHERE o ->> 'type' = 'Asset'
    ORDER BY 1, 3
    ON CONFLICT DO NOTHING;

    RETURN jsonb_build_object(
        'dag_id', v_dag_id,
        'tasks', (SELECT coalesce(jsonb_agg(t ->> 'task_id' ORDER BY t ->> 'task_id'), '[]')
                  FROM jsonb_array_elements(v_tasks) AS t),
        'assets', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.id, 'name', a.name, 'uri', a.uri) ORDER BY a.id), '[]')
                   FROM asset AS a
                   WHERE (a.name, a.uri) IN (SELECT x ->> 'name', x ->> 'uri' FROM jsonb_array_elements(v_assets) AS x)),
        'aliases', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', al.id, 'name', al.name) ORDER BY al.id), '[]')
                    FROM asset_alias AS al WHERE al.name = ANY (v_aliases)));
END
$function$;

COMMENT ON FUNCTION tistate.define_dag(p_dag jsonb) IS 'Upsert a DAG document (dag_id, owners, is_paused, fail_fast, schedule{assets,aliases,name_refs,uri_refs}, tasks[{task_id, max_tries, pool, outlets}]); creates and activates its assets and aliases and replaces its schedule and outlet references. Returns {dag_id, tasks, assets, aliases}.';
