"""Samplers beside a load run: server RSS/threads/CPU from /proc, lock waits from PostgreSQL."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.procfs import cpu_s, machine_cpu, status

LOCK_SQL = """
SELECT count(DISTINCT l.pid),
       coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)) * 1000, 0)
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
"""
# What the waiters wait for: lock type, mode and object (a relation, or the notify queue's
# database-0 object lock that serialises every committing NOTIFY).
LOCK_KINDS_SQL = """
SELECT l.locktype || ' ' || l.mode || coalesce(' ' || l.relation::regclass::text, '')
       || CASE WHEN l.locktype = 'object' THEN ' ' || l.classid::regclass::text || '/' || l.objid
               ELSE '' END,
       count(*)
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE NOT l.granted AND a.datname = current_database()
GROUP BY 1
"""
BACKENDS_SQL = """
SELECT count(*) FILTER (WHERE state = 'active'), count(*)
FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


@dataclass
class ServerSample:
    rss_idle_kib: int = 0
    threads_idle: int = 0
    rss_peak_kib: int = 0
    threads_peak: int = 0
    threads_min: int = 0
    cpu_start_s: float = 0.0
    cpu_end_s: float = 0.0


@dataclass
class Monitor:
    """Samples every `interval_s` in a thread between start() and stop()."""

    dsn: str
    server_pids: list[int]
    interval_s: float = 0.1
    lock_interval_s: float = 0.1
    servers: dict[int, ServerSample] = field(default_factory=dict)
    peak_lock_waiters: int = 0
    lock_kinds: dict[str, int] = field(default_factory=dict)  # kind -> peak waiters
    lock_kind_samples: dict[str, int] = field(default_factory=dict)  # kind -> samples seen
    longest_lock_wait_ms: float = 0.0
    peak_active_backends: int = 0
    peak_backends: int = 0
    machine_busy: float = 0.0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu0: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        for pid in self.server_pids:
            rss, threads = status(pid)
            self.servers[pid] = ServerSample(
                rss_idle_kib=rss,
                threads_idle=threads,
                rss_peak_kib=rss,
                threads_peak=threads,
                threads_min=threads,
                cpu_start_s=cpu_s(pid),
            )
        self._cpu0 = machine_cpu()
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            next_lock = 0.0
            while not self._stop.is_set():
                now = time.monotonic()
                for pid, s in self.servers.items():
                    try:
                        rss, threads = status(pid)
                    except FileNotFoundError:
                        continue
                    s.rss_peak_kib = max(s.rss_peak_kib, rss)
                    s.threads_peak = max(s.threads_peak, threads)
                    s.threads_min = min(s.threads_min, threads)
                if now >= next_lock:
                    waiters, longest = conn.execute(LOCK_SQL).fetchone()  # type: ignore[misc]
                    self.peak_lock_waiters = max(self.peak_lock_waiters, int(waiters))
                    self.longest_lock_wait_ms = max(self.longest_lock_wait_ms, float(longest))
                    for kind, count in conn.execute(LOCK_KINDS_SQL).fetchall():
                        self.lock_kinds[kind] = max(self.lock_kinds.get(kind, 0), int(count))
                        self.lock_kind_samples[kind] = self.lock_kind_samples.get(kind, 0) + 1
                    active, total = conn.execute(BACKENDS_SQL).fetchone()  # type: ignore[misc]
                    self.peak_active_backends = max(self.peak_active_backends, int(active))
                    self.peak_backends = max(self.peak_backends, int(total))
                    next_lock = now + self.lock_interval_s
                self.samples += 1
                self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for pid, s in self.servers.items():
            try:
                s.cpu_end_s = cpu_s(pid)
            except FileNotFoundError:
                s.cpu_end_s = s.cpu_start_s
        busy1, total1 = machine_cpu()
        dt = total1 - self._cpu0[1]
        self.machine_busy = (busy1 - self._cpu0[0]) / dt if dt > 0 else 0.0

    def summary(self, completions: int) -> dict[str, Any]:
        servers = []
        for pid, s in self.servers.items():
            cpu = s.cpu_end_s - s.cpu_start_s
            servers.append(
                {
                    "pid": pid,
                    "rss_idle_mib": round(s.rss_idle_kib / 1024, 1),
                    "rss_peak_mib": round(s.rss_peak_kib / 1024, 1),
                    "rss_growth_mib": round((s.rss_peak_kib - s.rss_idle_kib) / 1024, 1),
                    "threads_idle": s.threads_idle,
                    "threads_min": s.threads_min,
                    "threads_peak": s.threads_peak,
                    "cpu_s": round(cpu, 2),
                    "cpu_ms_per_completion": round(cpu * 1000 / completions, 2)
                    if completions
                    else None,
                }
            )
        return {
            "servers": servers,
            "peak_lock_waiters": self.peak_lock_waiters,
            "longest_lock_wait_ms": round(self.longest_lock_wait_ms, 1),
            "lock_waits_by_kind": {
                k: {"peak": v, "samples": self.lock_kind_samples[k]}
                for k, v in self.lock_kinds.items()
            },
            "peak_active_backends": self.peak_active_backends,
            "peak_backends": self.peak_backends,
            "machine_cpu_busy": round(self.machine_busy, 3),
            "samples": self.samples,
        }
