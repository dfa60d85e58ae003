-- The state groups name only task-instance states (tistate.ti_state), and are what Airflow means.
BEGIN;
SELECT plan(5);

SELECT is(tistate._states(),
          ARRAY['scheduled', 'queued', 'running', 'success', 'failed', 'skipped', 'upstream_failed',
                'removed', 'up_for_retry', 'up_for_reschedule', 'deferred', 'restarting'],
          'the states are Airflow''s TaskInstanceState values');
SELECT ok(tistate._finished_states() <@ tistate._states(), 'the finished states are states');
SELECT ok(tistate._terminal_payload_states() <@ tistate._finished_states()
          AND NOT 'success' = ANY (tistate._terminal_payload_states()),
          'the terminal payload states are the finished states but success');
SELECT is(cardinality(tistate._finished_states()), 5, 'five finished states');
SELECT throws_ok($$SELECT tistate.ti_mark(tistate._uuid7(), 'finished', 'test')$$, 'TS422', NULL,
                 'ti_mark refuses a name that is not a state');

SELECT * FROM finish();
ROLLBACK;
