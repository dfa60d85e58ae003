"""Scale-out: two `tistate` HTTP processes behind PgBouncer in transaction-pooling mode pass the
concurrent-completion invariant check (every task's events exactly once, duplicates no-ops).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from faultkit import HttpLoad, World, check_invariant, split, tally
from faultkit.processes import PgBouncer
from http_support import mint, running_server

TASKS = 40
# No server-side prepared statements through PgBouncer in transaction mode (DESIGN section 5).
SETTINGS = {"pool_size": 6, "lock_timeout": 2, "prepared_statements": "false"}


@pytest.fixture
def bouncer(db_dsn: str) -> Iterator[PgBouncer]:
    params = conninfo_to_dict(db_dsn)
    pgb = PgBouncer(str(params["host"]), int(params["port"]), str(params["dbname"]), pool_size=4)
    try:
        yield pgb
    finally:
        pgb.stop()


def test_two_servers_through_pgbouncer_transaction_pooling(
    db_dsn: str, bouncer: PgBouncer, tmp_path: Path
) -> None:
    world = World(db_dsn, prefix="so", tasks=TASKS).create()
    with (
        running_server(bouncer.url(), tmp_path / "a.log", **SETTINGS) as a,
        running_server(bouncer.url(), tmp_path / "b.log", **SETTINGS) as b,
        HttpLoad(world, [a.url, b.url], mint, workers=12) as load,
    ):
        outcomes = load.run(range(TASKS))
        # Every completion once more, through the *other* server: all no-ops.
        load.base_urls.reverse()
        duplicates = load.run(range(TASKS))
        for server in (a, b):
            assert "Traceback" not in server.log()
    assert tally(outcomes) == {"204": TASKS}, tally(outcomes)
    assert tally(duplicates) == {"200": TASKS}, tally(duplicates)
    ok, bad = split(outcomes)
    inv = check_invariant(world, ok, bad)
    assert inv.problems == [], inv.problems
    assert inv.events_found == inv.events_expected == 2 * TASKS
    print(
        f"\n[scale-out] 2 servers via PgBouncer: first {tally(outcomes)},"
        f" duplicates {tally(duplicates)}, {inv.summary()}"
    )
