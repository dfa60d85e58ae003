-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_reschedule(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_start    timestamptz := coalesce((p_ctx.ti).start_date, p_now);
BEGIN
    -- start_date is the poke's real start (task_instance.start_date), not the server's now as in
    -- Airflow, so duration is the poke's length in whole seconds, not 0 or negative.
    IF abs(extract(epoch FROM v_end_date - v_start)) > 2147483647 THEN
        PERFORM tistate._invalid('end_date', 'more than 68 years away from the try''s start_date');
    END IF;
    INSERT INTO task_reschedule (ti_id, start_date, end_date, duration, reschedule_date)
    VALUES ((p_ctx.ti).id, v_start, v_end_date, trunc(extract(epoch FROM v_end_date - v_start))::integer,
            (p_payload ->> 'reschedule_date')::timestamptz);

    UPDATE task_instance AS ti SET
        state = 'up_for_reschedule',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;

    PERFORM tistate._audit(p_ctx, 'up_for_reschedule', p_now);
    RETURN tistate._applied(p_ctx, 'up_for_reschedule');
END
$function$;

COMMENT ON FUNCTION tistate._apply_reschedule(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> up_for_reschedule with its task_reschedule row (start_date = the poke''s start)';
