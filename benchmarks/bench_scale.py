"""The scheduler at scale: N trivial cases at ``-p 8``, this project against a plain runner.

    python benchmarks/bench_scale.py [-n 2000] [-p 8] [--server URL]

The suite is the spec's shape: a config class in its own module, an entry point that
only builds ``config = BenchConfig()`` from its command line and writes one file.
Two runners, each in a process of its own, run it in turn (plain, ours, plain: the
machine is shared, so the plain figure is the mean of the runs around ours):

- plain: the spec's ``ThreadPoolExecutor`` runner, one ``subprocess.run`` per case;
- ours: ``python suite.py -p 8`` as a user runs it, with Prefect's temporary server
  (started and stopped inside the run, so its CPU is counted), or against a kept
  server (``--server``; its CPU is then read from /proc, as the server's process tree).

Reported (no test asserts on time): wall time and its ratio; CPU per case (the runner's
process tree, reaped: ``RUSAGE_CHILDREN``; the cases' own CPU included on both sides,
so the difference is what running a case costs us); the extra CPU per case over plain;
peak RSS of the runner's processes (sampled every 0.2 s, the entry points left out,
as they are the same on both sides); and that every case reads ``completed``.

Results, the temporary server's per-case settings (``experiment_cli/temporary_server.py``,
``server_settings``), 2-CPU machine under a load of 5-10, so CPU, not wall time:

- in-run CPU per case (read from /proc between the flow's "N case(s)" line and its
  summary, 200 cases, two runs each; start and stop left out): Prefect's defaults (task-run
  recorder batch 1, triggers on) server 85 / 73 ms, flow process 29 / 27 ms; recorder
  batch 100: server 43 / 44 ms; batch 100 and triggers off (the new default where the
  database holds no automation): server 27 / 38 ms, flow process 26 / 32 ms (unchanged).
  An event persister batch of 200 (default 20) changed nothing (41 ms).
- this script, ``-n 200``, each beside its own plain runs: before (batch 1, triggers on: set
  in the environment) extra CPU 215.6 ms/case, server 151.8 ms/case (0.34x the plain
  runner's 441.8), flow process 49.8 (0.11x); after (the defaults) extra CPU 164.7 ms/case,
  server 109.8 (0.26x the plain runner's 424.6), flow process 46.0 (0.11x). At 200 cases
  the fixed cost (the server's start and stop, about 31 s of CPU) is most of "extra".
- Prefect's floor (``FLOOR``: a flow of 500 task runs doing nothing, 8 threads, on a kept
  ``prefect server start``, CPU counted until the server is idle again, load about 1):
  Prefect's settings: flow process 11.4 ms and server 73.2 ms per task run (it was still
  writing 48 s after the flow ended); with the temporary server's (recorder batch 100,
  triggers off): 11.5 + 21.3 = 32.8 ms per task run. No runner that gives each case a
  Prefect task run can add less than that, so issue 30's "at most 30 ms of extra CPU per
  case" is under Prefect's own cost. Ours in the same settings, in-run (200 cases, load
  about 8): flow 26-28 ms, server 36-45 ms, waiter server 3 ms; the forked waiters and
  entry points cost what the plain runner's entry points do (570 against 596 ms).
- ``-n 2000`` (load 11-14, helpers' tests running): ours 748 s from start to exit, all
  2000 ``completed``; the plain runner's two runs around it 1240 s and 630 s: wall ratios
  on this machine at that load mean nothing (0.6x to 1.19x).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
from experiment_infra import BaseExperimentConfig


class BenchConfig(BaseExperimentConfig):
    index: int = 0
"""

ENTRY = """
from pathlib import Path

from bench_config import BenchConfig

config = BenchConfig()
Path(config.output_dir).mkdir(parents=True, exist_ok=True)
(Path(config.output_dir) / "done.txt").write_text(str(config.index))
"""

SUITE = """
from bench_config import BenchConfig

from experiment_infra import ExperimentCase, run_experiments_cli

cases = [ExperimentCase(f"case{{i:05d}}", BenchConfig(index=i)) for i in range({n})]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="entry.py", experiment_name="scale")
"""


# Prefect's own floor: the same number of task runs, each doing nothing, in one flow on the
# same kind of server (this project's temporary server, started and stopped the same way),
# with the same thread pool. What no runner with a Prefect task run per case can go under.
FLOOR = """
import sys

from experiment_cli.common import run_flow, start_prefect

start_prefect()
from prefect import flow, task  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402


@task
def case(i: int) -> int:
    return i


@flow(task_runner=ThreadPoolTaskRunner(max_workers={p}))
def floor(n: int) -> None:
    for future in [case.submit(i) for i in range(n)]:
        future.wait()


if not run_flow(floor, n={n}).is_completed():
    sys.exit("the floor's flow run failed")
"""


