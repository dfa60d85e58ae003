-- Private helpers shared by the public functions: errors, uuid7, payload validation, row locking.
-- Private functions start with an underscore and are never granted to tistate_executor.

-- Composite types returned or passed around by the functions.
CREATE TYPE tistate.state_update_result AS (
    ti_id           uuid,
    previous_state  text,
    new_state       text,
    applied         boolean,
    new_ti_id       uuid,
    asset_event_ids integer[],
    queued_dag_ids  text[],
    lock_wait_ms    double precision,
    lock_held_ms    double precision
);
COMMENT ON TYPE tistate.state_update_result IS
    'Result of ti_update_state: applied=false for the same-state no-op; new_ti_id set on up_for_retry; lock_wait_ms / lock_held_ms time the row lock up to the function''s return (commit adds one WAL flush)';

-- The locked task instance with the run and DAG facts every transition needs.
CREATE TYPE tistate._ti_context AS (
    ti                 tistate.task_instance,
    logical_date       timestamptz,
    owners             text,
    fail_fast          boolean,
    run_partition_key  text,
    run_partition_date timestamptz
);

-- One asset event planned by the success transition, before it is inserted.
CREATE TYPE tistate._planned_event AS (
    event_id      integer,
    asset_id      integer,
    extra         jsonb,
    partition_key text,
    alias_ids     integer[]
);

------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._raise(p_code text, p_message text, p_detail jsonb DEFAULT NULL, p_hint text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    -- The SQLSTATE is the contract (see wrapper/tistate/errors.py); DETAIL is JSON for machines.
    IF p_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, DETAIL = coalesce(p_detail::text, '');
    END IF;
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, DETAIL = coalesce(p_detail::text, ''), HINT = p_hint;
END
$$;
COMMENT ON FUNCTION tistate._raise(text, text, jsonb, text) IS 'Raise a TSxxx error with a JSON DETAIL';

CREATE FUNCTION tistate._invalid(p_field text, p_message text)
RETURNS void
LANGUAGE sql
VOLATILE
AS $$
    SELECT tistate._raise('TS422', format('invalid payload: %s: %s', p_field, p_message),
                          jsonb_build_object('reason', 'invalid_payload', 'field', p_field, 'message', p_message));
$$;
COMMENT ON FUNCTION tistate._invalid(text, text) IS 'Raise TS422 naming the offending payload field';

CREATE FUNCTION tistate._uuid7(p_now timestamptz DEFAULT clock_timestamp())
RETURNS uuid
LANGUAGE sql
VOLATILE
AS $$
    -- RFC 9562 version 7: 48-bit unix milliseconds, then random bits; version and variant fixed up.
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM p_now) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid;
$$;
COMMENT ON FUNCTION tistate._uuid7(timestamptz) IS 'A time-ordered uuid version 7 (PostgreSQL 15 has no uuidv7())';

