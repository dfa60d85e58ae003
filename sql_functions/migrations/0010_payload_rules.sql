-- One rule set for payload fields. Each rule is a *_problem function: NULL when the value is valid,
-- else what is wrong ('<sub-path>: <message>' for objects, the message for scalars). They are
-- single-expression SQL functions, so the planner inlines them into the statement that calls them
-- (a success payload is checked by one query over all its outlets and events, with no function
-- call per field), and the raising helpers of 0003 (_asset_profile, _asset_key, _asset_name,
-- _check_uri, _partition_key) become thin wrappers over the same rules. Until now the success
-- payload had a fast check and a precise path that encoded these rules twice.
SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE FUNCTION tistate._first_unknown_key(p_value jsonb, p_allowed text[])
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Only evaluated on the error path (inside a CASE branch), so its sub-select costs nothing on
    -- valid payloads.
    SELECT min(k) FROM jsonb_object_keys(p_value - p_allowed) AS k
$function$;

COMMENT ON FUNCTION tistate._first_unknown_key(p_value jsonb, p_allowed text[]) IS 'The first (sorted) key of an object that is not one of p_allowed, or NULL';

CREATE FUNCTION tistate._text_problem(p_value jsonb, p_max_length integer)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- An optional string field of at most p_max_length characters; absent or null is valid here.
    SELECT CASE
        WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
        WHEN jsonb_typeof(p_value) <> 'string' THEN 'must be a string'
        WHEN length(p_value #>> '{}') > p_max_length THEN 'longer than ' || p_max_length::text || ' characters'
    END
$function$;

COMMENT ON FUNCTION tistate._text_problem(p_value jsonb, p_max_length integer) IS 'What is wrong with an optional string of at most p_max_length characters, NULL when valid or absent';

CREATE FUNCTION tistate._invalid_if(p_path text, p_problem text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_problem IS NOT NULL THEN
        PERFORM tistate._invalid(p_path, p_problem);
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._invalid_if(p_path text, p_problem text) IS 'TS422 naming p_path when a rule found a problem (p_problem not NULL)';

CREATE FUNCTION tistate._name_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- An asset or alias name; absent or null is valid here (the caller knows when it is required).
    -- Names are unique-indexed: a btree entry holds at most about 2700 bytes (PostgreSQL's index
    -- row limit, SQLSTATE 54000), which 1500 characters of multi-byte text can exceed.
    SELECT coalesce(tistate._text_problem(p_value, 1500), CASE
        WHEN p_value #>> '{}' = '' THEN 'must not be empty'
        WHEN octet_length(p_value #>> '{}') > 2600 THEN 'longer than 2600 bytes'
    END)
$function$;

COMMENT ON FUNCTION tistate._name_problem(p_value jsonb) IS 'What is wrong with an asset or alias name (string, 1-1500 characters, at most 2600 bytes), NULL when valid or absent';

CREATE FUNCTION tistate._uri_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT coalesce(tistate._text_problem(p_value, 1500), CASE
        WHEN p_value #>> '{}' = '' THEN 'must not be empty'
        WHEN p_value #>> '{}' !~ '^[\x01-\x7f]*$' THEN 'must be ASCII'
        WHEN lower(p_value #>> '{}') ~ '^airflow://' THEN 'the airflow:// scheme is reserved'
    END)
$function$;

COMMENT ON FUNCTION tistate._uri_problem(p_value jsonb) IS 'What is wrong with an asset uri (ASCII string, 1-1500 characters, not airflow://), NULL when valid or absent';

CREATE FUNCTION tistate._partition_key_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Python's str.strip() whitespace of the ASCII range (E'\v' is not an escape in PostgreSQL).
    SELECT coalesce(tistate._text_problem(p_value, 250), CASE
        WHEN btrim(p_value #>> '{}', E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f') = '' THEN 'must not be empty or whitespace'
    END)
$function$;

COMMENT ON FUNCTION tistate._partition_key_problem(p_value jsonb) IS 'What is wrong with a partition key (a non-blank string of at most 250 characters), NULL when valid or absent';

CREATE FUNCTION tistate._object_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE WHEN p_value IS NOT NULL AND jsonb_typeof(p_value) NOT IN ('null', 'object')
                THEN 'must be a JSON object' END
$function$;

COMMENT ON FUNCTION tistate._object_problem(p_value jsonb) IS 'What is wrong with an optional JSON object field (extra), NULL when an object, null or absent';

CREATE FUNCTION tistate._asset_profile_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Airflow's AssetProfile as a task outlet: {type, name, uri}, checked in field order. Each rule
    -- is one coalesce argument, evaluated only while the ones before it found nothing.
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN p_value - ARRAY['type', 'name', 'uri'] <> '{}'::jsonb
             THEN '.' || tistate._first_unknown_key(p_value, ARRAY['type', 'name', 'uri']) || ': unknown field' END,
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'type'), 'null') = 'null' THEN '.type: field required'
             WHEN jsonb_typeof(p_value -> 'type') <> 'string' THEN '.type: must be a string' END,
        '.name: ' || tistate._name_problem(p_value -> 'name'),
        '.uri: ' || tistate._uri_problem(p_value -> 'uri'),
        CASE p_value ->> 'type'
            WHEN 'Asset' THEN
                CASE WHEN p_value ->> 'name' IS NULL OR p_value ->> 'uri' IS NULL THEN ': an Asset needs both name and uri'
                     -- (name, uri) is unique-indexed together: both must fit one btree entry.
                     WHEN octet_length(p_value ->> 'name') + octet_length(p_value ->> 'uri') > 2600
                     THEN '.name: name and uri together longer than 2600 bytes' END
            WHEN 'AssetUriRef' THEN
                CASE WHEN p_value ->> 'uri' IS NULL THEN '.uri: field required for AssetUriRef' END
            WHEN 'AssetNameRef' THEN
                CASE WHEN p_value ->> 'name' IS NULL THEN '.name: field required for AssetNameRef' END
            WHEN 'AssetAlias' THEN
                CASE WHEN p_value ->> 'name' IS NULL THEN '.name: field required for AssetAlias' END
            ELSE '.type: must be one of Asset, AssetNameRef, AssetUriRef, AssetAlias'
        END) END
$function$;

COMMENT ON FUNCTION tistate._asset_profile_problem(p_value jsonb) IS 'What is wrong with a task outlet (AssetProfile: Asset, AssetNameRef, AssetUriRef or AssetAlias) as ''<sub-path>: <message>'', NULL when valid';

CREATE FUNCTION tistate._asset_key_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- An asset's key {name, uri}, both required.
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN p_value - ARRAY['name', 'uri'] <> '{}'::jsonb
             THEN '.' || tistate._first_unknown_key(p_value, ARRAY['name', 'uri']) || ': unknown field' END,
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'name'), 'null') = 'null' THEN '.name: field required'
             WHEN coalesce(jsonb_typeof(p_value -> 'uri'), 'null') = 'null' THEN '.uri: field required' END,
        '.name: ' || tistate._name_problem(p_value -> 'name'),
        '.uri: ' || tistate._uri_problem(p_value -> 'uri'),
        CASE WHEN octet_length(p_value ->> 'name') + octet_length(p_value ->> 'uri') > 2600
             THEN '.name: name and uri together longer than 2600 bytes' END) END
