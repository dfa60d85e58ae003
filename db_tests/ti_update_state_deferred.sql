-- ti_update_state deferred: the trigger row, trigger_id, next_method, next_kwargs,
-- trigger_timeout = p_now + duration (ISO 8601 or seconds), the audit row, resuming through
-- ti_queue and ti_run, the no-op and validation.
BEGIN;
\ir _fixtures_transitions.sql
SELECT plan(29);

\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:00:00Z');
CREATE TEMP TABLE r AS
SELECT * FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
    '{"state": "deferred", "classpath": "airflow.triggers.temporal.DateTimeTrigger", "next_method": "execute_complete",
      "trigger_kwargs": {"moment": "2030-01-01T02:00:00Z"}, "trigger_timeout": "PT1H30M", "queue": "triggers",
      "next_kwargs": {"cursor": 7}, "rendered_map_index": "dropped"}',
    p_now => '2030-01-01T01:00:10Z');
\o
SELECT is((SELECT ROW(previous_state, new_state, applied)::text FROM r), '(running,deferred,t)', 'deferred: result');
SELECT results_eq(
    $$SELECT classpath::text, kwargs::jsonb, created_date, queue::text, triggerer_id FROM trigger$$,
    $$VALUES ('airflow.triggers.temporal.DateTimeTrigger', '{"moment": "2030-01-01T02:00:00Z"}'::jsonb,
              '2030-01-01T01:00:10Z'::timestamptz, 'triggers', NULL::integer)$$,
    'deferred: one trigger row (classpath, kwargs as JSON text, created_date p_now, queue)');
SELECT is((pg_temp.row('p2', 'a')).trigger_id, (SELECT id FROM trigger), 'deferred: trigger_id references the trigger');
SELECT results_eq(
    $$SELECT state::text, next_method::text, next_kwargs, trigger_timeout, end_date, rendered_map_index::text, updated_at
      FROM task_instance WHERE id = pg_temp.ti('p2', 'a')$$,
    $$VALUES ('deferred', 'execute_complete', '{"cursor": 7}'::jsonb, '2030-01-01T02:30:10Z'::timestamptz, NULL::timestamptz,
              NULL::text, '2030-01-01T01:00:10Z'::timestamptz)$$,
    'deferred: next_method, next_kwargs, trigger_timeout = p_now + 90 min; end_date and rendered_map_index untouched');
SELECT results_eq($$SELECT event::text, try_number, extra FROM log WHERE task_id = 'a' ORDER BY id DESC LIMIT 1$$,
                  $$VALUES ('deferred', 1, '{"host_name": "h1"}')$$, 'deferred: audit row');

-- The same state again: the no-op (no second trigger).
SELECT is((SELECT applied FROM tistate.ti_update_state(pg_temp.ti('p2', 'a'),
              '{"state": "deferred", "classpath": "x.T", "next_method": "m"}')), false, 'deferred twice: the no-op');
SELECT is((SELECT count(*)::integer FROM trigger), 1, 'no-op: no second trigger row');

-- Resuming: ti_queue keeps the try and the resume data, drops the trigger reference; ti_run keeps
-- the try's start_date and hands back next_method / next_kwargs.
\o /dev/null
CREATE TEMP TABLE q AS SELECT * FROM tistate_test.ti_queue(pg_temp.ti('p2', 'a'), p_now => '2030-01-01T01:20:00Z');
CREATE TEMP TABLE ctx AS SELECT pg_temp.start(pg_temp.ti('p2', 'a'), '2030-01-01T01:20:05Z') AS c;
\o
SELECT is((SELECT ROW(previous_state, new_state, applied)::text FROM q), '(deferred,queued,t)', 'ti_queue from deferred');
SELECT is((pg_temp.row('p2', 'a')).try_number, 1, 'resuming from deferred is not a new try');
SELECT ok((pg_temp.row('p2', 'a')).trigger_id IS NULL AND (pg_temp.row('p2', 'a')).trigger_timeout IS NULL,
          'ti_queue clears trigger_id and trigger_timeout');
SELECT is((pg_temp.row('p2', 'a')).start_date, '2030-01-01T01:00:00Z'::timestamptz, 'ti_run resuming keeps the try''s start_date');
SELECT is((SELECT c ->> 'next_method' FROM ctx), 'execute_complete', 'ti_run returns next_method');
SELECT is((SELECT c -> 'next_kwargs' FROM ctx), '{"cursor": 7}'::jsonb, 'ti_run returns next_kwargs');

-- trigger_kwargs as a string is stored as received; trigger_timeout forms.
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2', t), '2030-01-01T03:00:00Z') FROM unnest(ARRAY['b', 'c', 'd', 'td']) AS t;
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'b'),
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_kwargs": "{\"encrypted\": true}", "trigger_timeout": 120.5}',
    p_now => '2030-01-01T03:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'c'),
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_timeout": "P1DT2H"}', p_now => '2030-01-01T03:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'd'),
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_timeout": null}', p_now => '2030-01-01T03:00:00Z');
SELECT tistate.ti_update_state(pg_temp.ti('p2', 'td'),
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_timeout": "P1W"}', p_now => '2030-01-01T03:00:00Z');
\o
SELECT is((SELECT kwargs FROM trigger WHERE id = (pg_temp.row('p2', 'b')).trigger_id), '{"encrypted": true}',
          'trigger_kwargs string stored as received');
SELECT is((pg_temp.row('p2', 'b')).trigger_timeout, '2030-01-01T03:02:00.5Z'::timestamptz, 'trigger_timeout as seconds (120.5)');
SELECT is((pg_temp.row('p2', 'c')).trigger_timeout, '2030-01-02T05:00:00Z'::timestamptz, 'trigger_timeout as ISO 8601 (P1DT2H)');
SELECT is((pg_temp.row('p2', 'd')).trigger_timeout, NULL, 'trigger_timeout null: no timeout');
SELECT is((pg_temp.row('p2', 'td')).trigger_timeout, '2030-01-08T03:00:00Z'::timestamptz, 'trigger_timeout P1W');
SELECT is((SELECT kwargs FROM trigger WHERE id = (pg_temp.row('p2', 'c')).trigger_id), '{}',
          'no trigger_kwargs: {}');
SELECT is((pg_temp.row('p2', 'c')).next_kwargs, '{}'::jsonb, 'no next_kwargs: {}');

-- Validation: TS422 (on a running TI, so only validation can refuse).
\o /dev/null
SELECT pg_temp.start(pg_temp.ti('p2ff', 'boom'), '2030-01-01T03:00:00Z');
\o
SELECT throws_ok(format($$SELECT tistate.ti_update_state(%L, %L)$$, pg_temp.ti('p2ff', 'boom'), p), 'TS422', NULL, 'TS422: ' || p)
FROM unnest(ARRAY[
    '{"state": "deferred", "next_method": "m"}',
    '{"state": "deferred", "classpath": "x.T"}',
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "next_kwargs": [1]}',
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_kwargs": 5}',
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_timeout": "1 hour"}',
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_timeout": "PT"}',
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "trigger_timeout": "P200Y"}',
    '{"state": "deferred", "classpath": "x.T", "next_method": "m", "end_date": "2030-01-01T03:00:00Z"}']) AS p;
SELECT is((pg_temp.row('p2ff', 'boom')).state::text, 'running', 'refused payloads changed nothing');

SELECT * FROM finish();
ROLLBACK;
