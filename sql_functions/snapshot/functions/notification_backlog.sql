-- defined by migration 0008_notifications.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.notification_backlog()
 RETURNS TABLE(transactions bigint, oldest timestamp with time zone)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
    SELECT count(*), min(created_at) FROM tistate.asset_event_outbox;
$function$;

COMMENT ON FUNCTION tistate.notification_backlog() IS 'Outbox rows not yet relayed and the age of the oldest (a growing backlog means no relay is running)';