$function$;

COMMENT ON FUNCTION tistate._asset_key_problem(p_value jsonb) IS 'What is wrong with an asset key {name, uri} as ''<sub-path>: <message>'', NULL when valid';

CREATE FUNCTION tistate._outlet_event_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- One item of outlet_events: an alias event (source_alias_name set) or a direct event. Each
    -- rule appears once (the inlined expression stays small: its set-up is paid on every call).
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'source_alias_name'), 'null') <> 'null'
             THEN CASE WHEN p_value - ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'] <> '{}'::jsonb
                       THEN '.' || tistate._first_unknown_key(p_value,
                               ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra']) || ': unknown field' END
             ELSE CASE WHEN p_value - ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'] <> '{}'::jsonb
                       THEN '.' || tistate._first_unknown_key(p_value,
                               ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name']) || ': unknown field' END
        END,
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'dest_asset_key'), 'null') = 'null'
             THEN '.dest_asset_key: field required' END,
        '.dest_asset_key' || tistate._asset_key_problem(p_value -> 'dest_asset_key'),
        '.source_alias_name: ' || tistate._name_problem(p_value -> 'source_alias_name'),
        '.dest_asset_extra: ' || tistate._object_problem(p_value -> 'dest_asset_extra'),
        '.extra: ' || tistate._object_problem(p_value -> 'extra'),
        '.partition_key: ' || tistate._partition_key_problem(p_value -> 'partition_key')) END
