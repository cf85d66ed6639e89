"""Overhead of ``run_suite`` against a plain ThreadPoolExecutor + subprocess.run runner.

    python benchmarks/bench_suite.py [-n 200] [-p 4] 2>/dev/null

Both run the same trivial entry point (it writes one file) with the same bound on
concurrent subprocesses. Reported (run by hand; no test asserts on time):

- wall-time ratio run_suite / plain for N cases (flow already started, and cold);
- fixed start-up cost: the first flow run of a process starts Prefect's temporary
  server; measured as first 1-case run minus a second 1-case run;
- per-case overhead: (T(N) - T(1)) / (N - 1) for each runner, and their ratio;
- the project's runner alone (records, logs, config.json; no Prefect), to tell its
  cost from Prefect's (task-run engine and the server's event and log handling);
- the floor: one bare Prefect task per case running the plain runner's body;
- where the CPU goes per case: this process (the flow and its task threads) and the
  temporary server (a child process), which share the machine with the cases.

Two things made single runs of Prefect flows unrepeatable, and are handled here:
the temporary server keeps recording a flow's events after the flow returns (the next
flow run competes with that backlog, so each one starts after the server goes idle),
and a flow run's end waits for its heartbeat thread, which sleeps in 1 s steps (up to
1 s more per flow run, a fixed cost: measured on its own, then heartbeats are off for
the per-case figures). Each warm figure is the median of ``--repeat`` runs.
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


def _child_cpu_seconds() -> float:
    """CPU time used so far by this process's live children (the temporary server); Linux only."""
    me, total, tick = str(os.getpid()), 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def wait_for_idle_server(quiet_cpu_seconds: float = 0.05) -> None:
    """Return once the server used under ``quiet_cpu_seconds`` of CPU in one second."""
    if not Path("/proc").is_dir():
        time.sleep(5)
        return
    while True:
        before = _child_cpu_seconds()
        time.sleep(1.0)
        if _child_cpu_seconds() - before < quiet_cpu_seconds:
            return


def measured(run, *args) -> tuple[float, float, float]:
    """(wall, this process's CPU, the server's CPU until it is idle again) of one flow run."""
    wait_for_idle_server()
    server, cpu = _child_cpu_seconds(), time.process_time()
    wall = run(*args)
    cpu = time.process_time() - cpu
    wait_for_idle_server()
    return wall, cpu, _child_cpu_seconds() - server


def median_wall(repeat: int, run, *args) -> tuple[float, float, float]:
    """Median wall time of ``repeat`` runs, with the CPU figures of the median run."""
    runs = sorted(measured(run, *args) for _ in range(repeat))
    return runs[len(runs) // 2]


def write_suite(where: Path, n: int) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "entry.py").write_text(ENTRY)
    suite = where / f"suite_bench_{n}.py"
    suite.write_text(SUITE.format(n=n))
    return suite


def plain_runner(suite_path: Path, results: Path, parallelism: int) -> float:
    """The seed reference's approach: one subprocess.run per case in a thread pool."""
    from experiment_infra.suites.suite import load_suite

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
    from experiment_infra.running.runner import run_case
    from experiment_infra.suites.suite import load_suite, plan_suite, start_run

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

    from experiment_infra.suites.suite import load_suite

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
    parser.add_argument("--repeat", type=int, default=3, help="warm flow runs per figure, median taken (default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-suite-"))
    # A private PREFECT_HOME and no API URL: the flow starts its own temporary server.
    os.environ["PREFECT_HOME"] = str(work / "prefect-home")
    os.environ.pop("PREFECT_API_URL", None)
    # The generous start-up limit every command gives the temporary server (20 s is too
    # little on a busy 2-CPU machine).
    sys.path.insert(0, str(REPO_ROOT))
    from experiment_cli.common import prepare_prefect

    prepare_prefect()
    one, many = write_suite(work / "suite", 1), write_suite(work / "suite", args.n)

    plain_1 = min(plain_runner(one, work / f"plain1_{i}", args.p) for i in range(args.repeat))
    plain_n = min(plain_runner(many, work / f"plainN_{i}", args.p) for i in range(args.repeat))
    core_n = min(core_runner(many, work / f"core_{i}", args.p) for i in range(args.repeat))
    flow_cold_1 = flow_runner(one, work / "flow", args.p)
    flow_1_heartbeat, _, _ = median_wall(args.repeat, flow_runner, one, work / "flow", args.p)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        flow_1, _, _ = median_wall(args.repeat, flow_runner, one, work / "flow", args.p)
        flow_n, flow_cpu, flow_server = median_wall(args.repeat, flow_runner, many, work / "flow", args.p)
        bare_1, _, _ = median_wall(args.repeat, bare_prefect_runner, one, work / "bare1", args.p)
        bare_n, bare_cpu, bare_server = median_wall(args.repeat, bare_prefect_runner, many, work / "bareN", args.p)

    n = args.n
    startup = flow_cold_1 - flow_1_heartbeat
    per_case_plain = (plain_n - plain_1) / (n - 1)
    per_case_flow = (flow_n - flow_1) / (n - 1)
    per_case_bare = (bare_n - bare_1) / (n - 1)
    ms = 1000 / n
    lines = [
        f"{n} trivial cases, -p {args.p}, {os.cpu_count()} CPU(s); Prefect figures: median of {args.repeat} warm runs",
        f"plain runner:      1 case {plain_1:6.2f} s   {n} cases {plain_n:7.2f} s",
        f"core runner, no Prefect:          {n} cases {core_n:7.2f} s   ({core_n / plain_n:.2f}x plain)",
        f"run_suite (warm):  1 case {flow_1_heartbeat:6.2f} s   (heartbeats on, as users run it)",
        f"run_suite (warm, no heartbeat):  1 case {flow_1:6.2f} s   {n} cases {flow_n:7.2f} s",
        f"run_suite (cold):  1 case {flow_cold_1:6.2f} s   (first flow run of the process)",
        f"bare Prefect task per case (no heartbeat): 1 case {bare_1:6.2f} s   {n} cases {bare_n:7.2f} s",
        f"fixed start-up cost (temporary server): {startup:.2f} s",
        f"fixed per-flow-run cost over plain:      {flow_1_heartbeat - plain_1:.2f} s "
        f"({flow_1_heartbeat - flow_1:.2f} s of it waiting for the heartbeat thread)",
        f"per-case wall time: plain {per_case_plain * 1000:.1f} ms, run_suite {per_case_flow * 1000:.1f} ms, "
        f"ratio {per_case_flow / per_case_plain:.2f}x",
        f"wall-time ratio, flow started: {flow_n / plain_n:.2f}x;  including start-up: {(flow_n + startup) / plain_n:.2f}x",
        f"floor (bare Prefect task per case): {per_case_bare * 1000:.1f} ms per case, {per_case_bare / per_case_plain:.2f}x plain; "
        f"run_suite is {per_case_flow / per_case_bare:.2f}x that floor",
        f"CPU per case, this process / temporary server: run_suite {flow_cpu * ms:.1f} / {flow_server * ms:.1f} ms, "
        f"bare {bare_cpu * ms:.1f} / {bare_server * ms:.1f} ms",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
