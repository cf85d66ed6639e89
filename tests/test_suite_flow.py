"""Running suites: the run_suite flow on a real Prefect server, real subprocesses, real git."""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, git
from suite_factory import case_src, make_suite, rewrite_cases, tries_file

from experiment_infra import CasePaths, SuiteRunPaths, load_record
from experiment_cli.run_suite import main
from experiment_infra.layout import RUN_DIR_PATTERN
from experiment_infra.records import RunRecord, SuiteManifest
from experiment_infra.running.runner import run_case
from experiment_infra.status.rules import CaseStatus
from experiment_infra.suites.suite import load_suite
from flows.run_suite import run_suite  # imported (and its logging set up) before any test captures output


def run_flow(suite: Path, results: Path, **kwargs):
    """Run the flow; return (state, summary)."""
    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True, **kwargs)
    return state, state.result(raise_on_failure=False)


def committed(repo: Path) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "suite")
    return git(repo, "rev-parse", "HEAD")


def task_states(flow_state) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = flow_state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {r.name: r.state.name for r in runs}


# ------------------------------------------------------------------ layout and records


def test_run_layout_manifest_and_records(prefect_harness, git_repo: Path, tmp_path: Path) -> None:
    suite = make_suite(git_repo / "experiments" / "demo", name="demo")
    sha = committed(git_repo)
    results = tmp_path / "results"

    state, summary = run_flow(suite, results)

    assert state.is_completed() and summary.ok
    run_dir = Path(summary.run_dir)
    assert run_dir.parent == results / "demo"
    assert RUN_DIR_PATTERN.match(run_dir.name) and run_dir.name.endswith(f"_{sha[:7]}")
    manifest = load_record(SuiteRunPaths(run_dir).manifest, SuiteManifest)
    assert (manifest.experiment_name, manifest.mode) == ("demo", "standard")
    assert manifest.entry_point == str((suite.parent / "entry.py").resolve())
    assert manifest.git.sha == sha and manifest.git.branch == "main" and not manifest.git.dirty
    assert not SuiteRunPaths(run_dir).patch.exists()
    assert [c.variant_name for c in manifest.cases] == ["a", "b"]
    assert manifest.cases[1].config["value"] == 2.0
    assert manifest.cases[1].config["output_dir"] == str(run_dir / "b")

    for variant, value in (("a", 1.0), ("b", 2.0)):
        case = CasePaths(run_dir / variant)
        metrics = json.loads(case.metrics.read_text())
        assert metrics["value"] == value and metrics["saw_config"] == 1  # config.json was there first
        assert json.loads(case.config.read_text())["label"] == variant
        record = load_record(case.run_record, RunRecord)
        assert record.exit_code == 0 and record.attempt == 1 and record.ended_at and record.pid
        assert record.host and record.duration_seconds is not None and not record.timed_out
        assert record.command[:2] == [sys.executable, str(suite.parent / "entry.py")]
        assert f"--output_dir={run_dir / variant}" in record.command
        assert f"hello from {variant} try 1" in case.stdout.read_text()
    assert [r.variant for r in summary.rows] == ["a", "b"]
    assert {r.status for r in summary.rows} == {"completed"}


def test_dirty_tree_gets_suffix_and_patch(prefect_harness, git_repo: Path, tmp_path: Path) -> None:
    suite = make_suite(git_repo, [case_src("only")])
    committed(git_repo)
    (git_repo / "README.md").write_text("test repo\nan uncommitted line\n")

    _, summary = run_flow(suite, tmp_path / "results")

    run = SuiteRunPaths(Path(summary.run_dir))
    assert run.dir.name.endswith("-dirty")
    assert "+an uncommitted line" in run.patch.read_text()
    manifest = load_record(run.manifest, SuiteManifest)
    assert manifest.git.dirty and manifest.git.patch_file == run.patch.name


def test_outside_git_the_hash_is_nogit(prefect_harness, tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "plain", [case_src("only")])
    _, summary = run_flow(suite, tmp_path / "results")
    run_dir = Path(summary.run_dir)
    assert run_dir.name.endswith("_nogit")
    assert load_record(SuiteRunPaths(run_dir).manifest, SuiteManifest).git.sha == "nogit"


# -------------------------------------------------------------------------- dry run


