-- Event notifications through the outbox (tistate.notify_events = relay): what a transition and a
-- manual event write to tistate.asset_event_outbox, what relay_notifications() takes and returns,
-- its limit, the other two modes, the backlog, and who may call it. Delivery itself (listeners
-- hear only committed events, once) is proven over real connections in tests/test_notify_relay.py.
BEGIN;
\ir _fixtures.sql
SELECT plan(19);

SELECT has_table('tistate', 'asset_event_outbox', 'the outbox table exists');
SELECT ok(has_function_privilege('tistate_executor', 'tistate.relay_notifications(integer)', 'EXECUTE'),
          'tistate_executor may execute relay_notifications');
SELECT ok(has_function_privilege('tistate_executor', 'tistate.notification_backlog()', 'EXECUTE'),
          'tistate_executor may execute notification_backlog');
SELECT ok(NOT has_table_privilege('tistate_executor', 'tistate.asset_event_outbox', 'SELECT'),
          'tistate_executor cannot read the outbox directly');

------------------------------------------------------------------------------------------------
-- relay: one outbox row per notifying transaction, holding its event ids
------------------------------------------------------------------------------------------------
SET LOCAL tistate.notify_events = 'relay';
SELECT pg_temp.running_ti('r1') AS ti1 \gset
CREATE TEMP TABLE res1 AS
SELECT * FROM pg_temp.succeed(:'ti1',
    '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}, {"type": "AssetAlias", "name": "daily-tables"}]',
    '[{"dest_asset_key": {"name": "orders", "uri": "s3://lake/orders"}, "extra": {"n": 1}},
      {"source_alias_name": "daily-tables", "dest_asset_key": {"name": "customers", "uri": "s3://lake/customers"}}]');
SELECT is((SELECT count(*)::integer FROM tistate.asset_event_outbox), 1, 'relay: a success with events writes one outbox row');
SELECT is((SELECT event_ids FROM tistate.asset_event_outbox), (SELECT asset_event_ids FROM res1),
          'relay: the row holds the success''s event ids, sorted');

SELECT pg_temp.running_ti('r2') AS ti2 \gset
SELECT pg_temp.succeed(:'ti2');
SELECT is((SELECT count(*)::integer FROM tistate.asset_event_outbox), 1, 'relay: a success without events writes no outbox row');

CREATE TEMP TABLE manual AS SELECT * FROM tistate.emit_asset_event('orders', 's3://lake/orders', '{"by": "hand"}',
                                                                  p_now => '2025-01-01T00:05:00Z');
SELECT is((SELECT event_ids FROM tistate.asset_event_outbox ORDER BY created_at DESC LIMIT 1),
          ARRAY[(SELECT asset_event_id FROM manual)], 'relay: a manual event writes its outbox row too');

SELECT results_eq($$SELECT transactions FROM tistate.notification_backlog()$$, $$VALUES (2::bigint)$$,
                  'notification_backlog counts the rows waiting');
SELECT ok((SELECT oldest IS NOT NULL FROM tistate.notification_backlog()), 'notification_backlog gives the oldest');

------------------------------------------------------------------------------------------------
-- relay_notifications: takes the oldest rows up to the limit, deletes them, counts notifications
------------------------------------------------------------------------------------------------
SELECT is(tistate.relay_notifications(1), 2, 'relay_notifications(1) announces the oldest row''s two events');
SELECT is((SELECT event_ids FROM tistate.asset_event_outbox), ARRAY[(SELECT asset_event_id FROM manual)],
          'the newer row stays for the next call');
SELECT is(tistate.relay_notifications(), 1, 'the next call announces the manual event');
SELECT is((SELECT count(*)::integer FROM tistate.asset_event_outbox), 0, 'the outbox is empty');
SELECT is(tistate.relay_notifications(), 0, 'an empty outbox: nothing to announce');
SELECT is((pg_temp.code_field($$SELECT tistate.relay_notifications(-1)$$)),
          'TS422 limit', 'a negative limit is TS422 naming limit');

------------------------------------------------------------------------------------------------
-- on and off write no outbox row
------------------------------------------------------------------------------------------------
SET LOCAL tistate.notify_events = 'on';
SELECT pg_temp.running_ti('r3') AS ti3 \gset
SELECT pg_temp.succeed(:'ti3', '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]');
SELECT is((SELECT count(*)::integer FROM tistate.asset_event_outbox), 0, 'on: notifies directly, no outbox row');
SELECT is((SELECT count(*)::integer FROM tistate_test.asset_event WHERE ti_id = :'ti3'), 1, 'on: the event was written');

SET LOCAL tistate.notify_events = 'off';
SELECT pg_temp.running_ti('r4') AS ti4 \gset
SELECT pg_temp.succeed(:'ti4', '[{"type": "Asset", "name": "orders", "uri": "s3://lake/orders"}]');
SELECT is((SELECT count(*)::integer FROM tistate.asset_event_outbox), 0, 'off: no outbox row');

SELECT * FROM finish();
ROLLBACK;