$function$;

COMMENT ON FUNCTION tistate._outlet_event_problem(p_value jsonb) IS 'What is wrong with one outlet_events item (an alias event or a direct event) as ''<sub-path>: <message>'', NULL when valid';

CREATE FUNCTION tistate._raise_problem(p_path text, p_problem text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    -- '<sub-path>: <message>': messages never contain ': ', sub-paths may (a key is the client's).
    v_cut integer := position(' :' IN reverse(p_problem));
BEGIN
    IF p_problem IS NOT NULL THEN
        PERFORM tistate._invalid(p_path || left(p_problem, length(p_problem) - v_cut - 1), right(p_problem, v_cut - 1));
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._raise_problem(p_path text, p_problem text) IS 'TS422 for a problem ''<sub-path>: <message>'' found under p_path (nothing when p_problem is NULL)';

CREATE OR REPLACE FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean DEFAULT true)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF NOT p_nullable AND (p_value IS NULL OR jsonb_typeof(p_value) = 'null') THEN
        PERFORM tistate._invalid(p_path, 'field required');
    END IF;
    PERFORM tistate._invalid_if(p_path, tistate._text_problem(p_value, p_max_length));
    RETURN p_value #>> '{}';
END
$function$;

-- _check_object's unknown-key look-up is _first_unknown_key's.
CREATE OR REPLACE FUNCTION tistate._check_object(p_value jsonb, p_path text, p_allowed text[], p_required text[] DEFAULT '{}'::text[])
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
    v_key := tistate._first_unknown_key(p_value, p_allowed);
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

-- _json_object and _array were the same check for two types.
CREATE FUNCTION tistate._json_container(p_value jsonb, p_path text, p_type text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    -- An optional JSON object or array: absent or null is the empty one.
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN CASE p_type WHEN 'object' THEN '{}'::jsonb ELSE '[]'::jsonb END;
    END IF;
    IF jsonb_typeof(p_value) <> p_type THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON ' || p_type);
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._json_container(p_value jsonb, p_path text, p_type text) IS 'An optional JSON object or array (p_type): the value, or the empty one when absent or null; TS422 for another type';

CREATE OR REPLACE FUNCTION tistate._json_object(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT tistate._json_container(p_value, p_path, 'object')
$function$;

CREATE OR REPLACE FUNCTION tistate._array(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT tistate._json_container(p_value, p_path, 'array')
$function$;

-- The raising helpers, now over the rules above.

CREATE OR REPLACE FUNCTION tistate._check_uri(p_uri text, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._uri_problem(to_jsonb(p_uri)));
    RETURN p_uri;
END
$function$;

CREATE OR REPLACE FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._name_problem(p_value));
    IF NOT p_nullable AND (p_value IS NULL OR jsonb_typeof(p_value) = 'null') THEN
        PERFORM tistate._invalid(p_path, 'field required');
    END IF;
    RETURN p_value #>> '{}';
END
$function$;

CREATE OR REPLACE FUNCTION tistate._partition_key(p_value jsonb, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._partition_key_problem(p_value));
    RETURN p_value #>> '{}';
END
$function$;

CREATE OR REPLACE FUNCTION tistate._asset_profile(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._raise_problem(p_path, tistate._asset_profile_problem(p_value));
    -- Normalised: a reference keeps only what identifies it.
    RETURN jsonb_build_object('type', p_value ->> 'type',
                              'name', CASE WHEN p_value ->> 'type' <> 'AssetUriRef' THEN p_value ->> 'name' END,
                              'uri', CASE WHEN p_value ->> 'type' IN ('Asset', 'AssetUriRef') THEN p_value ->> 'uri' END);
END
$function$;

CREATE OR REPLACE FUNCTION tistate._asset_key(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._raise_problem(p_path, tistate._asset_key_problem(p_value));
    RETURN jsonb_build_object('name', p_value ->> 'name', 'uri', p_value ->> 'uri');
END
$function$;

-- _asset_index_size's rule is now part of _asset_profile_problem and _asset_key_problem.
DROP FUNCTION tistate._asset_index_size(jsonb, text);

CREATE FUNCTION tistate._timestamp_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- ISO 8601 with an explicit offset: a naive timestamp would depend on the session's TimeZone.
    -- (Whether the date exists, 30 February, is found by the cast in _timestamp.)
    SELECT coalesce(tistate._text_problem(p_value, 64), CASE
        WHEN p_value #>> '{}' !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$'
            THEN 'must be an ISO 8601 datetime with a timezone offset'
    END)
$function$;

COMMENT ON FUNCTION tistate._timestamp_problem(p_value jsonb) IS 'What is wrong with the shape of a datetime (an ISO 8601 string with an offset), NULL when valid or absent';

CREATE OR REPLACE FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_text text := p_value #>> '{}';
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._timestamp_problem(p_value));
    IF v_text IS NULL THEN
        IF NOT p_nullable THEN
            PERFORM tistate._invalid(p_path, 'field required');
        END IF;
        RETURN NULL;
    END IF;
    -- A value that is certainly a date that exists (no 29 February, offsets up to 14 h) is cast
    -- directly; anything else is cast in a subtransaction that turns a bad date into TS422.
    IF v_text ~ '^[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?)$' THEN
        RETURN v_text::timestamptz;
    END IF;
    BEGIN
        RETURN v_text::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_time_zone_displacement_value THEN
        PERFORM tistate._invalid(p_path, 'not a valid datetime');
    END;
    RETURN NULL;
END
$function$;

CREATE FUNCTION tistate._success_fields_problem(p_payload jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- The top-level fields of a TISuccessStatePayload up to task_outlets (its items are checked
    -- one by one by _asset_profile_problem); end_date's shape only (_timestamp casts it).
    SELECT CASE WHEN p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN p_payload - ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'] <> '{}'::jsonb
             THEN tistate._first_unknown_key(p_payload,
                      ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index']) || ': unknown field' END,
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'end_date'), 'null') = 'null' THEN 'end_date: field required' END,
        'end_date: ' || tistate._timestamp_problem(p_payload -> 'end_date'),
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'rendered_map_index'), 'null') NOT IN ('null', 'string')
             THEN 'rendered_map_index: must be a string'
             WHEN length(p_payload ->> 'rendered_map_index') > 250 THEN 'rendered_map_index: longer than 250 characters' END,
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'task_outlets'), 'null') NOT IN ('null', 'array')
             THEN 'task_outlets: must be a JSON array'
             -- Bounded work per call (a success with the most of both registers in about a second).
             WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array' AND jsonb_array_length(p_payload -> 'task_outlets') > 1000 THEN 'task_outlets: at most 1000 outlets' END) END
