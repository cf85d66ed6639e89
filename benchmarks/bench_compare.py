"""``compare`` of many runs against the floor: reading their files.

    python benchmarks/bench_compare.py [--runs 10] [--cases 200] [--seeds 3] [--repeat 5]

Writes ``--runs`` run directories of ``--cases`` cases each (in the runner's own format,
with its own writers: manifest.json, each case's run_record.json and metrics.json;
conditions over ``--seeds`` seeds), then times, in this process, each the median of
``--repeat``:

- the floor: reading every run's manifest.json and each case's metrics.json (open, read,
  ``json.loads``), nothing else;
- compare: ``compare_runs`` (manifests validated, each case classified from its run
  record, metrics read, conditions grouped, every metric summarized and tested) and its
  markdown;
- the command as a user runs it (``python flows/compare.py FOLDER``), interpreter
  start-up included, for reference.

Reported, not asserted (no test asserts on time): compare / floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests"))

from compare_helpers import FakeCase, write_run  # noqa: E402

from experiment_infra.compare import compare_runs, to_markdown  # noqa: E402


def build(root: Path, runs: int, cases: int, seeds: int) -> Path:
    when = datetime(2026, 1, 1)
    for r in range(runs):
        made = []
        for i in range(cases):
            cond, seed = divmod(i, seeds)
            lr, depth = divmod(cond, 10)
            made.append(FakeCase(
                f"lr{lr}_d{depth}_s{seed}", {"lr": lr / 100, "depth": depth, "seed": seed, "n_train": 1000},
                {"accuracy": 0.5 + 0.01 * depth + 0.001 * seed + 0.002 * r, "loss": 1.0 / (1 + depth) + 0.01 * r},
            ))
        write_run(root, made, experiment="bench", when=when + timedelta(hours=r), sha=f"{r:07d}" + "0" * 33)
    return root / "bench"


def read_files(folder: Path) -> int:
    """The floor: every manifest.json and metrics.json, opened, read and parsed."""
    n = 0
    for run in sorted(folder.iterdir()):
        manifest = json.loads((run / "manifest.json").read_bytes())
        for case in manifest["cases"]:
            try:
                json.loads((run / case["variant_name"] / "metrics.json").read_bytes())
                n += 1
            except FileNotFoundError:
                pass
    return n


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = build(Path(tmp) / "results", args.runs, args.cases, args.seeds)
        read_files(folder)  # warm the page cache for both
        compare_runs([folder])
        floor = median_time(lambda: read_files(folder), args.repeat)
        work = median_time(lambda: to_markdown(compare_runs([folder])), args.repeat)
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        cmd = [sys.executable, str(REPO_ROOT / "flows" / "compare.py"), str(folder)]
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        command = median_time(lambda: subprocess.run(cmd, env=env, capture_output=True, check=True), max(1, args.repeat // 2))
    print(f"{args.runs} runs x {args.cases} cases ({args.seeds} seeds per condition)")
    print(f"  read manifest.json + metrics.json : {floor * 1000:8.1f} ms")
    print(f"  compare_runs + markdown          : {work * 1000:8.1f} ms   ratio {work / floor:.2f}x")
    print(f"  python flows/compare.py FOLDER   : {command * 1000:8.1f} ms   (interpreter start-up and imports included)")


if __name__ == "__main__":
    main()
