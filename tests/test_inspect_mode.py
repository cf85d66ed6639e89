"""Inspect mode for real: Inspect AI's mock model, flat .eval logs, status from Inspect's reader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, git
from prerequisites import require_module

from experiment_infra.layout import parse_inspect_log_name
from experiment_infra.status.rules import CaseStatus
from experiment_infra.status.inspect import classify_inspect_case
from experiment_infra.suites.suite import load_suite
from flows.run_suite import run_suite


@pytest.fixture(autouse=True)
def _inspect_ai_installed() -> None:
    require_module("inspect_ai", "needs Inspect AI, an optional extra: pip install -e '.[inspect]' (`make setup` installs it)")


DEMO = REPO_ROOT / "experiments" / "inspect_demo"

# An entry point that fails in each of the ways recovery must tell apart.
BROKEN = '''
import os, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from config import QuizConfig
from eval_quiz import build
from experiment_infra.running.inspect_mode import run_inspect_case
from inspect_ai.solver import solver

config = QuizConfig.from_cli()
if config.model == "crash-before-inspect":
    sys.exit("no model today")

@solver
def die():
    async def solve(state, generate):
        if config.model == "die":
            os._exit(9)  # the process dies with the log open: status "started"
        raise RuntimeError("solver exploded")  # Inspect records status "error"
    return solve

task, model = build(config.copy_with(model="mockllm/model"))
if config.model == "fail-after-log":  # Inspect logs success, then the entry point fails
    run_inspect_case(task, config, model=model, max_samples=1)
    sys.exit("log written, then the entry point failed")
task.solver = die()
log = run_inspect_case(task, config, model="mockllm/model")
sys.exit(0 if log.status == "success" else 1)
'''


def demo_repo(root: Path, extra_cases: str = "") -> tuple[Path, str]:
    """The inspect demo copied into a fresh git repository; returns (suite file, git sha)."""
    exp = root / "experiments" / "inspect_demo"
    shutil.copytree(DEMO, exp, ignore=shutil.ignore_patterns("__pycache__"))
    (exp / "broken.py").write_text(BROKEN)
    if extra_cases:
        suite = exp / "suite_inspect_demo.py"
        suite.write_text(suite.read_text().replace("\n]\n", f"\n{extra_cases}]\n", 1))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "demo")
    return exp / "suite_inspect_demo.py", git(root, "rev-parse", "HEAD")


def test_inspect_suite_writes_flat_eval_logs_with_config_inside(prefect_harness, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log

    suite_file, sha = demo_repo(tmp_path / "repo")
    results = tmp_path / "results"
    state = run_suite(suite_path=str(suite_file), results_root=str(results), parallelism=2, return_state=True)
    assert state.is_completed(), state.message

    log_dir = results / "inspect_demo"
    files = sorted(p.name for p in log_dir.iterdir())
    assert len(files) == 3 and all(f.endswith(".eval") for f in files)  # flat: no run dir, no config.json
    suite = load_suite(suite_file)
    for case in suite.cases:
        [name] = [f for f in files if parse_inspect_log_name(f)[2] == case.variant_name]
        timestamp, git7, variant, log_id = parse_inspect_log_name(name)
        assert git7 == sha[:7] and variant == case.variant_name and log_id
        log = read_eval_log(str(log_dir / name), header_only=True)
        assert log.status == "success"
        expected = case.config.with_output_dir(str(log_dir)).model_dump(mode="json")
        assert log.eval.metadata["config"] == expected
        assert log.eval.metadata["git_sha"] == sha and log.eval.metadata["variant_name"] == case.variant_name
        assert classify_inspect_case(log_dir, case.variant_name).status is CaseStatus.COMPLETED
    accuracy = {
        parse_inspect_log_name(f)[2]: read_eval_log(str(log_dir / f)).results.scores[0].metrics["accuracy"].value
        for f in files
    }
    assert accuracy["perfect"] == 1.0 and accuracy["hopeless"] == 0.0


def test_inspect_statuses_error_started_and_no_log(prefect_harness, tmp_path: Path) -> None:
    cases = (
        '    ExperimentCase("explodes", base.copy_with(model="explode")),\n'
        '    ExperimentCase("dies", base.copy_with(model="die")),\n'
        '    ExperimentCase("nolog", base.copy_with(model="crash-before-inspect")),\n'
    )
    suite_file, _ = demo_repo(tmp_path / "repo", extra_cases=cases)
    suite_file.write_text(
        suite_file.read_text()
        .replace('entry_point = "eval_quiz.py"', 'entry_point = "broken.py"')
        .replace("base = QuizConfig()", "retries = 0\nbase = QuizConfig()")
    )
    # Keep only the broken cases: the healthy ones are covered above.
    text = suite_file.read_text()
    for healthy in ('"perfect"', '"sloppy"', '"hopeless"'):
        text = "\n".join(line for line in text.splitlines() if healthy not in line) + "\n"
    suite_file.write_text(text)
    git(suite_file.parents[2], "commit", "-qam", "broken cases")

    results = tmp_path / "results"
    state = run_suite(suite_path=str(suite_file), results_root=str(results), return_state=True)
    assert state.is_failed()
    log_dir = results / "inspect_demo"
    explodes = classify_inspect_case(log_dir, "explodes")
    dies = classify_inspect_case(log_dir, "dies")
    nolog = classify_inspect_case(log_dir, "nolog")
    assert explodes.status is CaseStatus.FAILED and "error" in explodes.reason
    assert dies.status is CaseStatus.PARTIAL and "started" in dies.reason
    assert nolog.status is CaseStatus.MISSING
    summary = state.result(raise_on_failure=False)
    reasons = {r.variant: r.reason for r in summary.rows}
    assert "no .eval log written" in reasons["nolog"] and "no model today" in reasons["nolog"]


def test_a_failed_inspect_case_reads_as_failed_to_recovery(prefect_harness, tmp_path: Path) -> None:
    from experiment_infra.layout import InspectCasePaths
    from experiment_infra.records import InspectRunRecord, load_record
    from experiment_infra.recovery.survey import Selection, survey

    suite_file, _ = demo_repo(tmp_path / "repo", extra_cases='    ExperimentCase("late", base.copy_with(model="fail-after-log")),\n')
    text = suite_file.read_text().replace('entry_point = "eval_quiz.py"', 'entry_point = "broken.py"')
    text = text.replace("base = QuizConfig()", "retries = 0\nbase = QuizConfig()")
    for healthy in ('"perfect"', '"sloppy"', '"hopeless"'):
        text = "\n".join(line for line in text.splitlines() if healthy not in line) + "\n"
    suite_file.write_text(text)
    git(suite_file.parents[2], "commit", "-qam", "a case that fails after its log")

    results = tmp_path / "results"
    state = run_suite(suite_path=str(suite_file), results_root=str(results), return_state=True)
    assert state.is_failed()
    [row] = state.result(raise_on_failure=False).rows
    assert row.status == "failed" and "then failed" in row.reason

    # Written down beside the flat logs (the log directory holds .eval logs only) ...
    log_dir = results / "inspect_demo"
    assert all(p.suffix == ".eval" for p in log_dir.iterdir())
    record = load_record(InspectCasePaths.of(log_dir, "late").run_record, InspectRunRecord)
    assert record.exit_code == 1 and record.eval_log and (log_dir / record.eval_log).is_file()
    # ... so recovery reads the same case as failed (it read the success log: completed).
    [case] = survey(log_dir, Selection()).cases
    assert (case.status.value, case.needs_work) == ("failed", True)
    assert "then failed" in case.reason and "log written, then the entry point failed" in case.reason


def test_inspect_dry_run_lists_patterns_and_writes_nothing(tmp_path: Path) -> None:
    suite_file, sha = demo_repo(tmp_path / "repo")
    results = tmp_path / "results"
    env = {**__import__("os").environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    out = subprocess.run(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), str(suite_file), "--dry-run", "--results-root", str(results)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    for variant in ("perfect", "sloppy", "hopeless"):
        assert f"{{timestamp}}_{sha[:7]}_{variant}_{{id}}.eval" in out.stdout
    assert not results.exists()


def test_inspect_resume_is_refused(tmp_path: Path) -> None:
    suite_file, _ = demo_repo(tmp_path / "repo")
    out = subprocess.run(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), str(suite_file), "--resume", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: --resume is not available in inspect mode")
    assert "Traceback" not in out.stderr


def test_core_imports_without_inspect_ai(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['inspect_ai'] = None\n"
        "import experiment_infra, experiment_infra.running.inspect_mode as im\n"
        "from experiment_infra.status.inspect import classify_inspect_case\n"
        "try:\n    im.require_inspect()\nexcept im.InspectNotInstalled as e:\n    print('refused:', e)\n"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "refused: inspect mode needs Inspect AI" in out.stdout


def test_recovery_reruns_missing_and_failed_variants_and_keeps_old_logs(prefect_harness, tmp_path: Path) -> None:
    from flows.recover import recover

    from experiment_infra.recovery.survey import Selection, survey

    suite_file, _ = demo_repo(tmp_path / "repo")
    results = tmp_path / "results"
    assert run_suite(suite_path=str(suite_file), results_root=str(results), return_state=True).is_completed()
    log_dir = results / "inspect_demo"
    [hopeless] = [p for p in log_dir.iterdir() if "_hopeless_" in p.name]
    hopeless.unlink()  # lost: recovery must see it as missing (the suite file still lists it)
    # "sloppy" breaks: a newer log of it in status error
    broken = suite_file.parent / "broken.py"
    kept = {p.name: p.read_bytes() for p in log_dir.iterdir()}
    env_suite = suite_file.read_text()
    suite_file.write_text(env_suite.replace('entry_point = "eval_quiz.py"', 'entry_point = "broken.py"')
                          .replace("base.copy_with(error_rate=0.5)", 'base.copy_with(error_rate=0.5, model="explode")')
                          .replace("base = QuizConfig()", "retries = 0\nbase = QuizConfig()"))
    run_suite(suite_path=str(suite_file), results_root=str(results), variants=["sloppy"], return_state=True)
    assert broken.exists()
    suite_file.write_text(env_suite)  # fixed again

    before = survey(log_dir, Selection(), load_suite=True)  # the suite file lists the variant with no log
    statuses = {c.variant: c.status.value for c in before.cases}
    assert statuses == {"perfect": "completed", "sloppy": "failed", "hopeless": "missing"}

    state = recover(experiment_dir=str(log_dir), return_state=True)
    assert state.is_completed(), state.message
    after = survey(log_dir, Selection(), load_suite=True)
    assert {c.variant: c.status.value for c in after.cases} == dict.fromkeys(statuses, "completed")
    for name, data in kept.items():  # nothing written over or deleted
        assert (log_dir / name).read_bytes() == data
    assert len([p for p in log_dir.iterdir() if "_sloppy_" in p.name]) == 3  # ok, error, ok again


def test_an_inspect_run_holds_the_experiments_lock(prefect_harness, tmp_path: Path) -> None:
    """One runner per inspect experiment, as in the other modes: a second is refused (exit 3)."""
    from experiment_cli.run_suite import main

    from experiment_infra.layout import inspect_lock
    from experiment_infra.files.lock import LockHeld, acquire_lock

    suite_file, _ = demo_repo(tmp_path / "repo")
    results = tmp_path / "results"
    log_dir = results / "inspect_demo"
    inspect_lock(log_dir).parent.mkdir(parents=True)
    with acquire_lock(inspect_lock(log_dir), what="a run already going on"):
        state = run_suite(suite_path=str(suite_file), results_root=str(results), return_state=True)
        assert state.is_failed() and isinstance(state.result(raise_on_failure=False), LockHeld)
        assert main([str(suite_file), "--results-root", str(results)]) == 3
    assert not log_dir.exists() or not list(log_dir.iterdir())  # nothing ran
    assert run_suite(suite_path=str(suite_file), results_root=str(results), variants=["perfect"], return_state=True).is_completed()
    assert not inspect_lock(log_dir).exists()  # released at the end


def test_an_inspect_run_stops_the_attempt_a_killed_runner_left_running(prefect_harness, tmp_path: Path) -> None:
    import socket

    from experiment_infra.layout import InspectCasePaths
    from experiment_infra.processes.process import proc_start
    from experiment_infra.records import InspectRunRecord, load_record, utc_now_iso, write_record

    suite_file, _ = demo_repo(tmp_path / "repo")
    results = tmp_path / "results"
    log_dir = results / "inspect_demo"
    # The entry point of an earlier attempt, still running: its runner was killed.
    argv = [PYTHON, "-c", "import time; time.sleep(120)"]
    leftover = subprocess.Popen(argv, start_new_session=True)
    try:
        paths = InspectCasePaths.of(log_dir, "perfect")
        paths.dir.mkdir(parents=True)
        write_record(paths.run_record, InspectRunRecord(
            variant_name="perfect", command=argv, cwd=str(tmp_path), host=socket.gethostname(), pid=leftover.pid,
            pid_start=proc_start(leftover.pid), started_at=utc_now_iso(),
        ))
        state = run_suite(suite_path=str(suite_file), results_root=str(results), variants=["perfect"], return_state=True)
        assert state.is_completed(), state.message
        assert leftover.wait(timeout=30) < 0  # stopped by a signal before the new attempt started
    finally:
        leftover.kill()
        leftover.wait()
    assert load_record(paths.run_record, InspectRunRecord).attempt == 2
    kept = load_record(paths.dir / ".attempts" / "attempt_1.json", InspectRunRecord)
    assert kept.pid == leftover.pid and kept.ended_at is None  # the leftover's record kept, as it was


def test_a_dry_run_of_inspect_logs_runs_no_suite_file_they_name(prefect_harness, tmp_path: Path) -> None:
    """The suite file a log's metadata names is data: recover --dry-run and --json do not run it."""
    import json

    from recover_helpers import recover_cli

    suite_file, _ = demo_repo(tmp_path / "repo")
    results = tmp_path / "results"
    assert run_suite(suite_path=str(suite_file), results_root=str(results), variants=["perfect"], return_state=True).is_completed()
    log_dir = results / "inspect_demo"
    marker = tmp_path / "suite-file-ran"
    # The file the log names now does something when imported.
    suite_file.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n" + suite_file.read_text())

    dry = recover_cli(str(log_dir), "--dry-run", "-v")
    assert dry.returncode == 0, dry.stderr
    assert "perfect" in dry.stdout and "is not run by a dry run" in dry.stdout
    as_json = recover_cli(str(log_dir), "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert [c["variant"] for c in json.loads(as_json.stdout)["cases"]] == ["perfect"]
    assert not marker.exists()
