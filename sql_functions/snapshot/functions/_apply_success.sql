-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_registered record;
BEGIN
    -- Registration under the row lock: only reached when the task became running between the
    -- unlocked look and the lock (see tistate._success_before_lock for the usual path).
    v_registered := tistate._register_outlet_events(
        (p_ctx.ti).id, (p_ctx.ti).dag_id, (p_ctx.ti).task_id, (p_ctx.ti).run_id, (p_ctx.ti).map_index,
        (p_ctx.ti).try_number, p_ctx.run_partition_key, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
    PERFORM tistate._end_try((p_ctx.ti).id, (p_ctx.ti).try_number, p_payload, p_now);
    RETURN tistate._finish_success(p_ctx, p_now, v_registered);
END
$function$;

COMMENT ON FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> success with its asset events, alias links, consumer queue rows, audit row and notifications, all under the row lock';
