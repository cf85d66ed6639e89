"""Experiment directories ProjectScylla wrote at other times than the fixture's.

- Since 2026-03-28 its runs live under ``in_progress/{tier}/{subtest}/`` while their
  agent works and are moved to ``completed/{tier}/{subtest}/`` before they are judged;
  the tiers' own files are written in ``completed/``; the experiment's stay at its top.
  A run can be in both places (a rerun of a promoted run), and an experiment begun
  before the split and resumed after it has runs at its top too.
- Before 2026-01-08 ``config/experiment.json`` named one judge, ``"judge_model": "..."``.
- Before 2026-01-05 the tiers sat under ``tiers/`` (until 01-02), then each run's files in
  the run directory itself (until 01-04), then one judge's ``judge/judgment.json``: refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from agent_eval_helpers import make_suite
from conftest import PYTHON, REPO_ROOT
from recover_helpers import recover_cli, tree_hash
from test_recover_cache import warm
from test_recover_flow import run_recover
from test_recover_rerun import build, statuses

from experiment_infra.layout import ExperimentPaths, run_label
from experiment_infra.recovery.survey import Selection, survey, survey_experiment
from experiment_infra.reports.rebuild import rebuild_reports
from experiment_infra.status.cache import StatusCache
from experiment_infra.status.prefetch import prefetch

TIERS = ("T0", "T1", "T2", "T3", "T4", "T5", "T6")


def split(exp_dir: Path, tiers: tuple[str, ...]) -> None:
    """Move the tiers into ``completed/``, as ProjectScylla has written them since 2026-03-28."""
    (exp_dir / "in_progress").mkdir()
    (exp_dir / "completed").mkdir()
    for tier in tiers:
        (exp_dir / tier).rename(exp_dir / "completed" / tier)


def to_in_progress(exp_dir: Path, tier: str, subtest: str, number: int, *, unjudge: bool) -> Path:
    """Move a run back to ``in_progress/``: its agent ran, it was never promoted (nor judged)."""
    run = Path("completed", tier, subtest, f"run_{number:02d}")
    dest = exp_dir / "in_progress" / tier / subtest / run.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    (exp_dir / run).rename(dest)
    if unjudge:
        shutil.rmtree(dest / "judge")
        for name in ("run_result.json", "report.json", "report.md"):
            (dest / name).unlink(missing_ok=True)
    return dest


def test_the_split_layout_is_read_where_each_run_is(scylla_copy: Path) -> None:
    split(scylla_copy, TIERS)
    waiting = to_in_progress(scylla_copy, "T1", "01", 1, unjudge=True)
    # Left behind beside it, as ProjectScylla leaves them: none of these is a run.
    (waiting.parent / "config_manifest.json").write_text("{}")
    (waiting.parent / ".failed" / "run_01_attempt_01").mkdir(parents=True)
    # A run promoted, then rerun: a newer attempt in in_progress/ is the one read (ProjectScylla keeps it).
    shutil.copytree(scylla_copy / "completed" / "T2" / "01" / "run_01", scylla_copy / "in_progress" / "T2" / "01" / "run_01")
    before = tree_hash(scylla_copy)

    s = survey(scylla_copy, Selection())
    assert s.expected == 7 and not s.missing_tiers
    assert s.run_counts() == {"completed": 6, "results": 1, "failed": 0, "partial": 0, "missing": 0}
    (work,) = s.planned
    assert work.label == "T1/01/run_01" and work.judge_slots == (1, 2, 3)
    assert work.action.startswith("move it from in_progress/T1/01/run_01/ to completed/, then rerun judges 01, 02, 03")
    assert any("1 run(s) have a directory in more than one of completed/, in_progress/" in n and "T2/01/run_01" in n
               for n in s.notes)

    doc = json.loads(recover_cli(str(scylla_copy), "--json").stdout)
    assert doc["expected"] == 7 and doc["counts"]["needing_work"] == 1 and doc["missing_tiers"] == []
    assert tree_hash(scylla_copy) == before  # surveys only read

    # The classification cache and a dry run's early checks find each run where it is too.
    warm(scylla_copy)
    exp = ExperimentPaths(scylla_copy)
    with prefetch(scylla_copy, processes=2) as early:
        cache = StatusCache.load(exp.status_cache, list(s.config.judge_models), read_only=True, prefetch=early)
        assert cache.verified == {r.label for r in s.runs}
        cached = survey_experiment(exp, Selection(), cache=cache)
    assert [(r.label, r.status, r.judges, r.action) for r in cached.runs] == [(r.label, r.status, r.judges, r.action) for r in s.runs]


def test_runs_written_before_the_split_are_read_at_the_top(scylla_copy: Path) -> None:
    # Begun before 2026-03-28, resumed after: T0..T2 were rerun into the split layout, the
    # rest are where they were written.
    split(scylla_copy, ("T0", "T1", "T2"))
    s = survey(scylla_copy, Selection())
    assert s.expected == 7 and s.run_counts()["completed"] == 7 and not s.missing_tiers


def test_reports_of_a_split_experiment_go_where_projectscylla_writes_them(scylla_copy: Path) -> None:
    split(scylla_copy, TIERS)
    for tier_file in ("result.json", "report.json", "report.md", "summary.md"):
        (scylla_copy / "completed" / "T0" / tier_file).unlink(missing_ok=True)
    rebuild_reports(scylla_copy)
    assert (scylla_copy / "completed" / "T0" / "result.json").is_file()
    assert (scylla_copy / "completed" / "T0" / "00" / "report.json").is_file()
    assert not (scylla_copy / "T0").exists()  # nothing written beside the split
    report = json.loads((scylla_copy / "report.json").read_text())
    links = json.dumps(report)
    assert "completed/T0/report.json" in links  # a link that leads somewhere


def test_a_recovery_judges_a_waiting_run_in_completed(prefect_harness, tmp_path: Path, git_repo: Path) -> None:
    exp = build(tmp_path, git_repo)
    split(exp.dir, ("T0", "T1"))
    waiting = to_in_progress(exp.dir, "T0", "00", 1, unjudge=True)
    failed = to_in_progress(exp.dir, "T1", "01", 2, unjudge=True)
    log = failed / "agent" / "command_log.json"
    log.write_text(log.read_text().replace('"exit_code": 0', '"exit_code": 2'))
    failed_tree = tree_hash(failed)
    assert statuses(ExperimentPaths(exp.dir))[run_label("T1", "01", 2)][0] == "failed"

    state, summary = run_recover(exp.dir, parallelism=4)
    assert state.is_completed(), state.message
    assert summary.exit_code == 0 and summary.planned == 2 and not summary.remaining
    assert all(s == ("completed", ["complete", "complete"]) for s in statuses(ExperimentPaths(exp.dir)).values())
    # Both were moved home first: judged and rerun where ProjectScylla reads runs.
    assert not waiting.exists() and (exp.dir / "completed" / "T0" / "00" / "run_01" / "run_result.json").is_file()
    assert not failed.exists()
    kept = ExperimentPaths(exp.dir).subtest("T1", "01").failed_attempt(2, 1)
    assert kept.parent.parent == exp.dir / "completed" / "T1" / "01" and tree_hash(kept) == failed_tree
    assert (exp.dir / "completed" / "T0" / "result.json").is_file()  # the tier's reports, rebuilt beside its runs


def test_a_config_naming_one_judge_model_is_a_panel_of_one(scylla_copy: Path) -> None:
    config = scylla_copy / "config" / "experiment.json"
    data = json.loads(config.read_text())
    models = data.pop("judge_models")
    config.write_text(json.dumps({**data, "judge_model": models[0], "tiebreaker_model": models[1]}, indent=2))
    doc = json.loads(recover_cli(str(scylla_copy), "--json").stdout)
    assert doc["counts"]["runs"]["completed"] == 7
    assert doc["counts"]["judges"]["complete"] == 7  # one slot per run: judge_01, the one it names
    assert {j["model"] for r in doc["runs"] for j in r["judges"]} == {models[0]}


def test_reports_of_runs_outside_completed_stay_with_them(scylla_copy: Path) -> None:
    # Resumed across the split: T3..T6 are still at the top. Their runs' own reports are
    # rebuilt where they are; nothing makes a second, empty copy of them in completed/.
    split(scylla_copy, ("T0", "T1", "T2"))
    (scylla_copy / "T3" / "01" / "run_01" / "report.json").unlink()
    rebuild_reports(scylla_copy)
    assert (scylla_copy / "T3" / "01" / "run_01" / "report.json").is_file()
    assert not (scylla_copy / "completed" / "T3" / "01" / "run_01").exists()
    s = survey(scylla_copy, Selection())
    assert s.run_counts()["completed"] == 7 and not s.planned and not any("more than one" in n for n in s.notes)
    subtest = json.loads((scylla_copy / "completed" / "T3" / "01" / "report.json").read_text())
    assert [c["report"] for c in subtest["children"]] == ["../../../T3/01/run_01/report.json"]  # a link that leads there


def test_an_empty_completed_directory_does_not_split_an_experiment(scylla_copy: Path) -> None:
    (scylla_copy / "completed").mkdir()  # made by hand, or by ProjectScylla before its first run
    assert not ExperimentPaths(scylla_copy).split
    (scylla_copy / "T0" / "result.json").unlink()
    rebuild_reports(scylla_copy)
    assert (scylla_copy / "T0" / "result.json").is_file() and list((scylla_copy / "completed").iterdir()) == []
    assert survey(scylla_copy, Selection()).run_counts()["completed"] == 7


def test_an_experiment_whose_runs_all_wait_in_in_progress(scylla_copy: Path) -> None:
    # Early in a run: every run's agent ran, none was judged or moved yet.
    (scylla_copy / "in_progress").mkdir()
    (scylla_copy / "completed").mkdir()
    for tier in TIERS:
        (scylla_copy / tier).rename(scylla_copy / "in_progress" / tier)
    s = survey(scylla_copy, Selection())
    assert s.expected == 7 and not s.missing_tiers and s.run_counts()["completed"] == 7
    assert {r.away for r in s.runs} == {f"in_progress/{r.tier}/{r.subtest}/run_01/" for r in s.runs}


def test_a_run_is_never_moved_home_through_a_symlink(scylla_copy: Path, tmp_path: Path) -> None:
    from experiment_infra.errors import LinkedPathError
    from experiment_infra.recovery.act import bring_home

    split(scylla_copy, TIERS)
    to_in_progress(scylla_copy, "T1", "01", 1, unjudge=True)
    elsewhere = tmp_path / "elsewhere"
    (scylla_copy / "completed").rename(elsewhere)
    (scylla_copy / "completed").symlink_to(elsewhere)
    with pytest.raises(LinkedPathError, match="completed is a symlink; nothing is written or moved through one"):
        bring_home(ExperimentPaths(scylla_copy), "T1", "01", 1)
    assert (scylla_copy / "in_progress" / "T1" / "01" / "run_01").is_dir()  # left where it was


def test_this_projects_runner_does_not_resume_a_split_experiment(tmp_path: Path, git_repo: Path) -> None:
    from experiment_infra.agent_eval import AgentEvalError, plan_experiment, start_experiment

    suite = make_suite(tmp_path, git_repo)
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)
    (plan.exp.dir / "completed" / "T0").mkdir(parents=True)  # its runs moved as ProjectScylla moves them
    with pytest.raises(AgentEvalError, match="completed/ and in_progress/ layout.*recover it with flows/recover.py"):
        plan_experiment(suite, results_root=tmp_path / "results", resume=str(plan.exp.dir))


def _flat_runs(exp_dir: Path) -> str:
    """Each run's agent files directly in its directory, no agent/: ProjectScylla before 2026-01-04."""
    for run in sorted(exp_dir.glob("T*/*/run_*")):
        for name in ("output.txt", "command_log.json"):
            (run / "agent" / name).rename(run / name)
        shutil.rmtree(run / "agent")
    return "T0/00/run_01 holds output.txt and command_log.json itself, with no agent/ directory"


