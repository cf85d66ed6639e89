"""Time to the first case: a one-case suite, whole processes, three routes side by side.

    python benchmarks/bench_first_case.py [--repeat 3]

What a user waits for after typing ``python suite.py``: the time until the entry point
starts (its first line stamps the clock) and until the command exits. Three routes, each
run in turn ``--repeat`` times (interleaved, so a busy machine slows them alike), medians
reported with their ratio to the plain runner:

- temporary server: no ``PREFECT_API_URL`` and no kept server, so the command starts
  Prefect's temporary server and stops it at exit (its home already initialised by a
  first, unreported run: a new home adds the database's creation on top);
- kept server: ``make server``'s server (``experiment_cli.kept_server start``), found by
  the command through ``$PREFECT_HOME`` (nothing exported), started once before the runs
  and stopped after;
- plain runner: the spec's runner, ``subprocess.run`` of the entry point from a process
  that has built the suite (no Prefect).

The entry point is the spec's shape (``config = BenchConfig()``, one file written). No
test asserts on time; the numbers go in the notes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_scale import plain, write_suite

REPO_ROOT = Path(__file__).resolve().parents[1]
STAMP = "import time, pathlib, os; pathlib.Path(os.environ['BENCH_STAMP']).write_text(repr(time.time()))\n"


def run(argv: list[str], env: dict[str, str], cwd: Path, stamp: Path) -> tuple[float, float]:
    """(seconds to the entry point's first line, seconds to exit) of one whole command."""
    stamp.unlink(missing_ok=True)
    start = time.time()
    done = subprocess.run(argv, env={**env, "BENCH_STAMP": str(stamp)}, cwd=cwd, capture_output=True, text=True)
    end = time.time()
    if done.returncode != 0 or not stamp.exists():
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return float(stamp.read_text()) - start, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each route (default 3)")
    parser.add_argument("--plain", nargs=2, metavar=("SUITE", "RESULTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    if args.plain:
        sys.path.insert(0, str(Path(args.plain[0]).parent))
        plain(Path(args.plain[0]), Path(args.plain[1]), 1)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-first-case-"))
    suite = write_suite(work / "suite", 1)
    entry = suite.parent / "entry.py"
    entry.write_text(STAMP + entry.read_text())
    base = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), str(suite.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    base.pop("PREFECT_API_URL", None)
    temp_env = {**base, "PREFECT_HOME": str(work / "home-temporary")}
    kept_env = {**base, "PREFECT_HOME": str(work / "home-kept")}
    py, stamp = sys.executable, work / "stamp"
    ours = lambda i: [py, str(suite), "--results-root", str(work / f"results{i}")]  # noqa: E731
    routes = {
        "temporary server": (temp_env, ours),
        "kept server": (kept_env, ours),
        "plain runner": (base, lambda i: [py, __file__, "--plain", str(suite), str(work / f"plain{i}")]),
    }
    run(ours(-1), temp_env, suite.parent, stamp)  # initialise the temporary server's home
    started = subprocess.run([py, "-m", "experiment_cli.kept_server", "start"], env=kept_env, cwd=REPO_ROOT,
                             capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"kept server did not start:\n{started.stdout}{started.stderr}")
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in routes}
    try:
        for i in range(args.repeat):
            for name, (env, argv) in routes.items():
                times[name].append(run(argv(i), env, suite.parent, stamp))
    finally:
        subprocess.run([py, "-m", "experiment_cli.kept_server", "stop"], env=kept_env, cwd=REPO_ROOT, capture_output=True)
    first = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
    exit_ = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
    load = os.getloadavg()[0]
    print(f"one-case suite, median of {args.repeat}, {os.cpu_count()} CPU(s), load average {load:.1f}; work dir {work}")
    print("| route | to first case | to exit |\n|---|---|---|")
    for name in routes:
        print(f"| {name} | {first[name]:.2f} s ({first[name] / first['plain runner']:.1f}x) "
              f"| {exit_[name]:.2f} s ({exit_[name] / exit_['plain runner']:.1f}x) |")


if __name__ == "__main__":
    main()
