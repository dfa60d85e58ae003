-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._register_outlet_events(p_ctx tistate._ti_context, p_outlets jsonb, p_events jsonb, p_now timestamp with time zone)
 RETURNS tistate._planned_event[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_alias_events jsonb;
    v_planned      tistate._planned_event[];
BEGIN
    -- Events for outlets the task did not declare are ignored, as in Airflow; so with no outlets
    -- there is nothing to register.
    IF jsonb_array_length(p_outlets) = 0 THEN
        RETURN '{}';
    END IF;

    SELECT coalesce(jsonb_agg(e ORDER BY ord), '[]') INTO v_alias_events
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x (e, ord)
    WHERE e ->> 'alias' IS NOT NULL
      AND p_outlets @> jsonb_build_array(jsonb_build_object('type', 'AssetAlias', 'name', e ->> 'alias'));

    IF jsonb_array_length(v_alias_events) > 0 THEN
        INSERT INTO tistate.asset_alias (name)
        SELECT DISTINCT e ->> 'alias' FROM jsonb_array_elements(v_alias_events) AS e
        ORDER BY 1
        ON CONFLICT (name) DO NOTHING;
        -- An asset first reached through an alias is created and activated here, as the DAG
        -- processor would on seeing it (one activeness rule for both paths: docs/semantics.md).
        WITH created AS (
            INSERT INTO tistate.asset AS a (name, uri, "group", extra, created_at, updated_at)
            SELECT DISTINCT ON (e ->> 'name', e ->> 'uri') e ->> 'name', e ->> 'uri', 'asset', e -> 'asset_extra', p_now, p_now
            FROM jsonb_array_elements(v_alias_events) AS e
            ORDER BY e ->> 'name', e ->> 'uri', (e -> 'asset_extra')::text
            ON CONFLICT (name, uri) DO NOTHING
            RETURNING a.name, a.uri
        )
        INSERT INTO tistate.asset_active (name, uri)
        SELECT c.name, c.uri FROM created AS c ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
    END IF;

    WITH outlets AS (
        SELECT o ->> 'type' AS type, o ->> 'name' AS name, o ->> 'uri' AS uri
        FROM jsonb_array_elements(p_outlets) AS o
    ),
    -- Active assets the task declared. UNION deduplicates an asset listed as Asset, NameRef and
    -- UriRef, so it gets one event per payload, not three (a fix over Airflow).
    targets AS (
        SELECT a.id, a.name, a.uri FROM outlets AS o
        JOIN tistate.asset_active AS act ON act.name = o.name AND act.uri = o.uri
        JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
        WHERE o.type = 'Asset'
        UNION
        SELECT a.id, a.name, a.uri FROM outlets AS o
        JOIN tistate.asset_active AS act ON act.name = o.name
        JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
        WHERE o.type = 'AssetNameRef'
        UNION
        SELECT a.id, a.name, a.uri FROM outlets AS o
        JOIN tistate.asset_active AS act ON act.uri = o.uri
        JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
        WHERE o.type = 'AssetUriRef'
    ),
    -- One event per payload sent for the asset, or one default event when none was sent.
    direct AS (
        SELECT t.id AS asset_id, coalesce(e.value -> 'extra', '{}'::jsonb) AS extra,
               coalesce(e.value ->> 'partition_key', (p_ctx).run_partition_key) AS partition_key,
               '{}'::integer[] AS alias_ids, 1 AS kind, coalesce(e.ordinality, 0) AS ord
        FROM targets AS t
        LEFT JOIN jsonb_array_elements(p_events) WITH ORDINALITY AS e
               ON e.value ->> 'alias' IS NULL AND e.value ->> 'name' = t.name AND e.value ->> 'uri' = t.uri
    ),
    -- Alias events: one per distinct (asset, asset extra, extra), linked to every alias that sent it.
    alias_groups AS (
        SELECT e ->> 'name' AS name, e ->> 'uri' AS uri, e -> 'extra' AS extra,
               array_agg(DISTINCT e ->> 'alias') AS aliases, min(ord) AS ord
        FROM jsonb_array_elements(v_alias_events) WITH ORDINALITY AS x (e, ord)
        GROUP BY e ->> 'name', e ->> 'uri', e -> 'asset_extra', e -> 'extra'
    ),
    via_alias AS (
        SELECT a.id AS asset_id, g.extra, (p_ctx).run_partition_key AS partition_key,
               ARRAY(SELECT al.id FROM tistate.asset_alias AS al WHERE al.name = ANY (g.aliases) ORDER BY al.id) AS alias_ids,
               2 AS kind, g.ord
        FROM alias_groups AS g
        JOIN tistate.asset AS a ON a.name = g.name AND a.uri = g.uri
        JOIN tistate.asset_active AS act ON act.name = a.name AND act.uri = a.uri
    ),
    planned AS (
        SELECT * FROM direct
        UNION ALL
        SELECT * FROM via_alias
        ORDER BY kind, asset_id, ord
    )
    SELECT array_agg(ROW(nextval('tistate.asset_event_id_seq')::integer, p.asset_id, p.extra,
                         p.partition_key, p.alias_ids)::tistate._planned_event)
    INTO v_planned
    FROM planned AS p;

    IF v_planned IS NULL THEN
        RETURN '{}';
    END IF;

    INSERT INTO tistate.asset_event (id, asset_id, extra, source_task_id, source_dag_id, source_run_id,
                                     source_map_index, "timestamp", partition_key, ti_id, try_number)
    SELECT e.event_id, e.asset_id, e.extra, (p_ctx.ti).task_id, (p_ctx.ti).dag_id, (p_ctx.ti).run_id,
           (p_ctx.ti).map_index, p_now, e.partition_key, (p_ctx.ti).id, (p_ctx.ti).try_number
    FROM unnest(v_planned) AS e
    ORDER BY e.event_id;

    INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id)
    SELECT al.id, e.event_id
    FROM unnest(v_planned) AS e CROSS JOIN unnest(e.alias_ids) AS al (id)
    ORDER BY 1, 2;

    INSERT INTO tistate.asset_alias_asset (alias_id, asset_id)
    SELECT DISTINCT al.id, e.asset_id
    FROM unnest(v_planned) AS e CROSS JOIN unnest(e.alias_ids) AS al (id)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;

    RETURN v_planned;
END
$function$;

COMMENT ON FUNCTION tistate._register_outlet_events(p_ctx tistate._ti_context, p_outlets jsonb, p_events jsonb, p_now timestamp with time zone) IS 'Insert a success''s asset events, alias-event and alias-asset links set-based; cost independent of event history';
