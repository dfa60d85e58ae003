-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._raise_missing_ti(p_ti_id uuid)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_try record;
BEGIN
    -- An id archived by a retry answers 410 everywhere (Airflow answers 404 on /state: fixed).
    SELECT h.dag_id, h.run_id, h.task_id, h.map_index INTO v_try
    FROM task_instance_history AS h WHERE h.task_instance_id = p_ti_id;
    IF FOUND THEN
        PERFORM tistate._raise('TS410', format('task instance %s was archived by a retry', p_ti_id),
                               jsonb_build_object('reason', 'gone', 'message', 'Task Instance was archived by a retry',
                                                  'dag_id', v_try.dag_id, 'run_id', v_try.run_id,
                                                  'task_id', v_try.task_id, 'map_index', v_try.map_index),
                               format('the task instance has a new id (the next try): tistate ti list --dag-id %s --run-id %s shows it',
                                      v_try.dag_id, v_try.run_id));
    END IF;
    PERFORM tistate._raise('TS404', format('task instance %s not found', p_ti_id),
                           jsonb_build_object('reason', 'not_found', 'message', 'Task Instance not found'));
END
$function$;

COMMENT ON FUNCTION tistate._raise_missing_ti(p_ti_id uuid) IS 'TS410 for an archived id, else TS404';
