-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._dag_tasks(p_dag_id text, p_run_id text DEFAULT NULL::text, p_task_id text DEFAULT NULL::text)
 RETURNS TABLE(task_id text, is_teardown boolean, outlets jsonb)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_version uuid;
    v_data    jsonb;
BEGIN
    -- The task definitions of a DAG (of the version a run follows, when given): task id, teardown
    -- flag and outlets as AssetProfile objects ({type, name, uri}).
    IF NOT tistate._is_airflow() THEN
        RETURN QUERY SELECT t.task_id::text, t.is_teardown, t.outlets FROM tistate.dag_task AS t
                     WHERE t.dag_id = p_dag_id AND (p_task_id IS NULL OR t.task_id = p_task_id);
        RETURN;
    END IF;
    -- Airflow: the serialized DAG, read as Airflow's API server reads it.
    v_version := CASE WHEN p_run_id IS NULL
                      THEN (SELECT v.id FROM dag_version AS v WHERE v.dag_id = p_dag_id
                            ORDER BY v.version_number DESC LIMIT 1)
                      ELSE tistate._run_dag_version(p_dag_id, p_run_id) END;
    SELECT sd.data INTO v_data FROM serialized_dag AS sd WHERE sd.dag_version_id = v_version;
    IF NOT FOUND THEN
        RETURN;  -- not serialized (yet): no task is known
    END IF;
    IF v_data IS NULL THEN
        PERFORM tistate._raise('TS501', format('dag %s is serialized compressed, which tistate cannot read', p_dag_id),
                               jsonb_build_object('reason', 'compressed_serialized_dag', 'dag_id', p_dag_id),
                               'set [core] compress_serialized_dags = False in Airflow');
    END IF;
    RETURN QUERY
        SELECT tv ->> 'task_id',
               coalesce((tv ->> 'is_teardown')::boolean, (tv -> 'partial_kwargs' ->> 'is_teardown')::boolean, false),
               coalesce((SELECT jsonb_agg(jsonb_build_object(
                                     'type', CASE o ->> '__type' WHEN 'asset' THEN 'Asset' WHEN 'asset_alias' THEN 'AssetAlias'
                                                 ELSE CASE WHEN ov ? 'name' THEN 'AssetNameRef' ELSE 'AssetUriRef' END END,
                                     'name', ov ->> 'name', 'uri', ov ->> 'uri') ORDER BY ord)
                         -- a mapped task keeps its outlets in partial_kwargs
                         FROM jsonb_array_elements(coalesce(tv -> 'outlets', tv -> 'partial_kwargs' -> 'outlets', '[]'))
                              WITH ORDINALITY AS x (o, ord)
                         CROSS JOIN LATERAL (SELECT coalesce(x.o -> '__var', x.o) AS ov) AS y),
                        '[]')
        FROM jsonb_array_elements(v_data -> 'dag' -> 'tasks') AS t
        CROSS JOIN LATERAL (SELECT coalesce(t -> '__var', t) AS tv) AS z
        -- one task: its outlets are built for it alone
        WHERE p_task_id IS NULL OR tv ->> 'task_id' = p_task_id;
END
$function$;

COMMENT ON FUNCTION tistate._dag_tasks(p_dag_id text, p_run_id text, p_task_id text) IS 'Task definitions (task_id, is_teardown, outlets as AssetProfiles) of a DAG (one task when p_task_id is given), or of the version a run follows: tistate.dag_task standalone, the serialized DAG in Airflow mode (TS501 when compressed)';
