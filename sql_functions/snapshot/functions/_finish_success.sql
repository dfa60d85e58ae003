-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_payload jsonb, p_events tistate._planned_event[], p_dag_ids text[], p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_result   tistate.state_update_result;
BEGIN
    UPDATE tistate.task_instance AS ti SET
        state = 'success',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                  THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;

    PERFORM tistate._audit(p_ctx, 'success', p_now);
    PERFORM tistate._notify_events(p_events, (p_ctx.ti).id);

    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := (p_ctx.ti).state;
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := ARRAY(SELECT e.event_id FROM unnest(p_events) AS e ORDER BY e.event_id);
    v_result.queued_dag_ids := p_dag_ids;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_payload jsonb, p_events tistate._planned_event[], p_dag_ids text[], p_now timestamp with time zone) IS 'The locked part of running -> success: the row update, the audit row and the event notifications';
