"""Give the memory of large request bodies back to the system once they are served (glibc only).

glibc's malloc serves a large block (a body, its JSON text) by mmap and returns it to the system
when freed, but after the first such free it raises its mmap threshold to that block's size
(up to 32 MiB), so every later body of that size comes from the heap, and a heap only shrinks
from its top: after a burst of 4 MiB bodies the process kept most of the burst's peak. Fixing the
thresholds (`mallopt`) turns that adaptation off, and `malloc_trim(0)` after a large body gives
back the free pages in the middle of the heap as well. Elsewhere (musl, macOS) both are no-ops.

The trim runs TRIM_DELAY seconds after the last large body's request ended: part of what a request
held is freed only after its task has ended (measured: a trim in the task's done callback left
40-120 MiB of a 4 MiB body of a million values in the process, one 0.5 s later 1-7 MiB).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

__all__ = [
    "TRIM_AFTER_BYTES",
    "TRIM_DELAY",
    "release_free_memory",
    "release_free_memory_soon",
    "tune_malloc",
]

log = logging.getLogger("tistate.http")

#: a request that held at least this much of the body budget trims the heap when it ends
TRIM_AFTER_BYTES = 1024 * 1024
#: seconds from the end of the last such request to the trim
TRIM_DELAY = 0.5

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks from 128 KiB up are mmapped (glibc's initial threshold, kept fixed)
_MMAP_THRESHOLD = 128 * 1024

_trim: Callable[[int], int] | None = None
_pending: asyncio.TimerHandle | None = None


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds in this process; whether it could."""
    global _trim
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        malloc_trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    malloc_trim.argtypes = [ctypes.c_size_t]
    ok = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))
    ok = bool(mallopt(_M_TRIM_THRESHOLD, 2 * _MMAP_THRESHOLD)) and ok
    if ok:
        _trim = malloc_trim
    else:
        log.warning("could not set malloc thresholds; memory of large bodies may be kept")
    return ok


def release_free_memory() -> None:
    """Give free heap pages back to the system (after a large body)."""
    if _trim is not None:
        _trim(0)


def release_free_memory_soon() -> None:
    """Trim the heap TRIM_DELAY seconds from now, or from a later call (one trim per burst)."""
    global _pending
    if _trim is None:
        return
    if _pending is not None:
        _pending.cancel()
    _pending = asyncio.get_running_loop().call_later(TRIM_DELAY, _release_pending)


def _release_pending() -> None:
    global _pending
    _pending = None
    release_free_memory()