def write_suite(where: Path, n: int) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    (where / "bench_config.py").write_text(CONFIG)
    (where / "entry.py").write_text(ENTRY)
    suite = where / "suite_scale.py"
    suite.write_text(SUITE.format(n=n))
    return suite


def plain(suite_path: Path, results: Path, parallelism: int) -> None:
    """The spec's runner: a thread pool, one ``subprocess.run`` per case (run in its own process)."""
    from experiment_infra.suites.config import ENTRY_POINT_ENV
    from experiment_infra.suites.suite import load_suite

    suite = load_suite(suite_path)
    env = {**os.environ, ENTRY_POINT_ENV: str(suite.entry_point)}

    def one(case) -> int:
        out = results / case.variant_name
        out.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, str(suite.entry_point), *case.config.with_output_dir(str(out)).to_argv()]
        with open(out / "stdout.log", "wb") as so, open(out / "stderr.log", "wb") as se:
            return subprocess.run(argv, stdout=so, stderr=se, env=env, cwd=suite_path.parent).returncode

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        codes = list(pool.map(one, suite.cases))
    failed = sum(1 for c in codes if c)
    if failed:
        sys.exit(f"plain runner: {failed} case(s) failed")


LONG_LIVED = {"runner": "", "Prefect server": "prefect", "waiter server": "waiter_server.py"}


def _category(p, root: int) -> str | None:
    if p.pid == root:
        return "runner"
    cmd = " ".join(p.cmdline())
    if "waiter_server.py" in cmd and p.ppid() != root and p.ppid() != 1:
        return None  # a forked waiter (short-lived, counted in the total only)
    if "waiter_server.py" in cmd:
        return "waiter server"
    if "prefect" in cmd or "uvicorn" in cmd:
        return "Prefect server"
    return None


def _tree_rss(root: int, skip: str, cpu: dict[int, tuple[str, float]]) -> int:
    """Sum of RSS (bytes) of ``root`` and its descendants whose command line lacks ``skip``;
    the CPU so far of the long-lived ones (the runner, the servers) into ``cpu``."""
    import psutil

    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            if skip in " ".join(p.cmdline()):
                continue
            total += p.memory_info().rss
            what = _category(p, root)
            if what is not None:
                t = p.cpu_times()
                cpu[p.pid] = (what, t.user + t.system)
        except psutil.Error:
            continue
    return total


def _server_cpu(url: str | None) -> float:
    """CPU seconds so far of a kept server's process tree (found by its port), 0 without one."""
    if url is None:
        return 0.0
    import psutil

    port = url.rsplit(":", 1)[-1].split("/")[0]
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "prefect" in cmd and "server" in cmd and port in cmd or "uvicorn" in cmd and port in cmd:
            try:
                for q in [p, *p.children(recursive=True)]:
                    t = q.cpu_times()
                    total += t.user + t.system
            except Exception:
                pass
    return total


def _adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (Linux), so their CPU is counted:
    a process the runner started and did not wait for (its waiter server) ends after it."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        print("warning: orphans of the runner are not counted (no PR_SET_CHILD_SUBREAPER)", file=sys.stderr)


