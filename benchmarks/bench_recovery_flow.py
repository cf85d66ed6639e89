"""``flows/recover.py EXP --status results`` on a large experiment, beside its anchors, in one run.

    python benchmarks/bench_recovery_flow.py [--tiers 7] [--subtests 10] [--runs 16] [--dir DIR] [--keep]

The tree is the fixture's ``T0/00/run_01`` hard-linked into ``tiers x subtests x runs``
(7 x 10 x 16 = 1,120 runs by default; ``--runs 143`` makes 10,010), with
``agent/result.json``, ``judge/result.json`` and ``run_result.json`` deleted from every
run. Each step is a fresh process, as a user runs it, each Prefect one with its own
PREFECT_HOME (Prefect's temporary server, SQLite), timed by wall clock, with its CPU
time and peak RSS (both over the process and the children it waited for, the
temporary server included):

1. trivial flow: a flow returning 1 on the temporary server (start-up, one flow run,
   shut-down): the anchor of the budget. Measured before and after the recovery,
   since the machine's load drifts; the anchor is their mean;
2. seed-style inline regeneration: for every run read ``stdout.log`` and
   ``command_log.json`` and write ``agent/result.json``, one loop, no framework
   (what the seed tool does, "FAST because it's just JSON manipulation"); the tree is
   damaged again afterwards;
3. the recovery: ``python flows/recover.py EXP --status results``; it must exit 0,
   print no traceback and leave every run ``completed`` with its three files (checked
   by a survey afterwards). It writes all three files and the reports, the seed
   loop one file: the ratio says what the rest costs.

Prints seconds, ratios and peak RSS, and the verdict against the budget of issue 14:
recovery <= trivial flow + 5 s on 1,120 runs (a larger tree must complete the same way, with
no time budget). Exit 1 when the recovery failed or missed the budget.
Run it on an otherwise idle machine; the anchors are measured in the same run so that
a loaded one still compares like with like.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_recovery import FIXTURE, link_tree  # noqa: E402

from experiment_infra.layout import AgentRunPaths, ExperimentPaths  # noqa: E402
from experiment_infra.records import ExperimentConfig, load_record, write_record  # noqa: E402
from experiment_infra.recovery.survey import Selection, survey_experiment  # noqa: E402

BUDGET_SECONDS = 5.0
BUDGET_RUNS = 1120  # the tree the budget is set for; a larger one must only complete

TRIVIAL_FLOW = textwrap.dedent(
    """
    from prefect import flow

    @flow
    def trivial() -> int:
        return 1

    trivial()
    """
)

# The seed tool's regeneration, inline: stdlib json, one loop, agent/result.json only.
SEED_REGENERATION = textwrap.dedent(
    """
    import json, os, sys

    root = sys.argv[1]
    done = 0
    for tier in sorted(os.listdir(root)):
        tier_dir = os.path.join(root, tier)
        if not tier.startswith("T") or not os.path.isdir(tier_dir):
            continue
        for subtest in sorted(os.listdir(tier_dir)):
            sub_dir = os.path.join(tier_dir, subtest)
            if not os.path.isdir(sub_dir):
                continue
            for run in sorted(os.listdir(sub_dir)):
                agent = os.path.join(sub_dir, run, "agent")
                if not run.startswith("run_") or not os.path.isdir(agent):
                    continue
                with open(os.path.join(agent, "command_log.json")) as fh:
                    log = json.load(fh)
                exit_code = next((c.get("exit_code", 0) for c in log["commands"] if c.get("exit_code", 0)), 0)
                with open(os.path.join(agent, "stdout.log")) as fh:
                    stdout = fh.read()
                try:
                    out = json.loads(stdout)
                except ValueError:
                    out = {}
                usage = out.get("usage") or {}
                result = {
                    "exit_code": exit_code,
                    "stdout": stdout,
                    "stderr": "",
                    "token_stats": {
                        "input_tokens": usage.get("input_tokens", 0),
                        "output_tokens": usage.get("output_tokens", 0),
                        "cache_creation_tokens": usage.get("cache_creation_input_tokens", 0),
                        "cache_read_tokens": usage.get("cache_read_input_tokens", 0),
                    },
                    "cost_usd": out.get("total_cost_usd", 0.0),
                    "api_calls": out.get("num_turns", 0),
                }
                with open(os.path.join(agent, "result.json"), "w") as fh:
                    json.dump(result, fh, indent=2)
                done += 1
    print(done)
    """
)


@dataclass
class Step:
    name: str
    seconds: float
    cpu_seconds: float  # user + system, the process and the children it waited for (the temporary server)
    peak_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str


def run_step(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Step:
    """Run ``argv`` as a fresh process; wall clock and peak RSS from wait4."""
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    with out.open("wb") as fo, err.open("wb") as fe:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fo, stderr=fe, env=env, cwd=REPO_ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
    cpu = usage.ru_utime + usage.ru_stime
    return Step(name, seconds, cpu, usage.ru_maxrss / 1024, proc.returncode,
                out.read_text(errors="replace"), err.read_text(errors="replace"))


def prefect_env(workdir: Path, label: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    home = workdir / f"prefect-home-{label}"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=env.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180"),
    )
    return env


def build(root: Path, tiers: int, subtests: int, runs: int) -> list[AgentRunPaths]:
    exp = ExperimentPaths(root)
    config = load_record(ExperimentPaths(FIXTURE).config, ExperimentConfig)
    names = [f"T{t}" for t in range(tiers)]
    write_record(exp.config, config.model_copy(update={"tiers_to_run": names, "runs_per_subtest": runs}))
    template = ExperimentPaths(FIXTURE).run("T0", "00", 1).dir
    paths = []
    for tier in names:
        for s in range(subtests):
            for r in range(1, runs + 1):
                p = exp.run(tier, f"{s:02d}", r)
                link_tree(template, p.dir)
                paths.append(p)
    return paths


def damage(exp: ExperimentPaths, paths: list[AgentRunPaths]) -> None:
    for p in paths:
        for f in (p.agent_result, p.consensus, p.run_result):
            f.unlink(missing_ok=True)
    exp.status_cache.unlink(missing_ok=True)


def all_back(exp: ExperimentPaths, paths: list[AgentRunPaths]) -> tuple[bool, dict[str, int]]:
    files = all(f.is_file() for p in paths for f in (p.agent_result, p.consensus, p.run_result))
    counts = survey_experiment(exp, Selection(), cache=None).run_counts()
    return files and counts["completed"] == len(paths), counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", type=int, default=7)
    parser.add_argument("--subtests", type=int, default=10)
    parser.add_argument("--runs", type=int, default=16, help="runs per subtest")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the tree (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the tree and the step logs afterwards")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-recovery-flow-", dir=args.dir))
    exp = ExperimentPaths(workdir / "experiment")
    python = sys.executable
    try:
        start = time.perf_counter()
        paths = build(exp.dir, args.tiers, args.subtests, args.runs)
        damage(exp, paths)
        n = len(paths)
        print(f"tree: {args.tiers} tiers x {args.subtests} subtests x {args.runs} runs = {n} runs, "
              f"built in {time.perf_counter() - start:.1f} s, three result files deleted from each")

        trivial_file = workdir / "trivial_flow.py"
        trivial_file.write_text(TRIVIAL_FLOW)
        steps: list[Step] = [run_step("trivial_flow_1", [python, str(trivial_file)], prefect_env(workdir, "t1"), workdir)]

        seed = run_step("seed_regeneration", [python, "-c", SEED_REGENERATION, str(exp.dir)], dict(os.environ), workdir)
        assert seed.exit_code == 0 and seed.stdout.strip() == str(n), (seed.stdout, seed.stderr[-2000:])
        steps.append(seed)
        damage(exp, paths)

        recover = run_step(
            "recover", [python, str(REPO_ROOT / "flows" / "recover.py"), str(exp.dir), "--status", "results"],
            prefect_env(workdir, "recover"), workdir,
        )
        steps.append(recover)
        steps.append(run_step("trivial_flow_2", [python, str(trivial_file)], prefect_env(workdir, "t2"), workdir))

        back, counts = all_back(exp, paths)
        traceback = "Traceback" in recover.stdout + recover.stderr
        trivial = [s for s in steps if s.name.startswith("trivial")]
        anchor = sum(s.seconds for s in trivial) / len(trivial)
        for s in trivial:
            assert s.exit_code == 0, s.stderr[-2000:]

        print()
        print(f"{'step':<22} {'seconds':>8} {'/ trivial flow':>15} {'/ seed-style':>13} {'CPU s':>7} {'peak RSS MB':>12}")
        for s in steps:
            print(f"{s.name:<22} {s.seconds:8.2f} {s.seconds / anchor:14.2f}x {s.seconds / seed.seconds:12.1f}x "
                  f"{s.cpu_seconds:7.2f} {s.peak_rss_mb:12.0f}")
        over = recover.seconds - anchor
        print()
        print(f"trivial flow (anchor, mean of {len(trivial)}): {anchor:.2f} s "
              f"({', '.join(f'{s.seconds:.2f}' for s in trivial)})")
        print(f"recovery - trivial flow: {over:+.2f} s (budget +{BUDGET_SECONDS:.0f} s); "
              f"recovery / trivial flow: {recover.seconds / anchor:.2f}x; recovery / seed-style: {recover.seconds / seed.seconds:.1f}x")
        cpu_anchor = sum(s.cpu_seconds for s in trivial) / len(trivial)
        print(f"CPU: recovery {recover.cpu_seconds:.2f} s - trivial flow {cpu_anchor:.2f} s = {recover.cpu_seconds - cpu_anchor:+.2f} s "
              "(less sensitive to a loaded machine than wall time)")
        print(f"recovery - seed-style: {recover.seconds - seed.seconds:+.2f} s; "
              f"per run beyond the trivial flow: {1000 * over / n:.2f} ms")
        print(f"recovery: exit {recover.exit_code}, traceback {'yes' if traceback else 'no'}, "
              f"every file back {'yes' if back else 'NO'} ({counts})")
        ok = recover.exit_code == 0 and not traceback and back
        if not ok:
            print(recover.stderr[-3000:], file=sys.stderr)
        timed = n <= BUDGET_RUNS
        within = over <= BUDGET_SECONDS or not timed
        print("verdict: " + ("FAILED" if not ok else "over budget" if not within
                             else "within budget" if timed else f"completed (the time budget is for {BUDGET_RUNS:,} runs)"))
        return 0 if ok and within else 1
    finally:
        if args.keep:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
