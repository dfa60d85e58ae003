-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._applied(p_ctx tistate._ti_context, p_new_state text, p_new_ti_id uuid DEFAULT NULL::uuid)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_result tistate.state_update_result;
BEGIN
    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := (p_ctx.ti).state;
    v_result.new_state := p_new_state;
    v_result.applied := true;
    v_result.new_ti_id := p_new_ti_id;
    v_result.asset_event_ids := '{}';
    v_result.queued_dag_ids := '{}';
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._applied(p_ctx tistate._ti_context, p_new_state text, p_new_ti_id uuid) IS 'The result of an applied transition without asset events';
