-- tistate.schema_version(): the newest applied migration, read from tistate.schema_migrations.
BEGIN;
SELECT plan(6);

SELECT is(tistate.schema_version(), (SELECT max(version) FROM tistate.schema_migrations),
          'schema_version() is the newest applied version');
SELECT cmp_ok(tistate.schema_version(), '>=', 4, 'at least the migrations of the SQL core are applied');
SELECT is((SELECT count(*)::integer FROM tistate.schema_migrations), tistate.schema_version(),
          'versions are contiguous from 1 (one row per migration)');
SELECT is_empty($$SELECT version FROM tistate.schema_migrations WHERE checksum !~ '^[0-9a-f]{64}$' OR name !~ '^[a-z0-9_]+$'$$,
                'every applied migration has a name and a sha256 checksum');

INSERT INTO tistate.schema_migrations (version, name, checksum) VALUES (9999, 'future', repeat('0', 64));
SELECT is(tistate.schema_version(), 9999, 'a newer row is reported at once');
DELETE FROM tistate.schema_migrations;
SELECT is(tistate.schema_version(), 0, 'no applied migration: 0');

SELECT * FROM finish();
ROLLBACK;