def test_dry_run_prints_commands_and_writes_nothing(prefect_harness, tmp_path: Path, capsys) -> None:
    suite = make_suite(tmp_path / "s")
    results = tmp_path / "results"

    state, summary = run_flow(suite, results, dry_run=True)

    out = capsys.readouterr().out
    assert state.is_completed() and summary.dry_run
    assert not results.exists()
    assert not list((tmp_path / "s").glob("**/tries.txt"))
    run_dir = Path(summary.run_dir)
    assert str(run_dir) in out
    plan = load_suite(suite)
    for case in plan.cases:
        assert f"{case.variant_name} -> {run_dir / case.variant_name}" in out
        argv = [sys.executable, str(plan.entry_point), f"--output_dir={run_dir / case.variant_name}"]
        assert shlex.join(argv) in out


def test_dry_run_from_the_suite_file_itself(tmp_path: Path, capfd, monkeypatch) -> None:
    suite = make_suite(tmp_path / "s")
    results = tmp_path / "results"
    monkeypatch.setattr(sys, "argv", [str(suite), "--dry-run", "--results-root", str(results)])
    monkeypatch.syspath_prepend(str(suite.parent))

    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(suite), run_name="__main__")

    assert info.value.code == 0
    assert "nothing written" in capfd.readouterr().out  # from the command line it ran as a child
    assert not results.exists()


# --------------------------------------------------------------- failures and retries


def test_retries_happen_and_attempts_are_kept(prefect_harness, tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "s", [case_src("flaky", fail_times=1)], retries=1, extra="retry_on_exit_codes = [3]")

    state, summary = run_flow(suite, tmp_path / "results")

    assert state.is_completed() and summary.ok
    case = CasePaths(Path(summary.run_dir) / "flaky")
    record = load_record(case.run_record, RunRecord)
    assert record.attempt == 2 and record.exit_code == 0
    assert case.kept_attempts() == [1]
    first = CasePaths(case.attempt_dir(1))
    assert load_record(first.run_record, RunRecord).exit_code == 3
    assert "boom in flaky" in first.stderr.read_text()
    assert "hello from flaky try 1" in first.stdout.read_text()
    assert "try 2" in case.stdout.read_text() and "try 1" not in case.stdout.read_text()


def test_a_retry_continues_in_place_and_keeps_the_runner_files(prefect_harness, tmp_path: Path) -> None:
    """The spec's resume: the retry runs in the case directory with what the failed try
    wrote; only the runner's files of that try move to ``.attempts/attempt_1``."""
    suite = make_suite(tmp_path / "s", [case_src("flaky", fail_times=1)], retries=1, extra="retry_on_exit_codes = [3]")

    state, summary = run_flow(suite, tmp_path / "results")

    assert state.is_completed() and summary.ok
    case = CasePaths(Path(summary.run_dir) / "flaky")
    first = case.attempt_dir(1)
    assert json.loads(case.metrics.read_text())["found_earlier_output"] == 1  # try 1's progress.txt was there
    assert (case.dir / "progress.txt").read_text() == "try 2 started"
    assert sorted(p.name for p in first.iterdir()) == ["config.json", "run_record.json", "stderr.log", "stdout.log"]
    assert load_record(CasePaths(first).run_record, RunRecord).exit_code == 3
    assert load_record(case.run_record, RunRecord).attempt == 2


def test_fresh_attempt_dir_moves_the_whole_failed_attempt_aside(prefect_harness, tmp_path: Path) -> None:
    """With ``fresh_attempt_dir = True``, not only the runner's files: what the entry point
    wrote on the failed try is kept in ``.attempts/attempt_1`` and the retry starts empty."""
    suite = make_suite(tmp_path / "s", [case_src("flaky", fail_times=1)], retries=1, extra="fresh_attempt_dir = True\nretry_on_exit_codes = [3]")

    state, summary = run_flow(suite, tmp_path / "results")

    assert state.is_completed() and summary.ok
    case = CasePaths(Path(summary.run_dir) / "flaky")
    first = case.attempt_dir(1)
    assert (first / "progress.txt").read_text() == "try 1 started"  # the failed try's own output, kept
    assert json.loads(case.metrics.read_text())["found_earlier_output"] == 0
    assert sorted(p.name for p in first.iterdir()) == ["config.json", "progress.txt", "run_record.json", "stderr.log", "stdout.log"]
    assert load_record(CasePaths(first).run_record, RunRecord).exit_code == 3


