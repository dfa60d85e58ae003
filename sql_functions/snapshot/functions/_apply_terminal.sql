-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_state text := p_payload ->> 'state';
BEGIN
    PERFORM tistate._end_try((p_ctx.ti).id, (p_ctx.ti).try_number, p_payload, p_now);
    PERFORM tistate._audit(p_ctx, v_state, p_now);
    IF v_state = 'failed' AND p_ctx.fail_fast THEN
        PERFORM tistate._fail_fast(p_ctx, p_now);
    END IF;
    RETURN tistate._applied(p_ctx, v_state);
END
$function$;

COMMENT ON FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> failed (with fail-fast when the DAG sets it), skipped, removed or upstream_failed';
