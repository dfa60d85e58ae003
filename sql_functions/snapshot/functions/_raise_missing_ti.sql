-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._raise_missing_ti(p_ti_id uuid)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- An id archived by a retry answers 410 everywhere (Airflow answers 404 on /state: fixed).
    IF EXISTS (SELECT 1 FROM tistate.task_instance_history WHERE task_instance_id = p_ti_id) THEN
        PERFORM tistate._raise('TS410', format('task instance %s was archived by a retry', p_ti_id),
                               jsonb_build_object('reason', 'gone', 'message', 'Task Instance was archived by a retry'),
                               'the task instance has a new id; fetch it by dag_id, run_id, task_id and map_index');
    END IF;
    PERFORM tistate._raise('TS404', format('task instance %s not found', p_ti_id),
                           jsonb_build_object('reason', 'not_found', 'message', 'Task Instance not found'));
END
$function$;

COMMENT ON FUNCTION tistate._raise_missing_ti(p_ti_id uuid) IS 'TS410 for an archived id, else TS404';