------------------------------------------------------------------------------------------------
-- Payload validation. Every check raises TS422 with the field path in DETAIL, before any lock.
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._check_object(p_value jsonb, p_path text, p_allowed text[], p_required text[] DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._check_object(jsonb, text, text[], text[]) IS
    'TS422 unless p_value is an object with only allowed keys and every required key non-null';

CREATE FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._text(jsonb, text, integer, boolean) IS 'A JSON string (or null) of bounded length, else TS422';

CREATE FUNCTION tistate._integer(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
IMMUTABLE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._integer(jsonb, text, boolean) IS 'A JSON integer in int4 range, else TS422';

CREATE FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
RETURNS timestamptz
LANGUAGE plpgsql
STABLE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._timestamp(jsonb, text, boolean) IS 'A timezone-aware ISO 8601 datetime, else TS422';

CREATE FUNCTION tistate._json_object(p_value jsonb, p_path text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(p_value) <> 'object' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON object');
    END IF;
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION tistate._json_object(jsonb, text) IS 'A JSON object ({} for null/absent), else TS422';

CREATE FUNCTION tistate._array(p_value jsonb, p_path text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN '[]'::jsonb;
    END IF;
    IF jsonb_typeof(p_value) <> 'array' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON array');
    END IF;
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION tistate._array(jsonb, text) IS 'A JSON array ([] for null/absent), else TS422';

CREATE FUNCTION tistate._check_uri(p_uri text, p_path text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._check_uri(text, text) IS 'Airflow''s asset uri rules: non-empty ASCII, not airflow://';

CREATE FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_name text := tistate._text(p_value, p_path, 1500, p_nullable);
BEGIN
    IF v_name = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty');
    END IF;
    RETURN v_name;
END
$$;
COMMENT ON FUNCTION tistate._asset_name(jsonb, text, boolean) IS 'A non-empty asset or alias name of at most 1500 characters';

-- AssetProfile (task_outlets item and define_dag outlet): {type, name, uri}; normalised with both keys.
CREATE FUNCTION tistate._asset_profile(p_value jsonb, p_path text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
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
    RETURN jsonb_build_object('type', v_type, 'name', v_name, 'uri', v_uri);
END
$$;
COMMENT ON FUNCTION tistate._asset_profile(jsonb, text) IS 'Validate and normalise an AssetProfile';

-- An Asset key {name, uri} as used in outlet events.
CREATE FUNCTION tistate._asset_key(p_value jsonb, p_path text)
RETURNS jsonb
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    PERFORM tistate._check_object(p_value, p_path, ARRAY['name', 'uri'], ARRAY['name', 'uri']);
    RETURN jsonb_build_object(
        'name', tistate._asset_name(p_value -> 'name', p_path || '.name'),
        'uri', tistate._check_uri(tistate._text(p_value -> 'uri', p_path || '.uri', 1500, false), p_path || '.uri'));
END
$$;
COMMENT ON FUNCTION tistate._asset_key(jsonb, text) IS 'Validate an asset key {name, uri}';

CREATE FUNCTION tistate._partition_key(p_value jsonb, p_path text)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._partition_key(jsonb, text) IS 'Airflow''s partition key rule: null, or 1-250 non-blank characters';

------------------------------------------------------------------------------------------------
-- Locking
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._set_lock_timeout(p_lock_timeout interval)
RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    -- Precedence: the call's p_lock_timeout, then the GUC tistate.lock_timeout, then 2 s. Public
    -- functions declare SET lock_timeout, so the caller's own setting is restored when they return.
    IF p_lock_timeout IS NOT NULL THEN
        PERFORM set_config('lock_timeout', greatest(1, (extract(epoch FROM p_lock_timeout) * 1000)::bigint)::text, true);
    ELSIF coalesce(current_setting('tistate.lock_timeout', true), '') <> '' THEN
        PERFORM set_config('lock_timeout', current_setting('tistate.lock_timeout'), true);
    ELSE
        PERFORM set_config('lock_timeout', '2s', true);
    END IF;
END
$$;
COMMENT ON FUNCTION tistate._set_lock_timeout(interval) IS 'Bound every lock wait of the current call';

CREATE FUNCTION tistate._raise_missing_ti(p_ti_id uuid)
RETURNS void
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    -- An id archived by a retry answers 410 everywhere (Airflow answers 404 on /state: fixed).
    IF EXISTS (SELECT 1 FROM tistate.task_instance_history WHERE task_instance_id = p_ti_id) THEN
        PERFORM tistate._raise('TS410', format('task instance %s was archived by a retry', p_ti_id),
                               jsonb_build_object('reason', 'gone', 'message', 'Task Instance was archived by a retry'),
                               'the task instance has a new id; fetch it by dag_id, run_id, task_id and map_index');
    END IF;
    PERFORM tistate._raise('TS404', format('task instance %s not found', p_ti_id),
                           jsonb_build_object('reason', 'not_found', 'message', 'Task Instance not found'));
END
$$;
COMMENT ON FUNCTION tistate._raise_missing_ti(uuid) IS 'TS410 for an archived id, else TS404';

CREATE FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval DEFAULT NULL)
RETURNS tistate._ti_context
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_ctx tistate._ti_context;
BEGIN
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    SELECT ti, dr.logical_date, d.owners, d.fail_fast, dr.partition_key, dr.partition_date
    INTO v_ctx
    FROM tistate.task_instance AS ti
    JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN tistate.dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id
    FOR UPDATE OF ti;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    RETURN v_ctx;
END
$$;
COMMENT ON FUNCTION tistate._lock_ti(uuid, interval) IS
    'Lock one task instance row (bounded by lock_timeout) with its run and DAG facts; TS404/TS410 if absent';

CREATE FUNCTION tistate._audit(p_ctx tistate._ti_context, p_event text, p_now timestamptz, p_extra text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    -- PL/pgSQL, not SQL, so the INSERT's plan is cached for the session.
    INSERT INTO tistate.log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
    VALUES (p_now, (p_ctx.ti).dag_id, (p_ctx.ti).task_id, (p_ctx.ti).run_id, (p_ctx.ti).map_index,
            (p_ctx.ti).try_number, p_event, p_ctx.logical_date, p_ctx.owners,
            coalesce(p_extra, CASE WHEN coalesce((p_ctx.ti).hostname, '') <> ''
                                   THEN jsonb_build_object('host_name', (p_ctx.ti).hostname)::text END));
END
$$;
COMMENT ON FUNCTION tistate._audit(tistate._ti_context, text, timestamptz, text) IS
    'The audit log row of an applied transition (Airflow reference section 3.7)';

CREATE FUNCTION tistate._invalid_state(p_ctx tistate._ti_context, p_message text)
RETURNS void
LANGUAGE sql
VOLATILE
AS $$
    SELECT tistate._raise('TS409', p_message,
                          jsonb_build_object('reason', 'invalid_state', 'message', p_message,
                                             'previous_state', (p_ctx.ti).state));
$$;
COMMENT ON FUNCTION tistate._invalid_state(tistate._ti_context, text) IS 'TS409 with previous_state in DETAIL';
