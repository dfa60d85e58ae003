-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_state    text := p_payload ->> 'state';
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
BEGIN
    UPDATE task_instance AS ti SET
        state = v_state,
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                  THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;
    PERFORM tistate._audit(p_ctx, v_state, p_now);
    IF v_state = 'failed' AND p_ctx.fail_fast THEN
        PERFORM tistate._fail_fast(p_ctx, p_now);
    END IF;
    RETURN tistate._applied(p_ctx, v_state);
END
$function$;

COMMENT ON FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> failed (with fail-fast when the DAG sets it), skipped, removed or upstream_failed';
