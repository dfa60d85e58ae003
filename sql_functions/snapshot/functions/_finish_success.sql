-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone, p_event_ids integer[], p_dag_ids text[])
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_result   tistate.state_update_result;
BEGIN
    -- Under the row lock, after the registration: the row update and its audit row.
    UPDATE task_instance AS ti SET
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

    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := 'running';
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := p_event_ids;
    v_result.queued_dag_ids := p_dag_ids;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone, p_event_ids integer[], p_dag_ids text[]) IS 'The locked part of running -> success (either path, after the registration): the row update and its audit row';
