-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_state   text := p_payload ->> 'state';
    v_message text;
BEGIN
    CASE
        WHEN v_state = 'success' THEN
            RETURN tistate._apply_success(p_ctx, p_payload, p_now);
        WHEN v_state = ANY (tistate._terminal_payload_states()) THEN
            RETURN tistate._apply_terminal(p_ctx, p_payload, p_now);
        WHEN v_state = 'up_for_retry' THEN
            RETURN tistate._apply_retry(p_ctx, p_payload, p_now);
        WHEN v_state = 'up_for_reschedule' THEN
            RETURN tistate._apply_reschedule(p_ctx, p_payload, p_now);
        WHEN v_state = 'deferred' THEN
            RETURN tistate._apply_deferred(p_ctx, p_payload, p_now);
        ELSE
            -- scheduled, queued, restarting: the scheduler's states, not a worker's outcome. Airflow
            -- records FAILED and answers 204; tistate changes nothing and says so.
            v_message := format('a running task instance cannot be moved to %s by a state update; '
                                'report its outcome, or use ti_mark / ti_queue', v_state);
            PERFORM tistate._raise('TS409', v_message,
                jsonb_build_object('reason', 'unsupported_transition', 'message', v_message,
                                   'previous_state', (p_ctx.ti).state, 'requested_state', v_state));
            RETURN NULL;
    END CASE;
END
$function$;

COMMENT ON FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'Dispatch a validated payload to its transition; TS409 for the scheduler-only targets scheduled, queued, restarting';
