-- Shared fixtures of the transition pgTAP files (state transitions, heartbeat, queue, mark, skip,
-- manual events). Included with \ir inside each file's transaction, so everything rolls back.
--   DAG p2      tasks a (max_tries 2), b, c, d, td (teardown); owners team-a
--   DAG p2ff    fail_fast: tasks boom, running1, queued1, done1, none1, td (teardown)
--   asset orders (s3://lake/orders); consumers: cons (direct), cons_name (name ref),
--   cons_paused (paused); asset other (s3://lake/other) has no consumer
SET client_min_messages = warning;
\o /dev/null

SELECT tistate_test.define_dag('{"dag_id": "p2", "owners": "team-a",
    "tasks": [{"task_id": "a", "max_tries": 2}, {"task_id": "b"}, {"task_id": "c"}, {"task_id": "d"},
              {"task_id": "td", "is_teardown": true}]}');
SELECT tistate_test.define_dag('{"dag_id": "p2ff", "owners": "team-a", "fail_fast": true,
    "tasks": [{"task_id": "boom"}, {"task_id": "running1"}, {"task_id": "queued1"}, {"task_id": "done1"},
              {"task_id": "none1"}, {"task_id": "td", "is_teardown": true}]}');
SELECT tistate_test.define_dag('{"dag_id": "cons", "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]}}');
SELECT tistate_test.define_dag('{"dag_id": "cons_name", "schedule": {"name_refs": ["orders"]}}');
SELECT tistate_test.define_dag('{"dag_id": "cons_paused", "is_paused": true,
    "schedule": {"assets": [{"name": "orders", "uri": "s3://lake/orders"}]}}');
SELECT tistate_test.define_dag('{"dag_id": "producer", "tasks": [{"task_id": "p",
    "outlets": [{"type": "Asset", "name": "other", "uri": "s3://lake/other"}]}]}');

SELECT count(*) FROM tistate_test.create_dag_run('p2', 'r1', '2030-01-01T00:00:00Z', p_now => '2030-01-01T00:00:00Z');
SELECT count(*) FROM tistate_test.create_dag_run('p2ff', 'r1', '2030-01-01T00:00:00Z', p_now => '2030-01-01T00:00:00Z');

-- The live id of a task instance (ids change on up_for_retry).
CREATE FUNCTION pg_temp.ti(p_dag text, p_task text, p_run text DEFAULT 'r1', p_map_index integer DEFAULT -1)
RETURNS uuid LANGUAGE sql AS $$
    SELECT id FROM task_instance
    WHERE dag_id = p_dag AND task_id = p_task AND run_id = p_run AND map_index = p_map_index;
$$;

-- queued -> running on host h1, pid 42, started (and called) at p_at.
CREATE FUNCTION pg_temp.start(p_ti uuid, p_at timestamptz, p_pid integer DEFAULT 42)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT tistate.ti_run(p_ti, jsonb_build_object('state', 'running', 'hostname', 'h1', 'unixname', 'airflow',
                                                   'pid', p_pid, 'start_date', p_at), p_now => p_at);
$$;

-- A row of the live task instance by dag/task.
CREATE FUNCTION pg_temp.row(p_dag text, p_task text, p_run text DEFAULT 'r1')
RETURNS task_instance LANGUAGE sql AS $$
    SELECT * FROM task_instance WHERE dag_id = p_dag AND task_id = p_task AND run_id = p_run AND map_index = -1;
$$;



-- The error a statement raises, as {"sqlstate", "message", "detail"} (detail parsed when JSON);
-- {"sqlstate": null} when it succeeds (its effects are then rolled back).
CREATE FUNCTION pg_temp.error_of(p_sql text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_state   text;
    v_message text;
    v_detail  text;
BEGIN
    BEGIN
        EXECUTE p_sql;
        RAISE EXCEPTION USING ERRCODE = 'TSOK0', MESSAGE = 'no error';
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
    END;
    IF v_state = 'TSOK0' THEN
        RETURN jsonb_build_object('sqlstate', NULL);
    END IF;
    RETURN jsonb_build_object('sqlstate', v_state, 'message', v_message,
        'detail', CASE WHEN v_detail ~ '^\s*\{' THEN v_detail::jsonb ELSE to_jsonb(v_detail) END);
END
$$;
\o
RESET client_min_messages;