def _one_judge_dir(exp_dir: Path) -> str:
    """One judge's judge/judgment.json, no judge_NN/ slots: ProjectScylla on 2026-01-04."""
    for run in sorted(exp_dir.glob("T*/*/run_*")):
        (run / "judge" / "judge_01" / "judgment.json").rename(run / "judge" / "judgment.json")
        for slot in (run / "judge").glob("judge_*"):
            shutil.rmtree(slot)
    return "T0/00/run_01 has one judge's judge/judgment.json and no judge/judge_NN/ slots"


def _tiers_dir(exp_dir: Path) -> str:
    """The tiers under tiers/: ProjectScylla before 2026-01-02."""
    (exp_dir / "tiers").mkdir()
    for tier in TIERS:
        (exp_dir / tier).rename(exp_dir / "tiers" / tier)
    return "its tiers are under tiers/"


@pytest.mark.parametrize("older", [_flat_runs, _one_judge_dir, _tiers_dir], ids=["flat runs", "one judge", "tiers dir"])
def test_an_experiment_in_an_older_layout_is_refused_and_left_alone(scylla_copy: Path, tmp_path: Path, older, capsys) -> None:
    """Read as today's layout, every run of these would look missing or unjudged and a
    recovery would run again what is done: refused instead, naming the layout, changing nothing."""
    from experiment_cli.nightly import main as nightly_main

    said = older(scylla_copy)
    before = tree_hash(scylla_copy)
    for args in (["--dry-run"], [], ["--json"]):
        out = recover_cli(str(scylla_copy), *args)
        assert out.returncode == 2, out.stderr
        text = json.loads(out.stdout)["error"] if args == ["--json"] else out.stderr.strip()
        assert said in text and "nothing here was changed" in text and "Traceback" not in out.stderr
    report = subprocess.run([PYTHON, str(REPO_ROOT / "flows" / "report.py"), str(scylla_copy)],
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 2 and said in report.stderr and "Traceback" not in report.stderr
    assert tree_hash(scylla_copy) == before
    # The nightly walk lists it as skipped, with the reason, and goes on with the others.
    root = tmp_path / "root"
    root.mkdir()
    scylla_copy.rename(root / "older")
    capsys.readouterr()
    assert nightly_main([str(root), "--dry-run"]) == 0
    rows = [x.split(None, 1) for x in capsys.readouterr().out.splitlines()[1:]]  # after the headline
    assert len(rows) == 1 and rows[0][0] == "skipped" and said in rows[0][1]


@pytest.mark.parametrize("older", [_flat_runs, _one_judge_dir, None], ids=["flat runs", "one judge", "today's"])
def test_the_layout_is_told_by_a_run_whose_files_tell_it(scylla_copy: Path, older) -> None:
    """An empty first run (killed before it wrote anything) tells no layout: the next runs do."""
    said = older(scylla_copy) if older else None
    first = scylla_copy / "T0" / "00" / "run_01"
    shutil.rmtree(first)
    (first / "judge" / "judge_01").mkdir(parents=True)  # as a judge rerun begins: a slot, nothing in it
    out = recover_cli(str(scylla_copy), "--dry-run")
    if said is None:
        assert out.returncode == 0 and "T0    00       01   missing" in out.stdout, out.stderr
    else:
        assert out.returncode == 2 and said.replace("T0/00", "T1/01") in out.stderr
