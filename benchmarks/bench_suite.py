"""Overhead of ``run_suite`` against a plain ThreadPoolExecutor + subprocess.run runner.

    python benchmarks/bench_suite.py [-n 200] [-p 4] 2>/dev/null

Both run the same trivial entry point (it writes one file) with the same bound on
concurrent subprocesses. Reported (run by hand; no test asserts on time):

- wall-time ratio run_suite / plain for N cases (flow already started, and cold);
- fixed start-up cost: the first flow run of a process starts Prefect's temporary
  server; measured as first 1-case run minus a second 1-case run;
- per-case overhead: (T(N) - T(1)) / (N - 1) for each runner, and their ratio;
- the project's runner alone (records, logs, config.json; no Prefect), to tell its
  cost from Prefect's (task-run engine and the server's event and log handling).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

ENTRY = """
import sys
from pathlib import Path
out = Path(next(a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--output_dir=")))
out.mkdir(parents=True, exist_ok=True)
(out / "done.txt").write_text("ok")
"""

SUITE = """
from experiment_infra import BaseExperimentConfig, ExperimentCase

class BenchConfig(BaseExperimentConfig):
    index: int = 0

experiment_name = "bench"
entry_point = "entry.py"
retries = 0
cases = [ExperimentCase(f"case{{i:04d}}", BenchConfig(index=i)) for i in range({n})]
"""


def write_suite(where: Path, n: int) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "entry.py").write_text(ENTRY)
    suite = where / f"suite_bench_{n}.py"
    suite.write_text(SUITE.format(n=n))
    return suite


def plain_runner(suite_path: Path, results: Path, parallelism: int) -> float:
    """The seed reference's approach: one subprocess.run per case in a thread pool."""
    from experiment_infra.suite import load_suite

    suite = load_suite(suite_path)
    started = time.perf_counter()

    def one(case) -> int:
        out = results / case.variant_name
        out.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(suite.entry_point), *case.config.with_output_dir(str(out)).to_argv()]
        with open(out / "stdout.log", "wb") as so, open(out / "stderr.log", "wb") as se:
            return subprocess.run(argv, stdout=so, stderr=se).returncode

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        codes = list(pool.map(one, suite.cases))
    assert not any(codes), "plain runner: a case failed"
    return time.perf_counter() - started


def core_runner(suite_path: Path, results: Path, parallelism: int) -> float:
    """This project's runner (run records, logs, config.json) without Prefect: where the overhead is not."""
    from experiment_infra.runner import run_case
    from experiment_infra.suite import load_suite, plan_suite, start_run

    suite = load_suite(suite_path)
    started = time.perf_counter()
    plan = plan_suite(suite, results)
    start_run(plan)
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        outcomes = list(pool.map(lambda p: run_case(p.case, p.paths, suite.entry_point, on_output=lambda s, l: None), plan.cases))
    assert all(o.status.value == "completed" for o in outcomes), "core runner: a case failed"
    return time.perf_counter() - started


def flow_runner(suite_path: Path, results: Path, parallelism: int) -> float:
    from flows.run_suite import run_suite

    started = time.perf_counter()
    state = run_suite(suite_path=str(suite_path), results_root=str(results), parallelism=parallelism, return_state=True)
    elapsed = time.perf_counter() - started
    assert state.result(raise_on_failure=False).ok, "run_suite: a case failed"
    return elapsed


def bare_prefect_runner(suite_path: Path, results: Path, parallelism: int) -> float:
    """The plain runner's body inside one bare Prefect task per case: Prefect's own floor.

    No records, no log forwarding, no retries: what any one-task-run-per-case design
    costs on this machine, whatever it does inside the task.
    """
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    from experiment_infra.suite import load_suite

    suite = load_suite(suite_path)

    @task(cache_policy=NO_CACHE, persist_result=False)
    def one(i: int) -> int:
        case = suite.cases[i]
        out = results / case.variant_name
        out.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(suite.entry_point), *case.config.with_output_dir(str(out)).to_argv()]
        with open(out / "stdout.log", "wb") as so, open(out / "stderr.log", "wb") as se:
            return subprocess.run(argv, stdout=so, stderr=se).returncode

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=parallelism))
    def bare() -> list[int]:
        return [f.result() for f in [one.submit(i) for i in range(len(suite.cases))]]

    started = time.perf_counter()
    assert not any(bare()), "bare Prefect runner: a case failed"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="number of cases (default 200)")
    parser.add_argument("-p", type=int, default=4, help="concurrent subprocesses for both runners (default 4)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-suite-"))
    # A private PREFECT_HOME and no API URL: the flow starts its own temporary server.
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    os.environ.pop("PREFECT_API_URL", None)
    sys.path.insert(0, str(REPO_ROOT))
    one, many = write_suite(work / "suite", 1), write_suite(work / "suite", args.n)

    plain_1 = plain_runner(one, work / "plain1", args.p)
    plain_n = plain_runner(many, work / "plainN", args.p)
    core_n = core_runner(many, work / "core", args.p)
    flow_cold_1 = flow_runner(one, work / "flow", args.p)
    flow_warm_1 = flow_runner(one, work / "flow", args.p)
    flow_n = flow_runner(many, work / "flow", args.p)
    bare_1 = bare_prefect_runner(one, work / "bare1", args.p)
    bare_n = bare_prefect_runner(many, work / "bareN", args.p)

    startup = flow_cold_1 - flow_warm_1
    per_case_plain = (plain_n - plain_1) / (args.n - 1)
    per_case_flow = (flow_n - flow_warm_1) / (args.n - 1)
    per_case_bare = (bare_n - bare_1) / (args.n - 1)
    lines = [
        f"{args.n} trivial cases, -p {args.p}, {os.cpu_count()} CPU(s)",
        f"plain runner:      1 case {plain_1:6.2f} s   {args.n} cases {plain_n:7.2f} s",
        f"core runner, no Prefect:          {args.n} cases {core_n:7.2f} s   ({core_n / plain_n:.2f}x plain)",
        f"run_suite (warm):  1 case {flow_warm_1:6.2f} s   {args.n} cases {flow_n:7.2f} s",
        f"run_suite (cold):  1 case {flow_cold_1:6.2f} s   (first flow run of the process)",
        f"fixed start-up cost (temporary server): {startup:.2f} s",
        f"fixed per-flow-run cost over plain:      {flow_warm_1 - plain_1:.2f} s",
        f"per-case wall time: plain {per_case_plain * 1000:.1f} ms, run_suite {per_case_flow * 1000:.1f} ms, "
        f"ratio {per_case_flow / per_case_plain:.2f}x",
        f"wall-time ratio, flow started: {flow_n / plain_n:.2f}x;  including start-up: {(flow_n + startup) / plain_n:.2f}x",
        f"floor: one bare Prefect task per case (same subprocess, nothing else): {per_case_bare * 1000:.1f} ms per case, "
        f"{per_case_bare / per_case_plain:.2f}x plain; run_suite is {per_case_flow / per_case_bare:.2f}x that floor",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
