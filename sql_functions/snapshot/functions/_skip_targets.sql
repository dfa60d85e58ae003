-- defined by migration 0006_worker_and_operator_functions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._skip_targets(p_tasks jsonb)
 RETURNS TABLE(task_id text, map_index integer)
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_i    integer;
    v_item jsonb;
    v_path text;
BEGIN
    -- Airflow's TISkippedDownstreamTasksStatePayload.tasks: task ids (map_index -1) or
    -- [task_id, map_index] pairs.
    IF p_tasks IS NULL OR jsonb_typeof(p_tasks) <> 'array' THEN
        PERFORM tistate._invalid('tasks', 'must be a JSON array');
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(p_tasks) - 1 LOOP
        v_path := format('tasks[%s]', v_i);
        v_item := p_tasks -> v_i;
        IF jsonb_typeof(v_item) = 'string' THEN
            task_id := tistate._text(v_item, v_path, 250, false);
            map_index := -1;
        ELSIF jsonb_typeof(v_item) = 'array' AND jsonb_array_length(v_item) = 2 THEN
            task_id := tistate._text(v_item -> 0, v_path || '[0]', 250, false);
            map_index := tistate._integer(v_item -> 1, v_path || '[1]');
        ELSE
            PERFORM tistate._invalid(v_path, 'must be a task id or a [task_id, map_index] pair');
        END IF;
        IF task_id = '' THEN
            PERFORM tistate._invalid(v_path, 'task id must not be empty');
        END IF;
        RETURN NEXT;
    END LOOP;
END
$function$;

COMMENT ON FUNCTION tistate._skip_targets(p_tasks jsonb) IS 'Validate a skip-downstream task list (TS422) into (task_id, map_index) rows';
