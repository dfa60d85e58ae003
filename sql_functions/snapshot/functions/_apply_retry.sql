-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_delay    double precision := (p_payload ->> 'retry_delay_seconds')::double precision;
    v_reason   text := p_payload ->> 'retry_reason';
    v_rendered text := CASE WHEN p_payload ? 'rendered_map_index'
                            THEN p_payload ->> 'rendered_map_index' ELSE (p_ctx.ti).rendered_map_index END;
    v_new_id   uuid;
BEGIN
    -- The finished try goes to history as failed; the live row is the next try, up for retry.
    v_new_id := tistate._archive_try((p_ctx.ti).id, 'failed', v_end_date, p_now, v_rendered, v_delay, v_reason);
    UPDATE task_instance AS ti SET
        state = 'up_for_retry',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        retry_delay_override = v_delay,
        retry_reason = v_reason,
        rendered_map_index = v_rendered,
        updated_at = p_now
    WHERE ti.id = v_new_id;

    PERFORM tistate._audit(p_ctx, 'up_for_retry', p_now);
    RETURN tistate._applied(p_ctx, 'up_for_retry', v_new_id);
END
$function$;

COMMENT ON FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> up_for_retry: history row for the finished try (idempotent per try), reschedule rows deleted, retry fields, new uuid7 id';
