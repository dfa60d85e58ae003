SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE FUNCTION tistate._raise(p_code text, p_message text, p_detail jsonb DEFAULT NULL::jsonb, p_hint text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- The SQLSTATE is the contract (see wrapper/tistate/errors.py); DETAIL is JSON for machines.
    IF p_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, DETAIL = coalesce(p_detail::text, '');
    END IF;
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, DETAIL = coalesce(p_detail::text, ''), HINT = p_hint;
END
$function$;

COMMENT ON FUNCTION tistate._raise(p_code text, p_message text, p_detail jsonb, p_hint text) IS 'Raise a TSxxx error with a JSON DETAIL';

CREATE FUNCTION tistate._invalid(p_field text, p_message text)
 RETURNS void
 LANGUAGE sql
AS $function$
    SELECT tistate._raise('TS422', format('invalid payload: %s: %s', p_field, p_message),
                          jsonb_build_object('reason', 'invalid_payload', 'field', p_field, 'message', p_message));
$function$;

COMMENT ON FUNCTION tistate._invalid(p_field text, p_message text) IS 'Raise TS422 naming the offending payload field';

CREATE FUNCTION tistate._uuid7(p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS uuid
 LANGUAGE sql
AS $function$
    -- RFC 9562 version 7: 48-bit unix milliseconds, then random bits; version and variant fixed up.
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM p_now) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid;
$function$;

COMMENT ON FUNCTION tistate._uuid7(p_now timestamp with time zone) IS 'A time-ordered uuid version 7 (PostgreSQL 15 has no uuidv7())';

CREATE FUNCTION tistate._check_object(p_value jsonb, p_path text, p_allowed text[], p_required text[] DEFAULT '{}'::text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_key text;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON object');
    END IF;
    SELECT k INTO v_key FROM jsonb_object_keys(p_value) AS k WHERE k <> ALL (p_allowed) ORDER BY k LIMIT 1;
    IF v_key IS NOT NULL THEN
        PERFORM tistate._invalid(concat_ws('.', nullif(p_path, ''), v_key), 'unknown field');
    END IF;
    SELECT r INTO v_key FROM unnest(p_required) AS r
    WHERE NOT p_value ? r OR jsonb_typeof(p_value -> r) = 'null' ORDER BY r LIMIT 1;
    IF v_key IS NOT NULL THEN
        PERFORM tistate._invalid(concat_ws('.', nullif(p_path, ''), v_key), 'field required');
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._check_object(p_value jsonb, p_path text, p_allowed text[], p_required text[]) IS 'TS422 unless p_value is an object with only allowed keys and every required key non-null';

CREATE FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean DEFAULT true)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_text text;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        IF NOT p_nullable THEN
            PERFORM tistate._invalid(p_path, 'field required');
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'string' THEN
        PERFORM tistate._invalid(p_path, 'must be a string');
    END IF;
    v_text := p_value #>> '{}';
    IF length(v_text) > p_max_length THEN
        PERFORM tistate._invalid(p_path, format('longer than %s characters', p_max_length));
    END IF;
    RETURN v_text;
END
$function$;

COMMENT ON FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean) IS 'A JSON string (or null) of bounded length, else TS422';

