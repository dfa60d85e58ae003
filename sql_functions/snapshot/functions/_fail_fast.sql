-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._fail_fast(p_ctx tistate._ti_context, p_now timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_count    integer;
    v_teardown text[] := ARRAY(SELECT t.task_id FROM tistate._dag_tasks((p_ctx.ti).dag_id, (p_ctx.ti).run_id) AS t
                               WHERE t.is_teardown);
BEGIN
    -- Airflow's _stop_remaining_tasks, in the caller's transaction (Airflow commits mid-request):
    -- the run's other unfinished, non-teardown task instances (other tasks than the failed one)
    -- become failed when running, else skipped, each with a log row. Rows are locked by id, so two
    -- failing tasks of one run lock their siblings in the same order and cannot deadlock.
    PERFORM 1
    FROM task_instance AS ti
    WHERE ti.dag_id = (p_ctx.ti).dag_id AND ti.run_id = (p_ctx.ti).run_id
      AND ti.task_id <> (p_ctx.ti).task_id
      AND (ti.state IS NULL OR ti.state <> ALL (tistate._finished_states()))
      AND ti.task_id <> ALL (v_teardown)
    ORDER BY ti.id
    FOR UPDATE OF ti;

    WITH changed AS (
        UPDATE task_instance AS ti SET
            state = CASE WHEN ti.state = 'running' THEN 'failed' ELSE 'skipped' END,
            start_date = coalesce(ti.start_date, p_now),
            end_date = p_now,
            duration = extract(epoch FROM p_now - coalesce(ti.start_date, p_now)),
            next_method = NULL,
            next_kwargs = NULL,
            updated_at = p_now
        FROM task_instance AS old
        WHERE old.id = ti.id
          AND old.dag_id = (p_ctx.ti).dag_id AND old.run_id = (p_ctx.ti).run_id
          AND old.task_id <> (p_ctx.ti).task_id
          AND (old.state IS NULL OR old.state <> ALL (tistate._finished_states()))
          AND old.task_id <> ALL (v_teardown)
        RETURNING ti.id, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.state, old.state AS old_state
    ),
    logged AS (
        INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
        SELECT p_now, c.dag_id, c.task_id, c.run_id, c.map_index, c.try_number,
               CASE WHEN c.state = 'failed' THEN 'fail task' ELSE 'skip task' END,
               p_ctx.logical_date, p_ctx.owners,
               jsonb_build_object(
                   'message', CASE WHEN c.state = 'failed'
                                   THEN 'Forcing task to fail due to dag''s fail_fast setting.'
                                   ELSE 'Skipping task due to dag''s fail_fast setting.' END,
                   'previous_state', c.old_state,
                   'failed_task_id', (p_ctx.ti).task_id,
                   'failed_map_index', (p_ctx.ti).map_index)::text
        FROM changed AS c
        ORDER BY c.id
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM logged;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION tistate._fail_fast(p_ctx tistate._ti_context, p_now timestamp with time zone) IS 'Fail-fast: the run''s other unfinished non-teardown TIs -> failed (running) or skipped, with log rows; same transaction; returns the count';
