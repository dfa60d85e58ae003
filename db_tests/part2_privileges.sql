-- Privileges of the heartbeat, queue, skip-downstream, mark and manual-event functions: EXECUTE for
-- the worker role (tistate_executor) on the worker functions and for tistate_operator on all of them,
-- nothing for PUBLIC, no private helper executable by either role; signatures and return types.
BEGIN;
SET LOCAL search_path = public;  -- type names as written: tistate-qualified
SELECT plan(23);

CREATE TEMP TABLE part2_public (sig regprocedure, result text) ON COMMIT DROP;
INSERT INTO part2_public VALUES
    ('tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval)', 'void'),
    ('tistate.ti_queue(uuid, timestamptz, interval)', 'tistate.state_update_result'),
    ('tistate.ti_skip_downstream(uuid, jsonb, timestamptz)', 'integer'),
    ('tistate.ti_mark(uuid, text, text, timestamptz, interval)', 'tistate.state_update_result'),
    ('tistate.emit_asset_event(text, text, jsonb, text, timestamptz)', 'tistate.asset_event_result');

SELECT ok(has_function_privilege('tistate_operator', f.sig, 'EXECUTE')
          AND has_function_privilege('tistate_executor', f.sig, 'EXECUTE')
              = (f.sig::text ~ 'ti_heartbeat|ti_skip_downstream'),
          format('tistate_operator may execute %s (tistate_executor only a worker''s)', f.sig))
FROM part2_public AS f ORDER BY f.sig::text;
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                      WHERE p.oid = f.sig AND a.grantee = 0),
          format('PUBLIC may not execute %s', f.sig))
FROM part2_public AS f ORDER BY f.sig::text;
SELECT ok(p.prosecdef AND 'search_path=' || tistate._function_search_path() = ANY (p.proconfig),
          format('%s is SECURITY DEFINER with a pinned search_path', f.sig))
FROM part2_public AS f JOIN pg_proc AS p ON p.oid = f.sig ORDER BY f.sig::text;
SELECT is(pg_get_function_result(f.sig), f.result, format('%s returns %s', f.sig, f.result))
FROM part2_public AS f ORDER BY f.sig::text;

SELECT is(pg_get_function_identity_arguments('tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval)'::regprocedure),
          'p_ti_id uuid, p_hostname text, p_pid integer, p_now timestamp with time zone, p_lock_timeout interval',
          'ti_heartbeat parameter names');
SELECT is(pg_get_function_identity_arguments('tistate.emit_asset_event(text, text, jsonb, text, timestamptz)'::regprocedure),
          'p_name text, p_uri text, p_extra jsonb, p_partition_key text, p_now timestamp with time zone',
          'emit_asset_event parameter names');
SELECT is((SELECT count(*)::integer FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
           WHERE n.nspname = 'tistate' AND p.proname LIKE '\_%' AND has_function_privilege('tistate_executor', p.oid, 'EXECUTE')),
          0, 'no private helper is executable by tistate_executor');

SELECT * FROM finish();
ROLLBACK;
