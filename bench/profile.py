"""Where a server's CPU goes under load: py-spy on the server process during one bench run.

Starts `python -m bench run SYSTEM ...` as a child, finds the server process it starts, samples
it with `py-spy record --format raw` (collapsed stacks), and folds the samples into the functions
with the most inclusive and self time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.procfs import children, cmdline


def fold(raw: str, top: int = 25) -> dict[str, Any]:
    """Inclusive and self sample shares per function from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
            for f in stack.split(";")
        ]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        if frames:
            own[frames[-1]] += count

    def share(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100.0 * v / total, 1)) for k, v in c.most_common(top)] if total else []

    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(own)}


def _sample(
    bench: subprocess.Popen[bytes], system: str, concurrency: int, duration_s: float, out_dir: Path
) -> Path:
    server = None
    deadline = time.monotonic() + 60
    while server is None and time.monotonic() < deadline:
        for child in children(bench.pid):
            line = cmdline(child)
            if "serve" in line or "uvicorn" in line:
                server = child
        time.sleep(0.2)
    if server is None:
        bench.kill()
        raise RuntimeError("no server process found")
    time.sleep(3.0)  # past the warm-up
    raw_path = out_dir / f"{system}-c{concurrency}.pyspy.txt"
    exe = shutil.which("py-spy") or "py-spy"
    subprocess.run(
        [
            exe,
            "record",
            "--pid",
            str(server),
            "--duration",
            str(int(duration_s)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(raw_path),
        ],
        capture_output=True,
        check=False,
    )
    bench.wait()
    return raw_path


def profile_run(
    system: str, concurrency: int, n: int, history: int, duration_s: float, out_dir: Path
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "run",
        system,
        "-c",
        str(concurrency),
        "--n",
        str(n),
        "--history",
        str(history),
    ]
    with open(out_dir / "run.json", "wb") as stdout, open(out_dir / "run.log", "wb") as stderr:
        bench = subprocess.Popen(cmd, stdout=stdout, stderr=stderr)
        raw_path = _sample(bench, system, concurrency, duration_s, out_dir)
    folded = fold(raw_path.read_text() if raw_path.exists() else "")
    folded["system"] = system
    folded["concurrency"] = concurrency
    return folded
