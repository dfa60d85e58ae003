-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._end_try(p_ti_id uuid, p_try_number integer, p_payload jsonb, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
BEGIN
    -- A worker's outcome (success, or a TITerminalStatePayload's state) on the row of one running
    -- try; FALSE when the row is not that running try (nothing changed). The UPDATE locks the row.
    UPDATE task_instance AS ti SET
        state = p_payload ->> 'state',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                  THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
        updated_at = p_now
    WHERE ti.id = p_ti_id AND ti.state = 'running' AND ti.try_number = p_try_number;
    RETURN FOUND;
END
$function$;

COMMENT ON FUNCTION tistate._end_try(p_ti_id uuid, p_try_number integer, p_payload jsonb, p_now timestamp with time zone) IS 'The row update of running -> the payload''s finished state (end_date, duration, rendered_map_index; deferral fields cleared) for one running try; FALSE when the row is not that running try';
