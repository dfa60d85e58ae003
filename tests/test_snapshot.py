"""sql_functions/snapshot/ must be what `tistate db snapshot` generates from the migrations."""

from __future__ import annotations

from tistate import migrate


def test_snapshot_is_current(db_dsn: str) -> None:
    generated = migrate.snapshot_files(db_dsn)
    directory = migrate.snapshot_dir()
    committed = {
        str(path.relative_to(directory)): path.read_text(encoding="utf-8")
        for path in directory.rglob("*")
        if path.is_file()
    }
    stale = sorted(
        name
        for name in generated.keys() | committed.keys()
        if generated.get(name) != committed.get(name)
    )
    assert not stale, f"snapshot is stale, run `tistate db snapshot`: {stale}"


def test_snapshot_has_one_file_per_function(db_dsn: str) -> None:
    files = migrate.snapshot_files(db_dsn)
    assert "schema.sql" in files
    assert "functions/ti_update_state.sql" in files
    assert "CREATE FUNCTION" not in files["schema.sql"]
    assert "CREATE TABLE tistate.asset_event" in files["schema.sql"]