CREATE FUNCTION tistate._integer(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_number numeric;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        IF NOT p_nullable THEN
            PERFORM tistate._invalid(p_path, 'field required');
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'number' THEN
        PERFORM tistate._invalid(p_path, 'must be an integer');
    END IF;
    v_number := (p_value #>> '{}')::numeric;
    IF v_number <> trunc(v_number) OR v_number NOT BETWEEN -2147483648 AND 2147483647 THEN
        PERFORM tistate._invalid(p_path, 'must be a 32-bit integer');
    END IF;
    RETURN v_number::integer;
END
$function$;

COMMENT ON FUNCTION tistate._integer(p_value jsonb, p_path text, p_nullable boolean) IS 'A JSON integer in int4 range, else TS422';

CREATE FUNCTION tistate._number(p_value jsonb, p_path text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'number' THEN
        PERFORM tistate._invalid(p_path, 'must be a number');
    END IF;
    RETURN (p_value #>> '{}')::double precision;
END
$function$;

COMMENT ON FUNCTION tistate._number(p_value jsonb, p_path text) IS 'A JSON number (or null) as double precision, else TS422';

CREATE FUNCTION tistate._boolean(p_value jsonb, p_path text, p_default boolean)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN p_default;
    END IF;
    IF jsonb_typeof(p_value) <> 'boolean' THEN
        PERFORM tistate._invalid(p_path, 'must be a boolean');
    END IF;
    RETURN p_value::boolean;
END
$function$;

COMMENT ON FUNCTION tistate._boolean(p_value jsonb, p_path text, p_default boolean) IS 'A JSON boolean (p_default when absent), else TS422';

CREATE FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_text text := tistate._text(p_value, p_path, 64, p_nullable);
BEGIN
    IF v_text IS NULL THEN
        RETURN NULL;
    END IF;
    -- ISO 8601 with an explicit offset: a naive timestamp would depend on the session's TimeZone.
    IF v_text !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$' THEN
        PERFORM tistate._invalid(p_path, 'must be an ISO 8601 datetime with a timezone offset');
    END IF;
    BEGIN
        RETURN v_text::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_time_zone_displacement_value THEN
        PERFORM tistate._invalid(p_path, 'not a valid datetime');
    END;
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean) IS 'A timezone-aware ISO 8601 datetime, else TS422';

CREATE FUNCTION tistate._json_object(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(p_value) <> 'object' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON object');
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._json_object(p_value jsonb, p_path text) IS 'A JSON object ({} for null/absent), else TS422';

CREATE FUNCTION tistate._array(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN '[]'::jsonb;
    END IF;
    IF jsonb_typeof(p_value) <> 'array' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON array');
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._array(p_value jsonb, p_path text) IS 'A JSON array ([] for null/absent), else TS422';

CREATE FUNCTION tistate._check_uri(p_uri text, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_uri IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_uri = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty');
    END IF;
    IF p_uri !~ '^[\x01-\x7f]*$' THEN
        PERFORM tistate._invalid(p_path, 'must be ASCII');
    END IF;
    IF lower(p_uri) ~ '^airflow://' THEN
        PERFORM tistate._invalid(p_path, 'the airflow:// scheme is reserved');
    END IF;
    RETURN p_uri;
END
$function$;

COMMENT ON FUNCTION tistate._check_uri(p_uri text, p_path text) IS 'Airflow''s asset uri rules: non-empty ASCII, not airflow://';

CREATE FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_name text := tistate._text(p_value, p_path, 1500, p_nullable);
BEGIN
    IF v_name = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty');
    END IF;
    -- Names are unique-indexed: a btree entry holds at most about 2700 bytes (PostgreSQL's index
    -- row limit, SQLSTATE 54000), which 1500 characters of multi-byte text can exceed.
    IF octet_length(v_name) > 2600 THEN
        PERFORM tistate._invalid(p_path, 'longer than 2600 bytes');
    END IF;
    RETURN v_name;
END
$function$;

COMMENT ON FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean) IS 'A non-empty asset or alias name of at most 1500 characters';

CREATE FUNCTION tistate._asset_profile(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_type text;
    v_name text;
    v_uri  text;
BEGIN
    PERFORM tistate._check_object(p_value, p_path, ARRAY['type', 'name', 'uri'], ARRAY['type']);
    v_type := tistate._text(p_value -> 'type', p_path || '.type', 64, false);
    v_name := tistate._asset_name(p_value -> 'name', p_path || '.name', true);
    v_uri := tistate._check_uri(tistate._text(p_value -> 'uri', p_path || '.uri', 1500), p_path || '.uri');
    CASE v_type
        WHEN 'Asset' THEN
            IF v_name IS NULL OR v_uri IS NULL THEN
                PERFORM tistate._invalid(p_path, 'an Asset needs both name and uri');
            END IF;
        WHEN 'AssetNameRef', 'AssetAlias' THEN
            IF v_name IS NULL THEN
                PERFORM tistate._invalid(p_path || '.name', format('field required for %s', v_type));
            END IF;
            v_uri := NULL;
        WHEN 'AssetUriRef' THEN
            IF v_uri IS NULL THEN
                PERFORM tistate._invalid(p_path || '.uri', 'field required for AssetUriRef');
            END IF;
            v_name := NULL;
        ELSE
            PERFORM tistate._invalid(p_path || '.type', 'must be one of Asset, AssetNameRef, AssetUriRef, AssetAlias');
    END CASE;
    RETURN tistate._asset_index_size(jsonb_build_object('type', v_type, 'name', v_name, 'uri', v_uri), p_path);
END
$function$;

COMMENT ON FUNCTION tistate._asset_profile(p_value jsonb, p_path text) IS 'Validate and normalise an AssetProfile';

CREATE FUNCTION tistate._asset_index_size(p_asset jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    -- (name, uri) is unique-indexed together: both must fit one btree entry (about 2700 bytes).
    IF coalesce(octet_length(p_asset ->> 'name') + octet_length(p_asset ->> 'uri'), 0) > 2600 THEN
        PERFORM tistate._invalid(p_path || '.name', 'name and uri together longer than 2600 bytes');
    END IF;
    RETURN p_asset;
END
$function$;

COMMENT ON FUNCTION tistate._asset_index_size(p_asset jsonb, p_path text) IS 'TS422 when an asset''s name and uri together exceed what one index entry holds (2600 bytes)';

CREATE FUNCTION tistate._asset_key(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._check_object(p_value, p_path, ARRAY['name', 'uri'], ARRAY['name', 'uri']);
    RETURN tistate._asset_index_size(jsonb_build_object(
        'name', tistate._asset_name(p_value -> 'name', p_path || '.name'),
        'uri', tistate._check_uri(tistate._text(p_value -> 'uri', p_path || '.uri', 1500, false), p_path || '.uri')), p_path);
END
$function$;

COMMENT ON FUNCTION tistate._asset_key(p_value jsonb, p_path text) IS 'Validate an asset key {name, uri}';

CREATE FUNCTION tistate._partition_key(p_value jsonb, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_key text;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'string' THEN
        PERFORM tistate._invalid(p_path, 'must be a string');
    END IF;
    v_key := p_value #>> '{}';
    -- Python's str.strip() whitespace of the ASCII range (E'\v' is not an escape in PostgreSQL).
    IF btrim(v_key, E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f') = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty or whitespace');
    END IF;
    IF length(v_key) > 250 THEN
        PERFORM tistate._invalid(p_path, 'longer than 250 characters');
    END IF;
    RETURN v_key;
END
$function$;

COMMENT ON FUNCTION tistate._partition_key(p_value jsonb, p_path text) IS 'Airflow''s partition key rule: null, or 1-250 non-blank characters';

CREATE FUNCTION tistate._set_lock_timeout(p_lock_timeout interval)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_value text;
BEGIN
    -- Precedence: the call's p_lock_timeout, then the GUC tistate.lock_timeout, then 2 s. The 2 s
    -- default is every locking public function's own `SET lock_timeout = '2s'` (which also restores
    -- the caller's setting on return), so nothing is set when nothing overrides it.
    -- (Assignments, not PERFORM: a plain expression skips the executor.)
    IF p_lock_timeout IS NOT NULL THEN
        v_value := set_config('lock_timeout', greatest(1, (extract(epoch FROM p_lock_timeout) * 1000)::bigint)::text, true);
    ELSIF coalesce(current_setting('tistate.lock_timeout', true), '') <> '' THEN
        v_value := set_config('lock_timeout', current_setting('tistate.lock_timeout'), true);
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._set_lock_timeout(p_lock_timeout interval) IS 'Bound every lock wait of the current call';

CREATE FUNCTION tistate._raise_missing_ti(p_ti_id uuid)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_try record;
BEGIN
    -- An id archived by a retry answers 410 everywhere (Airflow answers 404 on /state: fixed).
    SELECT h.dag_id, h.run_id, h.task_id, h.map_index INTO v_try
    FROM task_instance_history AS h WHERE h.task_instance_id = p_ti_id;
    IF FOUND THEN
        PERFORM tistate._raise('TS410', format('task instance %s was archived by a retry', p_ti_id),
                               jsonb_build_object('reason', 'gone', 'message', 'Task Instance was archived by a retry',
                                                  'dag_id', v_try.dag_id, 'run_id', v_try.run_id,
                                                  'task_id', v_try.task_id, 'map_index', v_try.map_index),
                               format('the task instance has a new id (the next try): tistate ti list --dag-id %s --run-id %s shows it',
                                      v_try.dag_id, v_try.run_id));
    END IF;
    PERFORM tistate._raise('TS404', format('task instance %s not found', p_ti_id),
                           jsonb_build_object('reason', 'not_found', 'message', 'Task Instance not found'));
END
$function$;

COMMENT ON FUNCTION tistate._raise_missing_ti(p_ti_id uuid) IS 'TS410 for an archived id, else TS404';

CREATE FUNCTION tistate._invalid_state(p_ctx tistate._ti_context, p_message text)
 RETURNS void
 LANGUAGE sql
AS $function$
    SELECT tistate._raise('TS409', p_message,
                          jsonb_build_object('reason', 'invalid_state', 'message', p_message,
                                             'previous_state', (p_ctx.ti).state));
$function$;

COMMENT ON FUNCTION tistate._invalid_state(p_ctx tistate._ti_context, p_message text) IS 'TS409 with previous_state in DETAIL';

CREATE FUNCTION tistate._duration_seconds(p_value jsonb, p_path text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_text    text;
    v_m       text[];
    v_seconds double precision;
BEGIN
    -- pydantic's timedelta input: a number of seconds, or an ISO 8601 duration
    -- ([-]P[nY][nM][nW][nD][T[nH][nM][nS]], a year = 365 days and a month = 30 days, as pydantic).
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) = 'number' THEN
        v_seconds := (p_value #>> '{}')::double precision;
    ELSIF jsonb_typeof(p_value) = 'string' THEN
        v_text := upper(p_value #>> '{}');
        v_m := regexp_match(v_text,
            '^([+-])?P(?=\d|T\d)(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?'
            '(?:T(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$');
        IF v_m IS NULL THEN
            PERFORM tistate._invalid(p_path, 'must be a number of seconds or an ISO 8601 duration');
        END IF;
        v_seconds := coalesce(v_m[2]::double precision, 0) * 365 * 86400
                   + coalesce(v_m[3]::double precision, 0) * 30 * 86400
                   + coalesce(v_m[4]::double precision, 0) * 7 * 86400
                   + coalesce(v_m[5]::double precision, 0) * 86400
                   + coalesce(v_m[6]::double precision, 0) * 3600
                   + coalesce(v_m[7]::double precision, 0) * 60
                   + coalesce(v_m[8]::double precision, 0);
        IF v_m[1] = '-' THEN
            v_seconds := -v_seconds;
        END IF;
    ELSE
        PERFORM tistate._invalid(p_path, 'must be a number of seconds or an ISO 8601 duration');
    END IF;
    -- Bounded so that p_now + duration can never overflow timestamptz.
    IF abs(v_seconds) > 100.0 * 365 * 86400 THEN
        PERFORM tistate._invalid(p_path, 'longer than 100 years');
    END IF;
    RETURN v_seconds;
END
$function$;

COMMENT ON FUNCTION tistate._duration_seconds(p_value jsonb, p_path text) IS 'A pydantic timedelta (seconds number or ISO 8601 duration string, at most 100 years) in seconds, else TS422';

CREATE FUNCTION tistate._with_rendered_map_index(p_result jsonb, p_payload jsonb)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE WHEN p_payload ? 'rendered_map_index'
                THEN p_result || jsonb_build_object('rendered_map_index',
                         tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250))
                ELSE p_result END;
$function$;

COMMENT ON FUNCTION tistate._with_rendered_map_index(p_result jsonb, p_payload jsonb) IS 'Add a validated rendered_map_index when the payload sent one';

CREATE FUNCTION tistate._check_limit(p_limit integer, p_field text, p_max integer)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_limit IS NULL OR p_limit < 0 OR p_limit > p_max THEN
        PERFORM tistate._invalid(p_field, format('must be between 0 and %s', p_max));
    END IF;
    RETURN p_limit;
END
$function$;

COMMENT ON FUNCTION tistate._check_limit(p_limit integer, p_field text, p_max integer) IS 'A result limit in 0..p_max, else TS422';

CREATE FUNCTION tistate.schema_version()
 RETURNS integer
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
    SELECT coalesce(max(version), 0) FROM tistate.schema_migrations;
$function$;

COMMENT ON FUNCTION tistate.schema_version() IS 'The newest applied migration version (0 when none)';

CREATE FUNCTION tistate._standalone_only(p_function text, p_owner text)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- In Airflow mode the DAG processor and the scheduler own dag, dag_run and task_instance rows.
    IF tistate._is_airflow() THEN
        PERFORM tistate._raise('TS501', format('%s is not available on an Airflow database: %s', p_function, p_owner),
                               jsonb_build_object('reason', 'airflow_mode', 'function', p_function),
                               'in Airflow mode, let Airflow do this; tistate runs the task-instance transitions');
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._standalone_only(p_function text, p_owner text) IS 'TS501 when called on an Airflow database (for define_dag, create_dag_run, ti_queue)';

CREATE FUNCTION tistate._delay_seconds(p_value jsonb, p_path text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_seconds double precision := tistate._duration_seconds(p_value, p_path);
BEGIN
    -- A delay or a timeout from now: a duration (number of seconds or ISO 8601), not negative (a
    -- retry delay or a trigger timeout in the past is a client's mistake), at most 100 years.
    IF v_seconds < 0 THEN
        PERFORM tistate._invalid(p_path, 'must not be negative');
    END IF;
    RETURN v_seconds;
END
$function$;

COMMENT ON FUNCTION tistate._delay_seconds(p_value jsonb, p_path text) IS 'A non-negative duration in seconds (number or ISO 8601), at most 100 years; TS422 otherwise';

CREATE FUNCTION tistate._caller_now(p_now timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- The worker functions take p_now so tests and operators can state the time; a worker login
    -- cannot move it (a heartbeat at 'infinity' would never go stale): within 5 minutes of the
    -- database clock it is the caller's (clocks drift a little), further only for an operator.
    IF isfinite(p_now) THEN
        IF abs(extract(epoch FROM p_now - clock_timestamp())) <= 300 THEN
            RETURN p_now;
        END IF;
    END IF;
    IF pg_has_role(session_user, 'tistate_operator', 'USAGE') THEN
        RETURN p_now;
    END IF;
    PERFORM tistate._raise('TS403', 'only an operator may choose the time of a transition (p_now)',
                           jsonb_build_object('reason', 'forbidden', 'field', 'p_now'),
                           'leave p_now out: the database clock is used');
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION tistate._caller_now(p_now timestamp with time zone) IS 'p_now as given when within 5 minutes of the database clock or when the session user is an operator (tistate_operator); TS403 otherwise';
