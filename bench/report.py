# ruff: noqa: E501  (markdown table rows read better on one line)
"""Tables, ratios and the plot of a results directory, written into docs/benchmarks.md.

The generated part sits between two marker lines; everything else in the document is prose kept
by hand, so a rerun replaces the figures and nothing else.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ORDER = [
    "tistate",
    "tistate-w2",
    "tistate x2 via PgBouncer",
    "tistate-deepq",
    "tistate-deepq x2 via PgBouncer",
    "roundtrip",
    "raw (pgbench)",
    "raw (pgbench, notify on)",
    "raw (pgbench, notify off)",
    "floor (pgbench)",
]
LABEL = {
    "tistate": "tistate serve",
    "tistate-w2": "tistate serve --workers 2",
    "tistate x2 via PgBouncer": "tistate x2 + PgBouncer",
    "tistate-deepq": "tistate serve, deep queue",
    "tistate-deepq x2 via PgBouncer": "tistate deep queue x2 + PgBouncer",
    "roundtrip": "round-trip baseline",
    "raw (pgbench)": "raw limit (pgbench)",
    "raw (pgbench, notify on)": "raw, notify on (pgbench)",
    "raw (pgbench, notify off)": "raw, notify off (pgbench)",
    "floor (pgbench)": "floor: the same writes, one statement (pgbench)",
}
RAW = "raw (pgbench)"
FLOOR = "floor (pgbench)"


def load_runs(results: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    meta = (
        json.loads((results / "meta.json").read_text()) if (results / "meta.json").exists() else {}
    )
    runs = [json.loads(line) for line in (results / "runs.jsonl").read_text().splitlines() if line]
    return meta, runs


def _median(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _status_5xx(run: dict[str, Any]) -> tuple[int, int]:
    """(503 answers, other 5xx + timeouts + connection errors) of the state calls."""
    s = run.get("state_status", {})
    busy = int(s.get("503", 0))
    other = sum(
        int(v) for k, v in s.items() if (not k.isdigit()) or (k.startswith("5") and k != "503")
    )
    return busy, other


def summarise(runs: list[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Median figures per (system, H, C) over repetitions; faults summed."""
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        if r.get("kind") in ("http", "raw"):
            groups[(r["system"], int(r["history"]), int(r["concurrency"]))].append(r)
    out: dict[tuple[str, int, int], dict[str, Any]] = {}
    for key, rs in groups.items():
        servers = [s for r in rs for s in r.get("resources", {}).get("servers", [])]
        busy = sum(_status_5xx(r)[0] for r in rs)
        other = sum(_status_5xx(r)[1] for r in rs)
        out[key] = {
            "reps": len(rs),
            "tput": _median(r.get("completions_per_s") for r in rs),
            "p50": _median(r["latency_ms"]["p50"] for r in rs),
            "p95": _median(r["latency_ms"]["p95"] for r in rs),
            "p99": _median(r["latency_ms"]["p99"] for r in rs),
            "max": max((r["latency_ms"]["max"] or 0) for r in rs),
            "completed": sum(int(r.get("completed") or 0) for r in rs),
            "n": sum(int(r.get("n") or 0) for r in rs),
            "clients": max(int(r.get("clients") or r["concurrency"]) for r in rs),
            "busy_503": busy,
            "other_5xx": other,
            "retries": sum(int(r.get("retries") or 0) for r in rs),
            "rss_growth": max((s["rss_growth_mib"] for s in servers), default=None),
            "rss_idle": max((s["rss_idle_mib"] for s in servers), default=None),
            "threads": (
                f"{min(s['threads_idle'] for s in servers)}->{max(s['threads_peak'] for s in servers)}"
                if servers
                else "-"
            ),
            # all of a run's server processes (workers, or servers behind PgBouncer) together
            "cpu_ms": _median(
                sum(s.get("cpu_ms_per_completion") or 0 for s in r["resources"]["servers"])
                for r in rs
                if r.get("resources", {}).get("servers")
            ),
            # The whole machine's CPU per completion (server, PostgreSQL, load generator, relay,
            # and anything else running): busy share x CPUs x run time / completions.
            "machine_cpu_ms": _median(
                r["resources"]["machine_cpu_busy"] * (os.cpu_count() or 1) * 1000 / tput
                for r in rs
                if (tput := r.get("completions_per_s")) and "machine_cpu_busy" in r["resources"]
            ),
            "lock_waiters": max(r["resources"]["peak_lock_waiters"] for r in rs),
            "lock_wait_ms": max(r["resources"]["longest_lock_wait_ms"] for r in rs),
            "lost": sum(r["verify"]["lost_events"] for r in rs),
            "dup": sum(r["verify"]["duplicated_events"] + r["verify"]["orphan_events"] for r in rs),
            "lost_completions": sum(r["verify"]["lost_completions"] for r in rs),
            "queue_faults": sum(
                r["verify"]["queue_missing"] + r["verify"]["queue_unexpected"] for r in rs
            ),
            "ok": all(r["verify"]["ok"] for r in rs),
            "lock_kinds": _merge_kinds(r["resources"].get("lock_waits_by_kind", {}) for r in rs),
            "function_stats": rs[0].get("function_stats", {}),
        }
    return out


