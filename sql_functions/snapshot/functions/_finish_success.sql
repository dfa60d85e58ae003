-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_now timestamp with time zone, p_registered record)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_result tistate.state_update_result;
BEGIN
    -- After the row update (tistate._end_try), under its lock: the audit row, then the
    -- queue rows, last before the commit (their locks are the ones other successes wait for).
    PERFORM tistate._audit(p_ctx, 'success', p_now);
    PERFORM tistate._queue_rows(p_registered.queue_asset_ids, p_registered.queue_dag_ids, p_registered.stamp);
    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := 'running';
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := p_registered.event_ids;
    v_result.queued_dag_ids := p_registered.dag_ids;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_now timestamp with time zone, p_registered record) IS 'The end of running -> success (either path, after the registration and the row update): the audit row, then the consumer queue rows (last: other successes wait for their locks until commit), and the result';
