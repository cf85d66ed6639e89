"""Recovery speed on a large experiment: classification and regeneration, in runs/second,
against an existence-only scan of the same tree.

    python benchmarks/bench_recovery.py [--runs 10000] [--dir DIR] [--flow 200] [--keep]

The tree is built from one ProjectScylla fixture run, copied into ``tiers x subtests x
runs``: the files the status rules read are real copies in every run, the rest (logs,
workspace) hard links, and each run's judges give scores of their own (two decimals, as
real judges do), so runs are not classified alike (``--same-scores`` keeps the fixture's
scores in every run, the tree issue 14 first measured). Steps, each timed over every run:

1. existence-only scan: ``os.path.exists`` on each file the status rules look at
   (output.txt, command_log.json, timing.json, agent/result.json, judge/result.json,
   run_result.json, judge_NN/judgment.json) -- the floor any file-based scan pays;
2. classification: the full survey a ``--dry-run`` prints (every run, every judge
   slot, file contents validated, actions planned), once reading every file and once
   with the classification cache a real recovery leaves (one lstat per file the
   rules read, contents read again only for runs whose files changed);
   then both as the commands a user runs: ``recover --dry-run --json`` (no cache, then
   the cache) beside the existence scan as a command of its own, with peak RSS;
3. regeneration (core, no Prefect): agent/result.json, judge/result.json and
   run_result.json deleted from every run, then rebuilt with ``regenerate_run``;
4. optionally (``--flow N``): the same regeneration of N runs through the ``recover``
   flow (one task run per subtest, temporary Prefect server), in process; for the command
   line beside its anchors (trivial flow, seed-style regeneration) see bench_recovery_flow.py.

Page cache is warm (the tree was just written); run it on an idle machine. The commands
are timed with their bytecode cached (one untimed run each first, with
PYTHONDONTWRITEBYTECODE unset), as a user's second run has it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from experiment_infra.layout import AgentRunPaths, ExperimentPaths  # noqa: E402
from experiment_infra.records import ExperimentConfig, load_record, write_record  # noqa: E402
from experiment_infra.recovery.survey import Selection, survey_experiment  # noqa: E402
from experiment_infra.recovery.regenerate import regenerate_run  # noqa: E402
from experiment_infra.status.cache import RACY_SECONDS, StatusCache  # noqa: E402

FIXTURE = Path(os.environ.get("SCYLLA_FIXTURE", REPO_ROOT.parent / "shared" / "fixtures" / "scylla-dryrun"))


def shape(n: int) -> tuple[int, int, int]:
    """tiers x subtests x runs_per_subtest with a product of (about) n."""
    tiers, subtests = (10, 10) if n >= 1000 else (1, 1)
    return tiers, subtests, max(1, n // (tiers * subtests))


def _read_by_rules() -> set[str]:
    """The run-relative files a classification opens: copied, not linked, in every run,
    so each run's reads hit files of their own, as in a real experiment (10,000 links to
    one inode would all be served from the same few cached pages)."""
    proto = AgentRunPaths(Path("."))
    names = {proto.output, proto.command_log, proto.agent_timing, proto.agent_stderr, proto.agent_result,
             proto.consensus, proto.run_result}
    for i in range(1, 10):
        names |= {proto.judge_slot(i).judgment, proto.judge_slot(i).command_log}
    return {os.fspath(n) for n in names}


_COPIED = _read_by_rules()


def link_tree(src: Path, dest: Path) -> None:
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            if os.path.normpath(rel / name) in _COPIED:
                shutil.copyfile(Path(root) / name, dest / rel / name)
                continue
            try:
                os.link(Path(root) / name, dest / rel / name)
            except OSError:
                shutil.copy2(Path(root) / name, dest / rel / name)


def vary_scores(paths: list[AgentRunPaths], slots: int) -> None:
    """Give every judgment of every run a score of its own, spread over 0.00..1.00."""
    for k, p in enumerate(paths):
        for slot in range(1, slots + 1):
            judgment = p.judge_slot(slot).judgment
            data = orjson.loads(judgment.read_bytes())
            data["score"] = (k * 37 + slot * 11) % 101 / 100
            judgment.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def build(root: Path, n: int) -> tuple[ExperimentPaths, list[AgentRunPaths]]:
    tiers, subtests, runs = shape(n)
    exp = ExperimentPaths(root)
    config = load_record(ExperimentPaths(FIXTURE).config, ExperimentConfig)
    tier_names = [f"T{t}" for t in range(tiers)]
    write_record(exp.config, config.model_copy(update={"tiers_to_run": tier_names, "runs_per_subtest": runs}))
    template = ExperimentPaths(FIXTURE).run("T0", "00", 1).dir
    paths = []
    for tier in tier_names:
        for s in range(subtests):
            for r in range(1, runs + 1):
                p = exp.run(tier, f"{s:02d}", r)
                link_tree(template, p.dir)
                paths.append(p)
    return exp, paths


def existence_scan(exp: ExperimentPaths, config: ExperimentConfig) -> int:
    """The floor: check that each file the rules read exists, nothing more."""
    proto = AgentRunPaths(Path("."))
    rel = [os.fspath(p) for p in (proto.output, proto.command_log, proto.agent_timing, proto.agent_result,
                                  proto.consensus, proto.run_result)]
    rel += [os.fspath(proto.judge_slot(i).judgment) for i in range(1, len(config.judge_models) + 1)]
    found = 0
    for tier in config.tiers_to_run:
        for subtest in exp.subtests_on_disk(tier):
            sub = os.fspath(exp.subtest(tier, subtest).dir)
            for r in range(1, config.runs_per_subtest + 1):
                run = os.path.join(sub, f"run_{r:02d}")
                found += sum(os.path.exists(os.path.join(run, f)) for f in rel)
    return found


_SCAN_COMMAND = """
import os, sys
root, runs, rel = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
found = 0
for tier in sorted(os.listdir(root)):
    tdir = os.path.join(root, tier)
    if not tier.startswith("T") or not os.path.isdir(tdir):
        continue
    for sub in sorted(os.listdir(tdir)):
        sdir = os.path.join(tdir, sub)
        if not os.path.isdir(sdir):
            continue
        for r in range(1, runs + 1):
            run = os.path.join(sdir, f"run_{r:02d}")
            found += sum(os.path.exists(os.path.join(run, f)) for f in rel)
