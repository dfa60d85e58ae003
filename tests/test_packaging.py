"""The wheel carries the migrations, so `pip install tistate` can migrate without a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_bundles_every_migration_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=240,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("tistate-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for migration in sorted((ROOT / "sql_functions" / "migrations").glob("*.sql")):
            bundled = f"tistate/sql_functions/migrations/{migration.name}"
            assert bundled in names, f"{migration.name} is missing from the wheel"
            assert archive.read(bundled) == migration.read_bytes()
        assert "tistate/py.typed" in names
        assert any(name.endswith("entry_points.txt") for name in names)
