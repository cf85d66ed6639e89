"""A 200-case dry run as a whole process, beside ``python -c "import prefect"``.

    python benchmarks/bench_dry_run.py [-n 200] [--repeat 5]

The suite file has the experiment-infrastructure spec's shape (module-level ``cases``,
``run_experiments_cli(...)`` under ``__main__``). Both command lines are timed:
``python flows/run_suite.py SUITE --dry-run`` and ``python SUITE --dry-run``, each the
median of ``--repeat`` runs after one warm-up, with a new, empty ``PREFECT_HOME`` and no
``PREFECT_API_URL`` (a dry run must neither import Prefect nor start a server). Run by
hand; no test asserts on time.
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

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
from experiment_infra import BaseExperimentConfig

class BenchConfig(BaseExperimentConfig):
    index: int = 0
    rate: float = 0.1
    names: list[str] = []
"""

SUITE = """
from bench_config import BenchConfig
from experiment_infra import ExperimentCase, run_experiments_cli

cases = [ExperimentCase(f"case{{i:04d}}", BenchConfig(index=i, rate=i / 7, names=[str(i)])) for i in range({n})]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="entry.py", experiment_name="bench")
"""


def timed(command: list[str], env: dict[str, str], cwd: Path, repeat: int) -> float:
    subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)  # warm-up (page cache, .pyc)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="cases in the suite (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "bench_config.py").write_text(CONFIG)
        (where / "entry.py").write_text("")
        suite = where / "suite_bench.py"
        suite.write_text(SUITE.format(n=args.n))
        env = {**os.environ, "PREFECT_HOME": str(where / "prefect-home")}
        env.pop("PREFECT_API_URL", None)
        py = sys.executable
        figures = {
            "import prefect": timed([py, "-c", "import prefect"], env, where, args.repeat),
            "python -c pass": timed([py, "-c", "pass"], env, where, args.repeat),
            f"run_suite.py --dry-run ({args.n} cases)": timed(
                [py, str(REPO_ROOT / "flows" / "run_suite.py"), str(suite), "--dry-run"], env, where, args.repeat
            ),
            f"python SUITE --dry-run ({args.n} cases)": timed([py, str(suite), "--dry-run"], env, where, args.repeat),
        }
    anchor = figures["import prefect"]
    print(f"{'command':<40} {'median s':>9} {'/ import prefect':>17}")
    for name, seconds in figures.items():
        print(f"{name:<40} {seconds:>9.3f} {seconds / anchor:>16.2f}x")


if __name__ == "__main__":
    main()
