"""Every attempt names the code it ran; untracked files the experiment uses count; a resume,
recovery or nightly walk on other code is refused (or skipped) unless it is allowed.

These run without Prefect: the refusals happen before any server starts, and a case's
attempt is run by the core's runner directly.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import git
from suite_factory import case_src, make_suite

from experiment_cli.run_suite import main
from experiment_infra.provenance.code_versions import CodeChanged
from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord, SuiteManifest, load_record
from experiment_infra.recovery.outcome import check_recovery
from experiment_infra.recovery.select import Selection
from experiment_infra.recovery.walk import survey_root
from experiment_infra.running.runner import run_case
from experiment_infra.suites.suite import load_suite, plan_suite, start_run


def _commit(repo: Path, message: str = "suite") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _suite_in(repo: Path, **first: object) -> Path:
    return make_suite(repo / "exp", [case_src("a", **first), case_src("b", value=2.0)])


def _started(suite_file: Path, results: Path, **plan: object) -> SuiteRunPaths:
    """A run directory made as run_suite makes it (manifest, patch), no case run yet."""
    p = plan_suite(load_suite(suite_file), results, **plan)
    start_run(p)
    return p.run


def test_default_retries_is_two_and_zero_means_none(tmp_path: Path) -> None:
    suite = make_suite(tmp_path / "s")
    assert load_suite(suite).retries == 0  # the factory writes retries = 0: kept as written
    suite.write_text(suite.read_text().replace("retries = 0\n", ""))
    assert load_suite(suite).retries == 2  # for transient failures only (failures.RetryPolicy)


def test_untracked_files_the_experiment_uses_make_it_dirty_and_are_named(git_repo: Path, tmp_path: Path, capsys) -> None:
    suite = _suite_in(git_repo)
    (git_repo / "exp" / "notes.py").write_text("unused = 1\n")  # untracked, but nothing imports it
    head = git(git_repo, "rev-parse", "--short=7", "HEAD")
    cfg = next(p.name for p in suite.parent.glob("demo_cfg_*.py"))

    code = main([str(suite), "--dry-run", "--results-root", str(tmp_path / "results")])

    out = capsys.readouterr().out
    assert code == 0
    assert f"_{head}-dirty" in out
    warning = next(line for line in out.splitlines() if line.startswith("warning:"))
    for name in (f"exp/{cfg}", "exp/entry.py", "exp/suite_demo.py"):
        assert name in warning
    assert "notes.py" not in warning

    run = _started(suite, tmp_path / "results")
    manifest = load_record(run.manifest, SuiteManifest)
    assert manifest.git.dirty and manifest.git.untracked == sorted([f"exp/{cfg}", "exp/entry.py", "exp/suite_demo.py"])
    patch = run.patch.read_text()
    assert "+++ b/exp/entry.py" in patch and f"+++ b/exp/{cfg}" in patch and "notes.py" not in patch
    # The patch restores the untracked files whole on a clean checkout of the commit.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(git_repo), str(clone))
    git(clone, "apply", str(run.patch))
    assert (clone / "exp" / "entry.py").read_text() == (git_repo / "exp" / "entry.py").read_text()


def test_committed_experiment_is_clean_and_an_unused_untracked_file_does_not_count(git_repo: Path, tmp_path: Path) -> None:
    suite = _suite_in(git_repo)
    sha = _commit(git_repo)
    (git_repo / "exp" / "scratch.py").write_text("x = 1\n")  # untracked, unused

    run = _started(suite, tmp_path / "results")

    assert run.dir.name.endswith(sha[:7]) and not run.patch.exists()
    manifest = load_record(run.manifest, SuiteManifest)
    assert [v.sha for v in manifest.code_versions] == [sha] and not manifest.git.dirty


def test_each_attempt_names_its_code_with_a_patch_of_its_own(git_repo: Path, tmp_path: Path, monkeypatch) -> None:
    suite_file = _suite_in(git_repo, fail_times=1)  # its first attempt fails, the second completes
    sha = _commit(git_repo)
    entry = git_repo / "exp" / "entry.py"
    entry.write_text(entry.read_text() + "\n# a local fix\n")  # tracked, modified
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURMD_NODENAME", "node07")
    plan = plan_suite(load_suite(suite_file), tmp_path / "results")
    start_run(plan)
    p = plan.cases[0]

    outcome = run_case(p.case, p.paths, plan.suite.entry_point, code=p.code)

    assert outcome.status.value == "failed"
    record = load_record(p.paths.run_record, RunRecord)
    assert record.code is not None
    assert (record.code.sha, record.code.dirty, record.code.label) == (sha, True, sha[:7] + "-dirty")
    assert (record.code.slurm_job_id, record.code.slurm_node) == ("4242", "node07")
    assert record.code.python and record.code.python_version
    assert "# a local fix" in (p.paths.dir / record.code.patch_file).read_text()

    assert run_case(p.case, p.paths, plan.suite.entry_point, code=p.code).status.value == "completed"
    kept = p.paths.attempt_dir(1)
    assert "# a local fix" in (kept / "code.patch").read_text()  # the first attempt's patch, kept with its record
    assert load_record(kept / "run_record.json", RunRecord).code.sha == sha


def test_resume_on_other_code_is_refused_then_allowed_and_recorded(git_repo: Path, tmp_path: Path, capsys) -> None:
    suite = _suite_in(git_repo)
    first = _commit(git_repo)
    results = tmp_path / "results"
    run = _started(suite, results)
    manifest_before = run.manifest.read_bytes()
    entry = git_repo / "exp" / "entry.py"
    entry.write_text(entry.read_text() + "\n# fixed\n")
    second = _commit(git_repo, "fix")

    code = main([str(suite), "--resume", str(run.dir), "--results-root", str(results)])

    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: --resume ")
    assert first[:7] in err and second[:7] in err and "--allow-code-change" in err
    assert run.manifest.read_bytes() == manifest_before  # nothing written
    with pytest.raises(CodeChanged):  # recover refuses the same way (before Prefect starts)
        check_recovery(str(run.dir), Selection(), None)
    from experiment_infra.recovery.survey import survey

    assert any("--allow-code-change" in n for n in survey(str(run.dir), Selection()).notes)  # recover --dry-run says so
    (item,) = survey_root(results)  # the nightly walk lists it as skipped, with the reason
    assert item.skipped is not None and "--allow-code-change" in item.skipped and second[:7] in item.skipped

    assert main([str(suite), "--resume", str(run.dir), "--allow-code-change", "--dry-run"]) == 0
    assert "code changed: would run on " + second[:7] in capsys.readouterr().out
    plan = plan_suite(load_suite(suite), results, run.dir, allow_code_change=True)
    start_run(plan)
    manifest = load_record(run.manifest, SuiteManifest)
    assert [v.sha for v in manifest.code_versions] == [first, second] and manifest.git.sha == first
    assert plan_suite(load_suite(suite), results, run.dir).code_check.new_version is None  # now the same code
    (item,) = survey_root(results)
    assert item.skipped is None


def test_resume_with_other_uncommitted_changes_is_refused(git_repo: Path, tmp_path: Path) -> None:
    suite = _suite_in(git_repo)
    _commit(git_repo)
    entry = git_repo / "exp" / "entry.py"
    entry.write_text(entry.read_text() + "\n# change one\n")
    run = _started(suite, tmp_path / "results")
    assert run.dir.name.endswith("-dirty")
    plan_suite(load_suite(suite), tmp_path / "results", run.dir)  # the same dirty tree: accepted
    entry.write_text(entry.read_text() + "\n# change two\n")

    with pytest.raises(CodeChanged, match="other uncommitted changes.*apply git.patch"):
        plan_suite(load_suite(suite), tmp_path / "results", run.dir)


def test_summary_shows_the_code_column_only_when_cases_ran_on_more_than_one() -> None:
    from flows.suite_summary import CaseRow, SuiteSummary

    def row(variant: str, code: str) -> CaseRow:
        return CaseRow(variant, "completed", 1.0, 0, 1, f"/r/{variant}", "", code)

    one = SuiteSummary("x", "/r", rows=(row("a", "abc1234"), row("b", "abc1234")))
    two = SuiteSummary("x", "/r", rows=(row("a", "abc1234"), row("b", "def5678-dirty")))
    assert "code" not in one.format().splitlines()[2]
    lines = two.format().splitlines()
    assert "code" in lines[2] and "abc1234" in lines[3] and "def5678-dirty" in lines[4]


def test_report_names_the_code_of_each_case_once_the_run_has_two(git_repo: Path, tmp_path: Path) -> None:
    from experiment_infra.reports.standard import build_suite_reports

    def report(run: SuiteRunPaths) -> list[str]:
        return build_suite_reports(run.dir).texts[run.report_md].splitlines()

    suite = _suite_in(git_repo)
    first = _commit(git_repo)
    results = tmp_path / "results"
    plan = plan_suite(load_suite(suite), results)
    start_run(plan)
    a = plan.cases[0]
    run_case(a.case, a.paths, plan.suite.entry_point, code=a.code)
    assert not any("Code" in line for line in report(plan.run))  # one code version: no column
    entry = git_repo / "exp" / "entry.py"
    entry.write_text(entry.read_text() + "\n# fixed\n")
    second = _commit(git_repo, "fix")
    again = plan_suite(load_suite(suite), results, plan.run.dir, allow_code_change=True)
    start_run(again)
    b = again.cases[1]
    run_case(b.case, b.paths, again.suite.entry_point, code=b.code)

    lines = report(plan.run)
    assert any(line.startswith("**Code versions**") and first[:7] in line and second[:7] in line for line in lines)
    header = next(line for line in lines if line.startswith("| Variant"))
    assert "| Code |" in header
    row_a = next(line for line in lines if line.startswith("| [a]"))
    row_b = next(line for line in lines if line.startswith("| [b]"))
    assert first[:7] in row_a and second[:7] in row_b


def test_resume_through_the_flow_with_allow_code_change(prefect_harness, git_repo: Path, tmp_path: Path) -> None:
    """The flow parameter: the rerun case names the new code, the skipped one the old, and the
    summary shows which ran on which."""
    from flows.run_suite import run_suite

    flag = tmp_path / "broken.flag"
    flag.write_text("x")
    suite = make_suite(git_repo / "exp", [case_src("good"), case_src("bad", flag_file=str(flag))])
    first = _commit(git_repo)
    results = tmp_path / "results"
    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True)
    run_dir = Path(state.result(raise_on_failure=False).run_dir)
    flag.unlink()
    entry = git_repo / "exp" / "entry.py"
    entry.write_text(entry.read_text() + "\n# fixed\n")
    second = _commit(git_repo, "fix")

    state = run_suite(
        suite_path=str(suite), results_root=str(results), resume=str(run_dir), allow_code_change=True, return_state=True
    )

    summary = state.result(raise_on_failure=False)
    assert state.is_completed() and summary.ok
    assert {r.variant: r.code for r in summary.rows} == {"good": first[:7], "bad": second[:7]}
    assert "code" in summary.format().splitlines()[2]
    run = SuiteRunPaths(run_dir)
    assert [v.sha for v in load_record(run.manifest, SuiteManifest).code_versions] == [first, second]