print(found)
"""


def whole_commands(exp: ExperimentPaths, config: ExperimentConfig, n: int) -> None:
    """``recover --dry-run --json`` as a user runs it, beside the existence scan run as a
    command of its own (interpreter start-up on both sides), medians of 3; peak RSS."""
    proto = AgentRunPaths(Path("."))
    rel = [os.fspath(p) for p in (proto.output, proto.command_log, proto.agent_timing, proto.agent_result,
                                  proto.consensus, proto.run_result)]
    rel += [os.fspath(proto.judge_slot(i).judgment) for i in range(1, len(config.judge_models) + 1)]
    scan = [sys.executable, "-c", _SCAN_COMMAND, str(exp.dir), str(config.runs_per_subtest), *rel]
    recover = [sys.executable, str(REPO_ROOT / "flows" / "recover.py"), str(exp.dir), "--dry-run", "--json"]

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

    def median(cmd: list[str]) -> float:
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)  # untimed: caches the bytecode
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            times.append(time.perf_counter() - start)
        return sorted(times)[1]

    anchor = median(scan)
    print(f"{'command: existence-only scan':<40} {anchor:8.3f} s")
    aside = exp.status_cache.with_name(exp.status_cache.name + ".aside")
    exp.status_cache.rename(aside)
    try:
        cold = median(recover)
    finally:
        aside.rename(exp.status_cache)
    print(f"{'command: recover --dry-run --json':<40} {cold:8.3f} s  {cold / anchor:.2f}x the scan  (no cache)")
    warm = median(recover)
    print(f"{'command: recover --dry-run --json':<40} {warm:8.3f} s  {warm / anchor:.2f}x the scan  (cache)")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of the commands: {peak_mb:.0f} MB ({n} runs)")


def _workers(n: int) -> int:
    from experiment_infra.status.batch import worker_count

    return worker_count(n)


def timed(label: str, n: int, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<40} {seconds:8.3f} s  {n / seconds:10.0f} runs/s")
    return seconds, result


def flow_regeneration(exp: ExperimentPaths, subset: list[AgentRunPaths]) -> None:
    """The same regeneration through the ``recover`` flow: one task run per subtest."""
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="bench-prefect-"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    from flows.recover import recover

    for p in subset:
        for f in (p.agent_result, p.consensus, p.run_result):
            f.unlink()
    start = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):  # one local server, started once
        print(f"{'temporary Prefect server start':<40} {time.perf_counter() - start:8.3f} s")
        seconds, state = timed(
            f"regeneration via the flow ({len(subset)} runs)", len(subset),
            lambda: recover(experiment_dir=str(exp.dir), parallelism=8, return_state=True),
        )
        assert state.is_completed(), state.message
    # The flow also surveys every run of the experiment twice (before and after).


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to build the tree, in a new directory of its own (default: the system's temp dir)")
    parser.add_argument("--flow", type=int, default=0, metavar="N", help="also regenerate N runs through the flow")
    parser.add_argument("--keep", action="store_true", help="keep the tree afterwards")
    parser.add_argument("--same-scores", action="store_true", help="every run keeps the fixture's judge scores (runs classified alike)")
    args = parser.parse_args(argv)

    # A directory of its own, inside --dir when given: the cleanup removes only what it made.
    root = Path(tempfile.mkdtemp(prefix="bench-recovery-", dir=args.dir)) / "experiment"
    build_s, (exp, paths) = timed(f"build ({args.runs} runs, hard links)", args.runs, lambda: build(root, args.runs))
    n = len(paths)
    config = load_record(exp.config, ExperimentConfig)
    if not args.same_scores:
        vary_scores(paths, len(config.judge_models))
    try:
        scans = []
        for _ in range(3):  # best of three, for both
            scans.append(timed("existence-only scan", n, lambda: existence_scan(exp, config))[0])
        classes = []
        for _ in range(3):
            seconds, s = timed("classification, every file read", n, lambda: survey_experiment(exp, Selection(), cache=None))
            classes.append(seconds)
        assert s.run_counts()["completed"] == n, s.run_counts()
        print(f"  ratio to the existence scan: {min(classes) / min(scans):.2f}x  (best of 3 each)")
        one, _ = timed("classification, one process", n, lambda: survey_experiment(exp, Selection(), cache=None, workers=1))
        print(f"  ratio to the existence scan: {one / min(scans):.2f}x  (workers: {_workers(n)})")

        # A real recovery saves the classification cache; files younger than RACY_SECONDS
        # are never cached, so let the freshly built tree age first.
        time.sleep(RACY_SECONDS + 0.5)
        warm = StatusCache.load(exp.status_cache, list(config.judge_models))
        survey_experiment(exp, Selection(), cache=warm)
        warm.save()
        cached = []
        for _ in range(3):  # each loads the cache file from disk, as a dry run does
            seconds, s = timed("classification, unchanged runs cached", n, lambda: survey_experiment(exp, Selection()))
            cached.append(seconds)
        assert s.cache is not None and s.cache.hits == n
        print(f"  ratio to the existence scan: {min(cached) / min(scans):.2f}x  (best of 3 each)")

        whole_commands(exp, config, n)

        for p in paths:
            for f in (p.agent_result, p.consensus, p.run_result):
                f.unlink()
        seconds, s = timed("classification of the damaged tree", n, lambda: survey_experiment(exp, Selection()))
        assert s.run_counts()["results"] == n and s.cache is not None and s.cache.hits == 0
        models = list(config.judge_models)
        regen_s, _ = timed("regeneration (core, 3 files per run)", n, lambda: [regenerate_run(p, models) for p in paths])
        assert survey_experiment(exp, Selection()).run_counts()["completed"] == n
        print(f"regeneration / existence scan: {regen_s / min(scans):.1f}x")

        if args.flow:
            flow_regeneration(exp, paths[: args.flow])
    finally:
        if args.keep:
            print(f"kept: {root}")
        else:
            shutil.rmtree(root.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