def _merge_kinds(items: Iterable[dict[str, Any]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for kinds in items:
        for k, v in kinds.items():
            merged[k] = max(merged.get(k, 0), int(v["peak"]))
    return merged


def _systems(summary: dict[tuple[str, int, int], dict[str, Any]]) -> list[str]:
    present = {k[0] for k in summary}
    return [s for s in ORDER if s in present] + sorted(present - set(ORDER))


def _ratio(
    summary: dict[tuple[str, int, int], dict[str, Any]],
    t: dict[str, Any],
    other: str,
    h: int,
    c: int,
    *,
    inverse: bool = False,
    field: str = "tput",
) -> str:
    o = summary.get((other, h, c))
    if o is None or not o[field] or not t[field]:
        return "-"
    return f"{(o[field] / t[field]) if inverse else (t[field] / o[field]):.2f}"


def tables(meta: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    summary = summarise(runs)
    systems = _systems(summary)
    histories = sorted({k[1] for k in summary})
    concurrencies = sorted({k[2] for k in summary})
    lines: list[str] = []
    for h in histories:
        lines += [
            f"### Alias history H = {h:,} events per alias",
            "",
            "| C | system | done | completions/s | p50 ms | p95 ms | p99 ms | max ms | 503 | timeouts + conn. errors + other 5xx "
            "| retries | RSS idle / growth MiB | threads | server CPU ms/compl. | lock waiters (peak) "
            "| longest lock wait ms | lost / dup events | verified |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
        ]
        for c in concurrencies:
            for s in systems:
                f = summary.get((s, h, c))
                if f is None:
                    continue
                clients = f" (c={f['clients']})" if f["clients"] != c else ""
                if f["reps"] > 1:
                    clients += f", median of {f['reps']} runs"
                rss = (
                    f"{_fmt(f['rss_idle'])} / +{_fmt(f['rss_growth'], 1)}"
                    if f["rss_idle"] is not None
                    else "-"
                )
                lines.append(
                    f"| {c} | {LABEL.get(s, s)}{clients} | {f['completed']}/{f['n']} | {_fmt(f['tput'], 1)} "
                    f"| {_fmt(f['p50'])} | {_fmt(f['p95'])} | {_fmt(f['p99'])} | {_fmt(f['max'])} "
                    f"| {f['busy_503']} | {f['other_5xx']} | {f['retries']} | {rss} | {f['threads']} "
                    f"| {_fmt(f['cpu_ms'], 1)} | {f['lock_waiters']} | {_fmt(f['lock_wait_ms'])} "
                    f"| {f['lost']} / {f['dup']} | {'yes' if f['ok'] else '**NO**'} |"
                )
        lines.append("")
    lines += floor_ratios(summary)
    lines += table_writes(runs)
    # Ratios, side by side.
    lines += [
        "### Ratios (throughput, same H and C, measured side by side)",
        "",
        "| H | C | tistate / raw | tistate / round-trip | x2+PgBouncer / tistate "
        "| 2 workers / 1 | raw (outbox relay) / raw (notify on) | p99 round-trip / tistate |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h in histories:
        for c in concurrencies:
            t = summary.get(("tistate", h, c))
            if t is None or not t["tput"]:
                continue
            x2 = summary.get(("tistate x2 via PgBouncer", h, c))
            x2r = f"{x2['tput'] / t['tput']:.2f}" if x2 and x2["tput"] else "-"
            w2 = summary.get(("tistate-w2", h, c))
            w2r = f"{w2['tput'] / t['tput']:.2f}" if w2 and w2["tput"] else "-"
            relay = summary.get(("raw (pgbench)", h, c))
            relay_r = (
                _ratio(summary, relay, "raw (pgbench, notify on)", h, c)
                if relay and relay["tput"]
                else "-"
            )
            lines.append(
                f"| {h:,} | {c} | {_ratio(summary, t, 'raw (pgbench)', h, c)} "
                f"| {_ratio(summary, t, 'roundtrip', h, c)} | {x2r} | {w2r} | {relay_r} "
                f"| {_ratio(summary, t, 'roundtrip', h, c, inverse=True, field='p99')} |"
            )
    lines.append("")
    # Lock hold per completion, from the function's own timing.
    micro = [r for r in runs if r.get("kind") == "micro"]
    if micro:
        lines += [
            "### TI row lock hold per completion (ti_update_state's lock_held_ms, direct calls)",
            "",
            "| H | concurrent callers | calls | held p50 ms | held p99 ms | held max ms "
            "| lock wait p99 ms | verified |",
            "|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in sorted(micro, key=lambda r: (r["history"], r["concurrency"])):
            held, wait = r["lock_held_ms"], r["lock_wait_ms"]
            lines.append(
                f"| {r['history']:,} | {r['concurrency']} | {r['calls']} | {held['p50']:.2f} | {held['p99']:.2f} "
                f"| {held['max']:.2f} | {wait['p99']:.2f} | {'yes' if r['verify']['ok'] else '**NO**'} |"
            )
        lines.append("")
    # Where the database time goes (pg_stat_user_functions, track_functions = pl).
    for h in histories:
        for c in (80, *concurrencies):
            f = summary.get(("tistate", h, c))
            if f and f["function_stats"]:
                stats = f["function_stats"]
                lines += [
                    f"### Server-side profile: tistate serve, H = {h:,}, C = {c} (pg_stat_user_functions)",
                    "",
                    "| function | calls | mean ms (total) | mean ms (self) |",
                    "|---|---:|---:|---:|",
                ]
                top = sorted(stats.items(), key=lambda kv: -kv[1]["mean_ms"] * kv[1]["calls"])[:10]
                for name, v in top:
                    lines.append(
                        f"| {name} | {v['calls']} | {v['mean_ms']:.3f} | {v['self_mean_ms']:.3f} |"
                    )
                lines.append("")
                break
        else:
            continue
        break
    # What the lock waiters waited for.
    kinds: dict[str, dict[str, int]] = defaultdict(dict)
    for (s, _h, _c), f in summary.items():
        for k, v in f["lock_kinds"].items():
            kinds[LABEL.get(s, s)][k] = max(kinds[LABEL.get(s, s)].get(k, 0), v)
    if kinds:
        lines += ["### What lock waiters waited for (peak waiters per lock, any run)", ""]
        lines += ["| system | lock | peak waiters |", "|---|---|---:|"]
        for s in sorted(kinds):
            for k, v in sorted(kinds[s].items(), key=lambda kv: -kv[1]):
                lines.append(f"| {s} | `{k}` | {v} |")
        lines.append("")
    m = meta.get("machine", {})
    if m:
        lines += [
            "### Machine",
            "",
            f"- {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory_gib')} GiB memory, "
            f"Linux {m.get('kernel')}, Python {m.get('python')}",
            f"- {m.get('postgresql')}",
            f"- results directory: `{meta.get('results_dir', '')}`, started {meta.get('started', '')}",
            "",
        ]
    return "\n".join(lines)


def floor_ratios(summary: dict[tuple[str, int, int], dict[str, Any]]) -> list[str]:
    """Service / raw / floor: each system's median throughput as a share of the floor's."""
    cells = sorted((h, c) for (s, h, c) in summary if s == FLOOR and summary[(s, h, c)]["tput"])
    if not cells:
        return []
    lines = [
        "### Against the floor (median throughput, same H and C, measured side by side)",
        "",
        "| H | C | floor /s | raw /s | tistate serve /s | raw / floor | tistate / floor "
        "| tistate / raw | machine CPU ms per completion: floor / raw / tistate |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h, c in cells:
        floor = summary[(FLOOR, h, c)]
        raw = summary.get((RAW, h, c))
        t = summary.get(("tistate", h, c))

        def tput(f: dict[str, Any] | None) -> str:
            return _fmt(f["tput"], 1) if f else "-"

        def cpu(f: dict[str, Any] | None) -> str:
            return _fmt(f["machine_cpu_ms"], 1) if f else "-"

        lines.append(
            f"| {h:,} | {c} | {tput(floor)} | {tput(raw)} | {tput(t)} "
            f"| {_ratio(summary, raw, FLOOR, h, c) if raw else '-'} "
            f"| {_ratio(summary, t, FLOOR, h, c) if t else '-'} "
            f"| {_ratio(summary, t, RAW, h, c) if t else '-'} "
            f"| {cpu(floor)} / {cpu(raw)} / {cpu(t)} |"
        )
    return [*lines, ""]


def floor_summary(results: Path) -> str:
    """The floor table of a results directory, for the terminal ('' without floor runs)."""
    _, runs = load_runs(results)
    return "\n".join(floor_ratios(summarise(runs)))


def table_writes(runs: list[dict[str, Any]]) -> list[str]:
    """Rows written per completion by table, for each pgbench system (first run of each): the
    floor's writes must be the function's."""
    firsts: dict[str, dict[str, dict[str, float]]] = {}
    for r in runs:
        if r.get("kind") == "raw" and r.get("table_writes") and r["system"] not in firsts:
            firsts[r["system"]] = r["table_writes"]
    if FLOOR not in firsts:
        return []
    systems = [s for s in ORDER if s in firsts]
    tables = sorted({t for w in firsts.values() for t in w})
    lines = [
        "### Rows written per completion (pg_stat_user_tables, inserted / updated)",
        "",
        "| table | " + " | ".join(LABEL.get(s, s) for s in systems) + " |",
        "|---|" + "---:|" * len(systems),
    ]
    for table in tables:
        row = []
        for s in systems:
            w = firsts[s].get(table, {"inserted": 0, "updated": 0})
            row.append(f"{w['inserted']:g} / {w['updated']:g}")
        lines.append(f"| {table} | " + " | ".join(row) + " |")
    return [*lines, ""]


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(runs)
    systems = _systems(summary)
    histories = sorted({k[1] for k in summary})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = ["-", "--", ":"]
    colors = matplotlib.colormaps["tab10"]
    for si, s in enumerate(systems):
        for i, h in enumerate(histories):
            pts = sorted((c, f) for (ss, hh, c), f in summary.items() if ss == s and hh == h)
            if not pts:
                continue
            label = f"{LABEL.get(s, s)}, H={h:,}"
            cs = [c for c, _ in pts]
            kw = {
                "marker": "o",
                "color": colors(si % 10),
                "linestyle": styles[i % 3],
                "label": label,
            }
            ax1.plot(cs, [f["tput"] for _, f in pts], **kw)
            ax2.plot(cs, [f["p99"] for _, f in pts], **kw)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xticks([20, 80, 200, 500])
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("concurrent completions C")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("completions/s")
    ax1.set_title("Throughput")
    ax2.set_yscale("log")
    ax2.set_ylabel("p99 completion latency, ms (retries included)")
    ax2.set_title("p99 latency")
    ax1.legend(fontsize=7)
    fig.suptitle("success with 1 direct + 5 alias events, heartbeats alongside (2 shared cores)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    results: Path, doc: Path, plot_path: Path | None, section: str = "results"
) -> None:
    """Replace the block between `<!-- bench:<section>:start -->` and its end marker."""
    start, end = f"<!-- bench:{section}:start -->", f"<!-- bench:{section}:end -->"
    meta, runs = load_runs(results)
    meta["results_dir"] = str(results)
    block = tables(meta, runs)
    figure = ""
    if plot_path is not None:
        plot(runs, plot_path)
        rel = plot_path.name if plot_path.parent == doc.parent else str(plot_path)
        figure = f"![throughput and p99 against concurrency]({rel})\n\n"
    generated = f"{start}\n\n{figure}{block}\n{end}"
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{start}\n{end}\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + generated + tail
    else:
        text += "\n" + generated + "\n"
    doc.write_text(text)
