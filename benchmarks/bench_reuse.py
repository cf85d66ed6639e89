"""A ``--reuse`` dry run over many earlier runs, beside just reading their files.

    python benchmarks/bench_reuse.py [--runs 50] [-n 200] [--repeat 5]

A temporary git repository holds a suite of ``-n`` cases; ``--runs`` earlier run
directories of it are written as a real run leaves them (manifest, and per case
``config.json``, ``run_record.json`` with the case's identity, ``metrics.json``). Every
newer run ran other code (its identities differ), only the oldest matches, so the dry run
reads every earlier run before it can decide. Timed in one process, each the median of
``--repeat`` after a warm-up:

- read: ``manifest.json`` of every run and ``metrics.json`` of every case (open, read, parse);
- dry run: ``check_run(SUITE, dry_run=True, reuse=True)``, what ``--dry-run --reuse`` prints
  (load the suite, plan it, decide each case against the earlier runs);
- decide: ``plan_reuse`` alone (the scan of the earlier runs).

Prints the ratios to the read. Run by hand; no test asserts on time.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiment_infra.suites.preflight import check_run  # noqa: E402
from experiment_infra.records import RunRecord, utc_now_iso, write_record  # noqa: E402
from experiment_infra.suites.reuse import WantedCase, plan_reuse  # noqa: E402
from experiment_infra.running.runner import case_config  # noqa: E402
from experiment_infra.suites.suite import load_suite, manifest_for, plan_suite  # noqa: E402

CONFIG = """
from experiment_infra import BaseExperimentConfig

class BenchConfig(BaseExperimentConfig):
    index: int = 0
    rate: float = 0.1
    names: list[str] = []
"""

ENTRY = """
import json
from pathlib import Path
from bench_config import BenchConfig

cfg = BenchConfig.from_cli()
Path(cfg.output_dir, "metrics.json").write_text(json.dumps({"index": cfg.index}))
"""

SUITE = """
from bench_config import BenchConfig
from experiment_infra import ExperimentCase, run_experiments_cli

cases = [ExperimentCase(f"case{{i:04d}}", BenchConfig(index=i, rate=i / 7, names=[str(i)])) for i in range({n})]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="entry.py", experiment_name="bench")
"""


def git(repo: Path, *args: str) -> None:
    env_args = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
    subprocess.run(["git", *env_args, *args], cwd=repo, check=True, capture_output=True)


def write_runs(suite_path: Path, results: Path, runs: int) -> list[Path]:
    """``runs`` earlier run directories, newest first; only the oldest ran this code."""
    suite = load_suite(suite_path)
    start = datetime(2026, 1, 1, 12, 0, 0)
    made = []
    for r in range(runs):
        plan = plan_suite(suite, results, now=start + timedelta(minutes=r), identities=True)
        plan.run.dir.mkdir(parents=True)
        write_record(plan.run.manifest, manifest_for(plan), fsync=False)
        other_code = r != 0  # the newer runs ran other code
        for p in plan.cases:
            p.paths.dir.mkdir()
            identity = p.identity
            if other_code and identity is not None:
                code = identity.code.model_copy(update={"sha256": f"other-code-{r}"})
                identity = identity.model_copy(update={"code": code})
            config = case_config(p.case, p.paths).to_json_dict()
            p.paths.config.write_text(json.dumps(config, indent=2))
            now = utc_now_iso()
            record = RunRecord(
                variant_name=p.variant_name, command=list(p.command), cwd=str(suite_path.parent), host=socket.gethostname(),
                started_at=now, ended_at=now, exit_code=0, duration_seconds=1.0, identity=identity,
            )
            write_record(p.paths.run_record, record, fsync=False)
            p.paths.metrics.write_text(json.dumps({"index": p.case.config.index, "loss": 1.0 / (1 + r)}))
        made.append(plan.run.dir)
    return made[::-1]


def read_files(runs: list[Path]) -> int:
    """The baseline: read and parse every run's manifest and every case's metrics."""
    n = 0
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_bytes())
        for case in manifest["cases"]:
            json.loads((run / case["variant_name"] / "metrics.json").read_bytes())
            n += 1
    return n


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (page cache, imports)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="earlier run directories (default 50)")
    parser.add_argument("-n", type=int, default=200, help="cases per run (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        (repo / "bench_config.py").write_text(CONFIG)
        (repo / "entry.py").write_text(ENTRY)
        suite_path = repo / "suite_bench.py"
        suite_path.write_text(SUITE.format(n=args.n))
        (repo / ".gitignore").write_text("results/\n")
        git(repo, "init", "-q", "-b", "main")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "bench")
        results = repo / "results"
        started = time.perf_counter()
        runs = write_runs(suite_path, results, args.runs)
        print(f"wrote {args.runs} runs x {args.n} cases in {time.perf_counter() - started:.1f} s")

        suite = load_suite(suite_path)
        plan = plan_suite(suite, results, identities=True)
        wanted = [WantedCase(p.variant_name, case_config(p.case, p.paths).to_json_dict(), p.identity) for p in plan.cases]

        def dry_run() -> str:
            return check_run(suite_path, dry_run=True, parallelism=None, resume=None, results_root=str(results), reuse=True)

        account = dry_run()
        reused = account.count("[reuse (")
        assert reused == args.n, f"expected every case reused from the oldest run, got {reused}"
        assert f"reuse ({runs[-1].name}/case0000)" in account

        read_s = timed(lambda: read_files(runs), args.repeat)
        dry_s = timed(dry_run, args.repeat)
        decide_s = timed(lambda: plan_reuse("bench", results / "bench", wanted), args.repeat)
    print(f"read manifest.json + metrics.json of {args.runs * args.n} cases: {read_s * 1000:8.1f} ms")
    print(f"--reuse dry run (check_run):                {dry_s * 1000:8.1f} ms  ratio {dry_s / read_s:.2f}")
    print(f"  of which deciding (plan_reuse):           {decide_s * 1000:8.1f} ms  ratio {decide_s / read_s:.2f}")


if __name__ == "__main__":
    main()
