"""Extending a run (``--resume`` with a grown suite) and never running the same case twice
(``--reuse``): real suite runs in a temporary git repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import git
from suite_factory import case_src, make_suite, rewrite_cases, tries_file

from experiment_cli.run_suite import main
from experiment_infra import CasePaths, SuiteRunPaths, load_record
from experiment_infra.records import RunRecord, SuiteManifest
from flows.run_suite import run_suite


def run_flow(suite: Path, results: Path, **kwargs):
    state = run_suite(suite_path=str(suite), results_root=str(results), return_state=True, **kwargs)
    return state, state.result(raise_on_failure=False)


def commit(repo: Path, message: str = "change") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def dry_run(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main([*argv, "--dry-run"]) == 0
    return capsys.readouterr().out


def case_lines(out: str) -> dict[str, str]:
    """``variant -> [note]`` from a dry run's account."""
    found = {}
    for line in out.splitlines():
        if line.startswith("  ") and " -> " in line and not line.startswith("    "):
            name, _, rest = line.strip().partition(" -> ")
            found[name] = rest.partition("  [")[2].rstrip("]")
    return found


# --------------------------------------------------------------------- extend a run


def test_resume_with_an_added_case_runs_it_in_the_same_run_and_keeps_a_removed_one(
    prefect_harness, git_repo: Path, tmp_path: Path, capsys
) -> None:
    suite = make_suite(git_repo / "exp", [case_src("a"), case_src("b", value=2.0)])
    commit(git_repo)
    results = tmp_path / "results"
    _, first = run_flow(suite, results)
    run = SuiteRunPaths(Path(first.run_dir))
    b_record = CasePaths(run.dir / "b").run_record.read_text()
    rewrite_cases(suite, "    ExperimentCase('b', DemoConfig(label='b', value=2.0)),",
                  "    ExperimentCase('c', DemoConfig(label='c', value=5.0)),")
    commit(git_repo, "add c, drop b")

    # The suite changed, so the code did: the addition is recorded on the new code version.
    out = dry_run(capsys, str(suite), "--resume", str(run.dir), "--results-root", str(results), "--allow-code-change")
    assert "would add 1 case(s) to the run: c" in out
    assert case_lines(out) == {"a": "completed: would skip", "c": "added to the run"}
    assert "  b: not in the suite (left on disk, not run)" in out

    state, summary = run_flow(suite, results, resume=str(run.dir), allow_code_change=True)

    assert state.is_completed() and summary.run_dir == str(run.dir)
    assert [r.variant for r in summary.rows] == ["a", "c"] and summary.not_in_suite == ("b",)
    assert "not in the suite (left on disk, not run): b" in summary.format()
    assert json.loads((run.dir / "c" / "metrics.json").read_text())["value"] == 5.0
    assert CasePaths(run.dir / "b").run_record.read_text() == b_record  # left alone
    manifest = load_record(run.manifest, SuiteManifest)
    assert [c.variant_name for c in manifest.cases] == ["a", "b", "c"]
    assert [(a.variants, a.code_version) for a in manifest.additions] == [(["c"], 2)]
    added_on = manifest.code_versions[manifest.additions[0].code_version - 1]
    assert added_on.sha == git(git_repo, "rev-parse", "HEAD")  # the commit it was added on


# ---------------------------------------------------------------- never twice


