-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._audit(p_ctx tistate._ti_context, p_event text, p_now timestamp with time zone, p_extra text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- PL/pgSQL, not SQL, so the INSERT's plan is cached for the session.
    INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
    VALUES (p_now, (p_ctx.ti).dag_id, (p_ctx.ti).task_id, (p_ctx.ti).run_id, (p_ctx.ti).map_index,
            (p_ctx.ti).try_number, p_event, p_ctx.logical_date, p_ctx.owners,
            coalesce(p_extra, CASE WHEN coalesce((p_ctx.ti).hostname, '') <> ''
                                   THEN jsonb_build_object('host_name', (p_ctx.ti).hostname)::text END));
END
$function$;

COMMENT ON FUNCTION tistate._audit(p_ctx tistate._ti_context, p_event text, p_now timestamp with time zone, p_extra text) IS 'The audit log row of an applied transition (Airflow reference section 3.7)';