def test_failing_case_does_not_stop_others_and_exit_is_nonzero(
    prefect_harness, tmp_path: Path, capsys
) -> None:
    suite = make_suite(
        tmp_path / "s",
        [case_src("bad", fail_times=99), case_src("good1"), case_src("good2", sleep=0.5)],
        retries=1, extra="retry_on_exit_codes = [3]",
    )
    results = tmp_path / "results"

    code = main([str(suite), "--results-root", str(results)])

    assert code == 1
    out = capsys.readouterr().out
    run_dir = next((results / "demo").iterdir())
    bad = load_record(CasePaths(run_dir / "bad").run_record, RunRecord)
    assert bad.exit_code == 3 and bad.attempt == 2  # retried once, then failed for good
    assert "boom in bad" in (bad.reason or "")
    for good in ("good1", "good2"):
        assert load_record(CasePaths(run_dir / good).run_record, RunRecord).exit_code == 0
    # the failures column (each attempt's class), then the reason
    assert re.search(r"bad\s+failed\s+\S+\s+3\s+exit, exit\s+attempt 2: exit code 3", out)


def test_parallelism_bounds_concurrent_cases(prefect_harness, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    cases = [case_src(f"c{i}", sleep=1.5, gate_dir=str(gate)) for i in range(4)]
    suite = make_suite(tmp_path / "s", cases)

    _, summary = run_flow(suite, tmp_path / "results", parallelism=2)

    assert summary.ok
    peaks = [json.loads(CasePaths(Path(summary.run_dir) / f"c{i}").metrics.read_text())["peak"] for i in range(4)]
    assert max(peaks) <= 2


# -------------------------------------------------------------------------- resume


def test_resume_skips_completed_and_reruns_the_rest(prefect_harness, tmp_path: Path) -> None:
    flag = tmp_path / "broken.flag"
    flag.write_text("x")
    suite = make_suite(tmp_path / "s", [case_src("good"), case_src("bad", flag_file=str(flag))])
    results = tmp_path / "results"
    first_state, first = run_flow(suite, results)
    assert first_state.is_failed() and [r.variant for r in first.failed] == ["bad"]
    run_dir = Path(first.run_dir)
    good = CasePaths(run_dir / "good")
    good_record = good.run_record.read_text()

    flag.unlink()
    state, summary = run_flow(suite, results, resume=str(run_dir))

    assert state.is_completed() and summary.ok and summary.run_dir == str(run_dir)
    assert list((results / "demo").iterdir()) == [run_dir]
    assert task_states(state) == {"good": "Skipped", "bad": "Completed", "reports": "Completed"}  # then its report
    assert good.run_record.read_text() == good_record  # not run again
    assert tries_file(good.dir).read_text() == "1"
    bad = CasePaths(run_dir / "bad")
    assert load_record(bad.run_record, RunRecord).attempt == 2
    assert load_record(CasePaths(bad.attempt_dir(1)).run_record, RunRecord).exit_code == 3
    skipped = next(r for r in summary.rows if r.variant == "good")
    assert skipped.reason.startswith("skipped")


def test_resume_with_changed_config_is_refused(prefect_harness, tmp_path: Path, capsys) -> None:
    suite = make_suite(tmp_path / "s")
    results = tmp_path / "results"
    _, summary = run_flow(suite, results)
    manifest_before = SuiteRunPaths(Path(summary.run_dir)).manifest.read_text()
    rewrite_cases(suite, "value=2.0", "value=3.0")

    code = main([str(suite), "--resume", summary.run_dir, "--results-root", str(results)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "case 'b' changed since the run started: value 2.0 -> 3.0;" in err
    assert "Traceback" not in err
    assert SuiteRunPaths(Path(summary.run_dir)).manifest.read_text() == manifest_before


def test_resume_of_a_directory_in_use_is_refused(prefect_harness, tmp_path: Path, capsys) -> None:
    from experiment_infra.files.lock import acquire_lock

    suite = make_suite(tmp_path / "s", [case_src("only")])
    results = tmp_path / "results"
    _, summary = run_flow(suite, results)
    run = SuiteRunPaths(Path(summary.run_dir))
    assert not run.lock.exists()  # released after the run

    with acquire_lock(run.lock, what="test"):  # held by this (live) process
        code = main([str(suite), "--resume", str(run.dir), "--results-root", str(results)])

    err = capsys.readouterr().err
    assert code == 3 and err.startswith("error: ") and "is locked by" in err and str(os.getpid()) in err


# ----------------------------------------------------------------------- bad input


def _one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_inputs_get_one_line_errors(tmp_path: Path, capsys) -> None:
    results = str(tmp_path / "results")
    ok = make_suite(tmp_path / "ok")

    assert "not found" in _one_line_error(capsys, [str(tmp_path / "missing.py")])
    assert "positive integer" in _one_line_error(capsys, [str(ok), "-p", "0"])
    assert "does not exist" in _one_line_error(capsys, [str(ok), "--resume", str(tmp_path / "nope")])
    assert "not a run directory" in _one_line_error(capsys, [str(ok), "--resume", str(tmp_path)])

    no_entry = make_suite(tmp_path / "no_entry", write_entry=False)
    assert "entry point 'entry.py' not found" in _one_line_error(capsys, [str(no_entry)])

    no_cases = make_suite(tmp_path / "no_cases", [])
    assert "no cases" in _one_line_error(capsys, [str(no_cases)])

    dupes = make_suite(tmp_path / "dupes", [case_src("a"), case_src("a")])
    assert "duplicate variant name(s) a" in _one_line_error(capsys, [str(dupes)])

    for bad_name in ("../escape", "a/b", "", "/abs", ".hidden", "-flag"):
        unsafe = make_suite(tmp_path / f"unsafe{abs(hash(bad_name))}", [case_src(bad_name)])
        err = _one_line_error(capsys, [str(unsafe)])
        assert repr(bad_name) in err and ("not a safe directory name" in err or "is empty" in err)

    dict_none = make_suite(tmp_path / "dict_none", [case_src("nulltable", table=None)])
    err = _one_line_error(capsys, [str(dict_none)])
    assert "'table'" in err and "'nulltable'" in err

    missing_names = tmp_path / "bare" / "suite_bare.py"
    missing_names.parent.mkdir()
    missing_names.write_text("cases = []\n")
    err = _one_line_error(capsys, [str(missing_names)])
    assert "declares no suite" in err and "define entry_point, experiment_name at module level" in err

    broken = make_suite(tmp_path / "broken", extra="undefined_name + 1")
    err = _one_line_error(capsys, [str(broken)])
    assert "NameError" in err and "line" in err

    bad_tags = make_suite(tmp_path / "bad_tags", extra='task_tags = "gpu"')
    assert "task_tags must be a list of non-empty strings, got 'gpu'" in _one_line_error(capsys, [str(bad_tags)])

    typo = make_suite(tmp_path / "typo", extra="DemoConfig().copy_with(valeu=1)")
    assert "unknown field(s) valeu" in _one_line_error(capsys, [str(typo), "--results-root", results])
    assert not Path(results).exists()


def test_cli_flags_parse_in_both_command_lines() -> None:
    from experiment_cli.run_suite import build_parser

    args = build_parser().parse_args(["s.py", "--dry-run", "-p", "3", "--resume", "r", "--results-root", "d"])
    assert (args.suite, args.dry_run, args.parallelism, args.resume, args.results_root) == ("s.py", True, 3, "r", "d")
    args = build_parser(with_suite=False).parse_args([])
    assert (args.dry_run, args.parallelism, args.resume, args.results_root) == (False, None, None, "results")


def test_what_run_experiments_cli_is_called_with_is_what_runs(tmp_path: Path, capsys, monkeypatch) -> None:
    """The call under ``__main__`` declares the suite: its arguments win over module-level names."""
    suite = make_suite(tmp_path / "s")
    (suite.parent / "other.py").write_text("")
    rewrite_cases(suite, "entry_point=entry_point,", "entry_point='other.py',")
    assert main([str(suite), "--dry-run", "--results-root", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert f"{suite.parent / 'other.py'} --output_dir=" in out and "/entry.py" not in out
    assert not (tmp_path / "results").exists()


# --------------------------------------------------------- runner (no Prefect needed)

GRANDCHILD = '''
import subprocess, sys, time
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
Path(cfg.flag_file).write_text(str(child.pid))
print("started grandchild", flush=True)
time.sleep(120)
'''


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    suite_path = make_suite(tmp_path / "s", [case_src("slow", flag_file=str(tmp_path / "pid"))])
    cfg = next(p.stem for p in suite_path.parent.glob("demo_cfg_*.py"))
    (suite_path.parent / "entry.py").write_text(GRANDCHILD.format(cfg=cfg))
    suite = load_suite(suite_path)
    case = CasePaths(tmp_path / "run" / "slow")
    lines: list[tuple[str, str]] = []

    outcome = run_case(suite.cases[0], case, suite.entry_point, timeout_seconds=2, on_output=lambda s, l: lines.append((s, l)))

    assert outcome.status is CaseStatus.FAILED and "timed out after 2 s" in outcome.reason
    record = load_record(case.run_record, RunRecord)
    assert record.timed_out and record.exit_code is not None and record.exit_code < 0
    assert ("stdout", "started grandchild") in lines
    grandchild = int((tmp_path / "pid").read_text())
    for _ in range(100):  # reaping by init may lag a moment; this is not a timing assert
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_killed_entry_point_is_a_failure_with_the_signal(tmp_path: Path) -> None:
    suite_path = make_suite(tmp_path / "s", [case_src("victim")])
    (suite_path.parent / "entry.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    suite = load_suite(suite_path)
    case = CasePaths(tmp_path / "run" / "victim")

    outcome = run_case(suite.cases[0], case, suite.entry_point)

    assert outcome.status is CaseStatus.FAILED and "killed by signal SIGKILL" in outcome.reason
    second = run_case(suite.cases[0], case, suite.entry_point)
    assert second.record.attempt == 2 and case.kept_attempts() == [1]
    assert load_record(CasePaths(case.attempt_dir(1)).run_record, RunRecord).exit_code == -9


def test_worth_retrying_only_for_entry_point_failures_the_policy_names() -> None:
    from prefect.states import Failed

    from experiment_infra.processes.failures import RetryPolicy
    from tasks.run_case import CaseFailed, retry_condition

    worth_retrying = retry_condition(RetryPolicy(retries=1, retry_on_exit_codes=(3,)))
    assert worth_retrying(None, None, Failed(data=CaseFailed("exit code 3", "exit", 3)))
    assert not worth_retrying(None, None, Failed(data=CaseFailed("exit code 4", "exit", 4)))
    assert worth_retrying(None, None, Failed(data=CaseFailed("killed", "signal", -15)))
    assert not worth_retrying(None, None, Failed(data=OSError("disk full")))


# ---------------------------------------------------------------- the real commands


@pytest.mark.slow
def test_example_suite_through_the_real_command_line(tmp_path: Path) -> None:
    """A newcomer's first run: a Prefect home that does not exist yet, on a busy machine
    (one CPU-bound process beside it), with Prefect's own start-up limit left unset."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)  # its own temporary server, not the test harness
    env.pop("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", None)
    results = tmp_path / "results"
    burner = subprocess.Popen([PYTHON, "-c", "import time\nend = time.time() + 600\nwhile time.time() < end: pass"])
    try:
        done = subprocess.run(
            [PYTHON, "flows/run_suite.py", "experiments/sweep/suite_sweep.py", "--results-root", str(results)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )
    finally:
        burner.kill()
        burner.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (results / "sweep").iterdir()
    suite = load_suite(REPO_ROOT / "experiments" / "sweep" / "suite_sweep.py")
    for case in suite.cases:
        metrics = json.loads(CasePaths(run_dir / case.variant_name).metrics.read_text())
        assert all(isinstance(v, (int, float)) for v in metrics.values())
        assert metrics["test_mse"] >= 0
    assert f"{len(suite.cases)} completed" in done.stdout


def test_a_large_suites_summary_lists_what_did_not_complete_and_counts_the_rest(tmp_path: Path) -> None:
    from flows.suite_summary import MAX_LISTED, CaseRow, SuiteSummary

    def row(i: int, status: str = "completed") -> CaseRow:
        reason = "" if status == "completed" else "attempt 1: exit code 3"
        return CaseRow(f"case{i:03d}", status, 1.0, 0 if status == "completed" else 3, 1, f"case{i:03d}", reason)

    run_dir = tmp_path / "sweep" / "20260101_120000_abc1234"
    small = SuiteSummary("sweep", str(run_dir), rows=tuple(row(i) for i in range(MAX_LISTED)))
    assert sum(line.startswith("  case") for line in small.format().splitlines()) == MAX_LISTED  # all listed

    rows = [row(i) for i in range(200)]
    rows[17], rows[150] = row(17, "failed"), row(150, "partial")
    text = SuiteSummary("sweep", str(run_dir), rows=tuple(rows)).format().splitlines()
    assert text[0] == "sweep: 200 case(s): 198 completed, 1 failed, 1 partial"
    assert [line.split()[:2] for line in text[3:5]] == [["case017", "failed"], ["case150", "partial"]]
    assert text[5:] == [f"  ... and 198 completed case(s), not listed (every case: {run_dir / 'report.md'})"]
    done = SuiteSummary("sweep", str(run_dir), rows=tuple(row(i) for i in range(200))).format().splitlines()
    assert done[2:] == [f"  all 200 completed case(s), not listed (every case: {run_dir / 'report.md'})"]
