-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._finish_success(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_logical_date timestamp with time zone, p_owners text, p_events tistate._planned_event[], p_event_ids integer[], p_dag_ids text[])
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_result   tistate.state_update_result;
BEGIN
    WITH updated AS (
        UPDATE task_instance AS ti SET
            state = 'success',
            end_date = v_end_date,
            duration = extract(epoch FROM v_end_date - ti.start_date),
            next_method = NULL,
            next_kwargs = NULL,
            rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                      THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
            updated_at = p_now
        WHERE ti.id = p_ti_id
        RETURNING ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.hostname
    )
    INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
    SELECT p_now, u.dag_id, u.task_id, u.run_id, u.map_index, u.try_number, 'success', p_logical_date, p_owners,
           CASE WHEN coalesce(u.hostname, '') <> '' THEN jsonb_build_object('host_name', u.hostname)::text END
    FROM updated AS u;
    PERFORM tistate._notify_events(p_events, p_ti_id);

    v_result.ti_id := p_ti_id;
    v_result.previous_state := 'running';
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := p_event_ids;
    v_result.queued_dag_ids := p_dag_ids;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._finish_success(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_logical_date timestamp with time zone, p_owners text, p_events tistate._planned_event[], p_event_ids integer[], p_dag_ids text[]) IS 'The locked part of running -> success (either path): the row update with its audit row, then the events'' announcement';
