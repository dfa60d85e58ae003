-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_deferred(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_trigger_id integer;
    v_seconds    double precision := (p_payload ->> 'trigger_timeout_seconds')::double precision;
BEGIN
    INSERT INTO trigger (classpath, kwargs, created_date, queue)
    VALUES (p_payload ->> 'classpath', p_payload ->> 'trigger_kwargs', p_now, p_payload ->> 'queue')
    RETURNING id INTO v_trigger_id;

    -- end_date, duration and rendered_map_index are left alone, as in Airflow.
    UPDATE task_instance AS ti SET
        state = 'deferred',
        trigger_id = v_trigger_id,
        next_method = p_payload ->> 'next_method',
        next_kwargs = p_payload -> 'next_kwargs',
        trigger_timeout = p_now + make_interval(secs => v_seconds),
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;

    PERFORM tistate._audit(p_ctx, 'deferred', p_now);
    RETURN tistate._applied(p_ctx, 'deferred');
END
$function$;

COMMENT ON FUNCTION tistate._apply_deferred(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> deferred with its trigger row, next_method, next_kwargs and trigger_timeout = p_now + duration';