def test_reuse_across_an_unrelated_commit_a_changed_config_and_a_changed_entry_point(
    prefect_harness, git_repo: Path, tmp_path: Path, capsys
) -> None:
    suite = make_suite(git_repo / "exp", [case_src("a"), case_src("b", value=2.0)])
    commit(git_repo)
    results = tmp_path / "results"
    args = [str(suite), "--reuse", "--results-root", str(results)]
    _, first = run_flow(suite, results)
    first_dir = Path(first.run_dir)
    record = load_record(CasePaths(first_dir / "a").run_record, RunRecord)
    assert record.identity is not None and "exp/entry.py" in record.identity.code.files

    (git_repo / "NOTES.md").write_text("unrelated\n")
    commit(git_repo, "unrelated")
    out = dry_run(capsys, *args)
    assert case_lines(out) == {"a": f"reuse ({first_dir.name}/a)", "b": f"reuse ({first_dir.name}/b)"}

    state, second = run_flow(suite, results, reuse=True)

    assert state.is_completed() and second.run_dir != first.run_dir
    for variant in ("a", "b"):
        new, old = CasePaths(Path(second.run_dir) / variant), CasePaths(first_dir / variant)
        assert load_record(new.run_record, RunRecord).reused_from == str(old.dir)
        assert os.stat(new.metrics).st_ino == os.stat(old.metrics).st_ino  # hard-linked, not recomputed
        assert json.loads(new.config.read_text())["output_dir"] == str(new.dir)
        assert json.loads(old.config.read_text())["output_dir"] == str(old.dir)  # the earlier run untouched
        assert load_record(old.run_record, RunRecord).reused_from is None
        assert not tries_file(new.dir).exists()  # the entry point never ran here
    assert {r.reason for r in second.rows} == {f"reused from {first_dir / 'a'}", f"reused from {first_dir / 'b'}"}

    rewrite_cases(suite, "value=2.0", "value=3.0")
    commit(git_repo, "b gets 3.0")
    out = dry_run(capsys, *args)
    assert case_lines(out)["b"] == "run (config: value 2.0 -> 3.0)"
    assert case_lines(out)["a"].startswith("reuse (")
    _, third = run_flow(suite, results, reuse=True)
    assert load_record(CasePaths(Path(third.run_dir) / "a").run_record, RunRecord).reused_from is not None
    b = CasePaths(Path(third.run_dir) / "b")
    assert load_record(b.run_record, RunRecord).reused_from is None
    assert json.loads(b.metrics.read_text())["value"] == 3.0 and tries_file(b.dir).read_text() == "1"

    entry = suite.parent / "entry.py"
    entry.write_text(entry.read_text() + "\n# a change in the entry point itself\n")
    commit(git_repo, "entry point")
    out = dry_run(capsys, *args)
    assert case_lines(out) == {v: "run (entry point changed: entry.py)" for v in ("a", "b")}
    _, fourth = run_flow(suite, results, reuse=True)
    for variant in ("a", "b"):
        case = CasePaths(Path(fourth.run_dir) / variant)
        assert load_record(case.run_record, RunRecord).reused_from is None and tries_file(case.dir).read_text() == "1"


def test_reuse_is_a_suite_option_and_a_new_case_says_new(
    prefect_harness, git_repo: Path, tmp_path: Path, capsys
) -> None:
    suite = make_suite(git_repo / "exp", [case_src("a")], extra="reuse = True")
    commit(git_repo)
    results = tmp_path / "results"
    out = dry_run(capsys, str(suite), "--results-root", str(results))
    assert case_lines(out) == {"a": "run (new)"}
    _, first = run_flow(suite, results)
    rewrite_cases(suite, "    ExperimentCase('a', DemoConfig(label='a')),",
                  "    ExperimentCase('a', DemoConfig(label='a')),\n    ExperimentCase('z', DemoConfig(label='z')),")
    commit(git_repo, "add z")
    out = dry_run(capsys, str(suite), "--results-root", str(results))
    assert case_lines(out) == {"a": f"reuse ({Path(first.run_dir).name}/a)", "z": "run (new)"}


def test_reusing_a_case_links_its_files_and_never_follows_a_symlink(tmp_path: Path) -> None:
    from experiment_infra.records import write_record
    from experiment_infra.suites.reuse import reuse_case

    source = CasePaths(tmp_path / "old_run" / "a")
    (source.dir / "checkpoints").mkdir(parents=True)
    (source.dir / "checkpoints" / "last.pt").write_text("weights")
    source.metrics.write_text('{"loss": 0.5}')
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the case")
    (source.dir / "link").symlink_to(secret)
    (source.attempts_dir / "attempt_1").mkdir(parents=True)
    write_record(source.run_record, RunRecord(
        variant_name="a", command=["python", "fit.py"], cwd=str(tmp_path), host="h",
        started_at="2026-01-01T00:00:00Z", ended_at="2026-01-01T00:00:01Z", exit_code=0,
    ))
    target = CasePaths(tmp_path / "new_run" / "a")

    outcome = reuse_case(target, {"output_dir": str(target.dir), "x": 1}, source.dir)

    assert outcome.status.value == "completed"
    assert os.stat(target.dir / "checkpoints" / "last.pt").st_ino == os.stat(source.dir / "checkpoints" / "last.pt").st_ino
    assert (target.dir / "link").is_symlink() and os.readlink(target.dir / "link") == str(secret)
    assert not target.attempts_dir.exists()  # the earlier run's attempt history stays with it
    assert json.loads(target.config.read_text()) == {"output_dir": str(target.dir), "x": 1}
    assert load_record(target.run_record, RunRecord).reused_from == str(source.dir)
    assert load_record(source.run_record, RunRecord).reused_from is None


def test_a_reuse_dry_run_imports_no_prefect_and_writes_nothing(tmp_path: Path) -> None:
    import subprocess

    from conftest import PYTHON, REPO_ROOT

    suite = make_suite(tmp_path / "exp", [case_src("a")])
    home = tmp_path / "prefect-home-never-created"
    env = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [PYTHON, "-X", "importtime", str(REPO_ROOT / "flows" / "run_suite.py"), str(suite), "--dry-run", "--reuse",
         "--results-root", str(tmp_path / "results")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert case_lines(done.stdout) == {"a": "run (new)"}
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "prefect" not in imported
    assert not home.exists() and not (tmp_path / "results").exists()
