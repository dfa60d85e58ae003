-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate._ti_context
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    PERFORM FROM task_instance AS ti WHERE ti.id = p_ti_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    RETURN tistate._peek_ti(p_ti_id);
END
$function$;

COMMENT ON FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval) IS 'Lock one task instance row (bounded by lock_timeout) with its run and DAG facts; TS404/TS410 if absent';
