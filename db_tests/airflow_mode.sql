-- Airflow mode only (tests/test_pgtap.py runs it on a database made by `airflow db migrate`): what
-- tistate refuses there, and what it writes the way Airflow's readers need.
BEGIN;
SELECT plan(10);
\ir _fixtures.sql
\o /dev/null
SELECT tistate_test.define_dag('{"dag_id": "parted", "timetable_partitioned": true,
                                 "schedule": {"assets": [{"name": "customers", "uri": "s3://lake/customers"}]}}');
\o

-- The DAG processor's and the scheduler's jobs are refused with TS501.
SELECT throws_ok($$SELECT tistate.define_dag('{"dag_id": "x"}')$$, 'TS501', NULL, 'define_dag: TS501');
SELECT throws_ok($$SELECT tistate.create_dag_run('producer', 'manual__x')$$, 'TS501', NULL, 'create_dag_run: TS501');
SELECT throws_ok(format($$SELECT tistate.ti_queue(%L)$$, pg_temp.queued_ti('q1')), 'TS501', NULL, 'ti_queue: TS501');

-- A consumer that is partition-aware: refused, nothing written (never silently unqueued).
SELECT pg_temp.running_ti('pa') AS ti_pa \gset
SELECT pg_temp.tistate_digest() AS before_pa \gset
SELECT is(pg_temp.code_field(format($$SELECT pg_temp.succeed(%L, '[{"type": "Asset", "name": "customers", "uri": "s3://lake/customers"}]')$$, :'ti_pa')),
          'TS501 ', 'an event a partition-aware consumer would take: TS501');
SELECT is(pg_temp.tistate_digest(), :'before_pa', 'the refused success wrote nothing');
SELECT lives_ok(format($$SELECT pg_temp.succeed(%L, '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]')$$, :'ti_pa'),
                'other assets are unaffected');

-- A retried try goes to Airflow's history with its dag_version_id and a UTC-naive trigger_timeout.
SELECT pg_temp.running_ti('hist') AS ti_h \gset
UPDATE task_instance SET trigger_timeout = '2030-01-01T12:00:00+00' WHERE id = :'ti_h';
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT (tistate.ti_update_state(:'ti_h', '{"state": "up_for_retry", "end_date": "2025-01-01T00:01:00Z"}')).new_ti_id AS ti_h2 \gset
SELECT results_eq(format($$SELECT h.dag_version_id, h.trigger_timeout FROM task_instance_history AS h WHERE h.task_instance_id = %L$$, :'ti_h'),
                  format($$SELECT dag_version_id, '2030-01-01 12:00:00'::timestamp FROM task_instance WHERE id = %L$$, :'ti_h2'),
                  'history: the dag_version_id of the try and trigger_timeout in UTC whatever the session time zone');
RESET TimeZone;

-- A serialized DAG stored compressed cannot be read: refused with TS501, not guessed.
SELECT pg_temp.running_ti('zip') AS ti_z \gset
UPDATE serialized_dag SET data = NULL, data_compressed = '\x789c' WHERE dag_id = 'producer';
SELECT is(pg_temp.code_field(format($$SELECT pg_temp.succeed(%L, '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]')$$, :'ti_z')),
          'TS501 ', 'outlets of a compressed serialized DAG: TS501');
SELECT lives_ok(format($$SELECT pg_temp.succeed(%L)$$, :'ti_z'), 'a success without outlets still works');
SELECT is((SELECT flavor FROM tistate.installation), 'airflow', 'installed as the airflow flavor');

SELECT * FROM finish();
ROLLBACK;