$function$;

COMMENT ON FUNCTION tistate._success_fields_problem(p_payload jsonb) IS 'What is wrong with the fields of a success payload up to task_outlets (not its items) as ''<field>: <message>'', NULL when valid';

CREATE OR REPLACE FUNCTION tistate._normalize_success(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_outlets jsonb := CASE WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array' THEN p_payload -> 'task_outlets' ELSE '[]' END;
    v_events  jsonb := CASE WHEN jsonb_typeof(p_payload -> 'outlet_events') = 'array' THEN p_payload -> 'outlet_events' ELSE '[]' END;
    v_result  jsonb;
BEGIN
    -- The first bad field in payload order raises TS422 naming it: one statement over the fields
    -- and every outlet and event (the rules are inlined into it).
    PERFORM tistate._raise_problem('', coalesce(
        tistate._success_fields_problem(p_payload),
        (SELECT format('task_outlets[%s]', y.i - 1) || y.problem
         FROM (SELECT x.i, tistate._asset_profile_problem(x.v) AS problem
               FROM jsonb_array_elements(v_outlets) WITH ORDINALITY AS x (v, i) OFFSET 0) AS y
         WHERE y.problem IS NOT NULL
         ORDER BY y.i LIMIT 1),
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'outlet_events'), 'null') NOT IN ('null', 'array')
             THEN 'outlet_events: must be a JSON array'
             WHEN jsonb_array_length(v_events) > 10000 THEN 'outlet_events: at most 10000 events' END,
        (SELECT format('outlet_events[%s]', y.i - 1) || y.problem
         FROM (SELECT x.i, tistate._outlet_event_problem(x.v) AS problem
               FROM jsonb_array_elements(v_events) WITH ORDINALITY AS x (v, i) OFFSET 0) AS y
         WHERE y.problem IS NOT NULL
         ORDER BY y.i LIMIT 1)));
    -- The result: state, end_date (normalised; a date that does not exist, such as 30 February, is
    -- the one problem left, found by the cast), rendered_map_index when sent, and task_outlets and
    -- outlet_events as sent ([] when absent or null).
    v_result := jsonb_build_object('state', 'success',
                                   'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
    IF p_payload ? 'rendered_map_index' THEN
        v_result := v_result || jsonb_build_object('rendered_map_index', p_payload ->> 'rendered_map_index');
    END IF;
    RETURN v_result || jsonb_build_object('task_outlets', v_outlets, 'outlet_events', v_events);
END
$function$;

-- Every later migration ends with this: what it created belongs to tistate_owner (as 0009 did for
-- everything before it) and only the
-- grants of 0009 (to tistate_executor and tistate_operator) allow executing anything.
CREATE FUNCTION tistate._settle_privileges()
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_statement text;
BEGIN
    FOR v_statement IN
        SELECT format('ALTER FUNCTION %s OWNER TO tistate_owner', p.oid::regprocedure)
        FROM pg_proc AS p
        WHERE p.pronamespace = 'tistate'::regnamespace AND p.proowner <> 'tistate_owner'::regrole
        UNION ALL
        SELECT format('ALTER %s tistate.%I OWNER TO tistate_owner',
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname)
        FROM pg_class AS c
        WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p')
          AND c.relowner <> 'tistate_owner'::regrole
        UNION ALL
        SELECT format('ALTER TYPE tistate.%I OWNER TO tistate_owner', t.typname)
        FROM pg_type AS t
        WHERE t.typnamespace = 'tistate'::regnamespace AND t.typtype IN ('c', 'e', 'd')
          AND t.typowner <> 'tistate_owner'::regrole
          AND NOT EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    LOOP
        EXECUTE v_statement;
    END LOOP;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
END
$function$;

COMMENT ON FUNCTION tistate._settle_privileges() IS 'Run at the end of each migration after 0009: new functions, tables and types owned by tistate_owner, no function executable by PUBLIC';

SELECT tistate._settle_privileges();
