"""The process's memory budget for request bodies: what makes "memory per process" a true bound.

Admission control bounds how many requests run at once (`max_in_flight`, 1010 by default), not
how much memory they hold: a body costs several times its size while it is served (the bytes read,
the Python objects pydantic builds from them, the JSON text sent to PostgreSQL and psycopg's copy
of it), and a body of many small JSON values costs up to ~60 times its size in Python objects. So
every body is charged an estimate of that cost against one budget per process
(`Settings.body_memory_bytes`), before it is read and again once its bytes are known:

    charge = BYTE_COST x len(body) + VALUE_COST x (number of `{`, `[`, `,` and `:` bytes)

The second term bounds the JSON values of the body (each is preceded by one of those bytes, or is
the whole document), so the charge covers the Python objects however the body is shaped. The
constants were measured on the real server: the peak RSS of one 4 MiB body is 0.83 of its
charge for one long string, 0.76-0.83 for many outlet events (a pydantic model each), 0.3-0.66
for arrays of numbers, strings or empty objects (docs/operations.md). A body whose charge is
more than the whole budget is refused 413 (`body_too_large`); one that does not fit in what is
left answers 503 `overloaded` with Retry-After (a retry will fit); the charge is given back when
the request ends.
"""

from __future__ import annotations

__all__ = ["BYTE_COST", "VALUE_COST", "BodyBudget", "charge_for", "read_charge"]

#: bytes of memory per body byte while it is served: the bytes read, the Python strings
#: parsed from them, the JSON text of the payload and the copies psycopg and libpq make of it
BYTE_COST = 5
#: bytes of memory per JSON value beyond its characters (a dict, list, int or float object and
#: its slot in the container, or the error pydantic reports about it)
VALUE_COST = 240


def read_charge(size: int) -> int:
    """The charge of a body of `size` bytes before its bytes are known."""
    return BYTE_COST * size


def charge_for(body: bytes | bytearray) -> int:
    """The charge of a body once read: its bytes and a bound on its JSON values."""
    values = body.count(b"{") + body.count(b"[") + body.count(b",") + body.count(b":") + 1
    return BYTE_COST * len(body) + VALUE_COST * values


class BodyBudget:
    """Bytes of body memory charged to the requests in flight (one event loop: no locking)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0

    def take(self, amount: int) -> bool:
        """Charge `amount` if it fits in what is left; whether it did."""
        if self.used + amount > self.capacity:
            return False
        self.used += amount
        return True

    def give(self, amount: int) -> None:
        self.used -= amount