def _reap_all() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def measure(argv: list[str], env: dict[str, str], cwd: Path, log: Path, server: str | None) -> dict[str, float]:
    """Wall, CPU (the reaped process tree) and peak RSS (runner processes) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = _server_cpu(server)
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    peak, by_pid = 0, {}
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.2):
            peak = max(peak, _tree_rss(proc.pid, "entry.py", by_pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    wall = time.perf_counter() - started
    _reap_all()  # orphans (adopted): their CPU joins RUSAGE_CHILDREN once reaped
    stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    server_cpu = _server_cpu(server) - server_before
    if code != 0:
        sys.exit(f"{' '.join(argv[:3])}: exit {code}; see {log}")
    out = {"wall": wall, "cpu": cpu, "server_cpu": server_cpu, "peak_mb": peak / 2**20}
    for what in LONG_LIVED:  # sampled (up to 0.2 s short of their last CPU)
        out[what] = sum(c for w, c in by_pid.values() if w == what)
    return out


def count_completed(results: Path) -> tuple[int, int]:
    from experiment_infra.layout import SuiteRunPaths
    from experiment_infra.status.rules import CaseStatus, classify_case

    (run_dir,) = (results / "scale").iterdir()
    run = SuiteRunPaths(run_dir)
    names = [p.name for p in run_dir.iterdir() if p.name.startswith("case")]
    done = sum(1 for v in names if classify_case(run.case(v)).status is CaseStatus.COMPLETED)
    return done, len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="number of cases (default 2000)")
    parser.add_argument("-p", type=int, default=8, help="concurrent cases for both runners (default 8)")
    parser.add_argument("--server", help="a kept server's API URL (default: the temporary server)")
    parser.add_argument("--ours-only", action="store_true", help="skip the plain runner and the floor (profiling)")
    parser.add_argument("--no-floor", action="store_true", help="skip Prefect's floor (N task runs doing nothing)")
    parser.add_argument("--plain", nargs=2, metavar=("SUITE", "RESULTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    if args.plain:
        sys.path.insert(0, str(Path(args.plain[0]).parent))
        plain(Path(args.plain[0]), Path(args.plain[1]), args.p)
        return
    _adopt_orphans()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    suite = write_suite(work / "suite", args.n)
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home"), "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), str(suite.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("PREFECT_API_URL", None)
    if args.server:
        env["PREFECT_API_URL"] = args.server
    py = sys.executable
    plain_cmd = lambda i: [py, __file__, "-p", str(args.p), "--plain", str(suite), str(work / f"plain{i}")]  # noqa: E731
    ours_cmd = [py, str(suite), "-p", str(args.p), "--results-root", str(work / "ours")]
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "ours": []}
    # A new home's first server start creates its database (once per machine, about 10 s of
    # CPU): done before anything is measured, so ours and the floor start alike, as every
    # run after a user's first does.
    (work / "warm.py").write_text(FLOOR.format(n=1, p=1))
    subprocess.run([py, str(work / "warm.py")], env=env, cwd=suite.parent, stdout=subprocess.DEVNULL, check=True)
    if not args.ours_only:
        runs["plain"].append(measure(plain_cmd(0), env, suite.parent, work / "plain0.log", None))
    runs["ours"].append(measure(ours_cmd, env, suite.parent, work / "ours.log", args.server))
    if not args.ours_only:
        runs["plain"].append(measure(plain_cmd(1), env, suite.parent, work / "plain1.log", None))
    floor = None
    if not (args.ours_only or args.no_floor):
        (work / "floor.py").write_text(FLOOR.format(n=args.n, p=args.p))
        floor = measure([py, str(work / "floor.py")], env, suite.parent, work / "floor.log", args.server)
    done, total = count_completed(work / "ours")
    n, ours = args.n, runs["ours"][0]
    where = f"kept server {args.server}" if args.server else "temporary server (started by the run)"
    lines = [f"{n} trivial cases, -p {args.p}, {os.cpu_count()} CPU(s); ours: `python suite.py`, {where}; work dir {work}"]
    ours_cpu = ours["cpu"] + ours["server_cpu"]
    lines.append(f"ours:  wall {ours['wall']:7.1f} s  CPU {ours_cpu * 1000 / n:6.1f} ms/case"
                 f" (kept server {ours['server_cpu'] * 1000 / n:.1f})  peak RSS {ours['peak_mb']:.0f} MB  completed {done}/{total}")
    lines.append("ours, CPU by process (ms/case): " + ", ".join(f"{w} {ours[w] * 1000 / n:.1f}" for w in LONG_LIVED)
                 + f", the rest (waiters, entry points) {(ours['cpu'] - sum(ours[w] for w in LONG_LIVED)) * 1000 / n:.1f}")
    if runs["plain"]:
        wall = sum(r["wall"] for r in runs["plain"]) / len(runs["plain"])
        cpu = sum(r["cpu"] for r in runs["plain"]) / len(runs["plain"])
        peak = max(r["peak_mb"] for r in runs["plain"])
        walls = ", ".join(f"{r['wall']:.1f}" for r in runs["plain"])
        lines.append(f"plain: wall {wall:7.1f} s ({walls})  CPU {cpu * 1000 / n:6.1f} ms/case  peak RSS {peak:.0f} MB")
        lines.append(f"ratio: wall {ours['wall'] / wall:.2f}x  extra CPU {(ours_cpu - cpu) * 1000 / n:.1f} ms/case")
    if floor is not None:
        floor_cpu = floor["cpu"] + floor["server_cpu"]
        lines.append(f"Prefect's floor ({n} task runs doing nothing, same server and pool): wall {floor['wall']:.1f} s"
                     f"  CPU {floor_cpu * 1000 / n:.1f} ms/task run; ours beyond it:"
                     f" {(ours_cpu - floor_cpu - (cpu if runs['plain'] else 0.0)) * 1000 / n:.1f} ms/case")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
