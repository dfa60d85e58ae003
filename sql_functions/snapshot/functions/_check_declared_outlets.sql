-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._check_declared_outlets(p_dag_id text, p_task_id text, p_run_id text, p_outlets jsonb)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_declared jsonb;
    v_outlet   jsonb;
BEGIN
    -- The outlets the task's definition declares: the DAG document standalone, the serialized DAG
    -- of the run's version in Airflow mode (tistate._dag_tasks). Every outlet of the payload must be
    -- one of them: same type, name and uri (a name or uri reference: its name or uri).
    SELECT t.outlets INTO v_declared FROM tistate._dag_tasks(p_dag_id, p_run_id, p_task_id) AS t;
    -- One key per outlet (what identifies it for its type), compared by a hashed anti-join: linear
    -- in the number of outlets.
    SELECT o INTO v_outlet
    FROM jsonb_array_elements(p_outlets) AS o
    WHERE tistate._outlet_key(o) NOT IN (SELECT tistate._outlet_key(d) FROM jsonb_array_elements(coalesce(v_declared, '[]')) AS d)
    LIMIT 1;
    IF FOUND THEN
        PERFORM tistate._raise('TS403',
            format('task %s of dag %s does not declare the outlet %s', p_task_id, p_dag_id, v_outlet),
            jsonb_build_object('reason', 'undeclared_outlet', 'field', 'task_outlets', 'outlet', v_outlet,
                               'dag_id', p_dag_id, 'task_id', p_task_id),
            'a task writes asset events only for the outlets its DAG declares');
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._check_declared_outlets(p_dag_id text, p_task_id text, p_run_id text, p_outlets jsonb) IS 'TS403 when the payload names an outlet (asset, alias, name or uri reference) the task''s definition does not declare';
