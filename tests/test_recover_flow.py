"""The ``recover`` flow on a real Prefect server: regeneration equal to the originals, only
selected runs touched, the lock, the summary artifact, standard-mode run directories."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

from conftest import FIXTURE, PYTHON, git
from recover_helpers import edit_json, recover_cli, run_paths, tree_hash
from suite_factory import case_src, make_suite

from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
from experiment_infra.files.lock import acquire_lock
from experiment_cli.recover import main
from experiment_infra.records import LockInfo

PATH_FIELDS = {"workspace_path", "logs_path", "command_log_path"}
ALL_RUNS = [("T0", "00", 1)] + [(f"T{i}", "01", 1) for i in range(1, 7)]


def run_recover(directory: Path, **params):
    from flows.recover import recover

    state = recover(experiment_dir=str(directory), return_state=True, **params)
    return state, state.result(raise_on_failure=False)


def task_run_names(flow_state) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id]))
        )
    return {r.name: r.state.name for r in runs}


def recovery_table(flow_state) -> list[dict]:
    """The rows of the recovery's table artifact, read back from the server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_state.state_details.flow_run_id])))
    (table,) = [a for a in artifacts if a.key and a.key.startswith("recover-")]
    return json.loads(table.data) if isinstance(table.data, str) else table.data


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_regeneration_through_the_flow_equals_the_originals(prefect_harness, scylla_copy: Path) -> None:
    for run in ALL_RUNS:
        p = run_paths(scylla_copy, *run)
        for f in (p.agent_result, p.consensus, p.run_result):
            f.unlink()
    state, summary = run_recover(scylla_copy)
    assert state.is_completed(), state.message
    assert summary.planned == 7 and not summary.not_done and summary.exit_code == 0
    assert summary.before["results"] == 7 and summary.after["completed"] == 7
    names = task_run_names(state)
    # One regeneration task run per tier (pure JSON work, in batches), then per tier one for
    # its reports, then one for the experiment's.
    tiers = {t for t, _, _ in ALL_RUNS}
    assert sorted(n for n in names if not n.startswith("report")) == sorted(f"regenerate {t}" for t in tiers)
    assert sorted(n for n in names if n.startswith("report")) == sorted(["reports", *(f"reports {t}" for t in tiers)])
    rows = {r["item"]: r for r in recovery_table(state)}  # the artifact still lists every run's outcome
    for t, s, n in ALL_RUNS:
        row = rows[f"{t}/{s}/run_{n:02d}"]
        assert (row["before"], row["after"], row["reason"]) == ("results", "completed", "done: regenerate result files")
    assert ExperimentPaths(scylla_copy).report_json.is_file()
    compared = 0
    for run in ALL_RUNS:
        new, old = run_paths(scylla_copy, *run), run_paths(FIXTURE, *run)
        for rel in ("agent/result.json", "judge/result.json", "run_result.json"):
            original, regenerated = load(old.dir / rel), load(new.dir / rel)
            for key, value in original.items():
                if key in PATH_FIELDS:
                    assert regenerated[key] == str((new.dir / Path(value).relative_to(old_root(value, old))).resolve())
                else:
                    assert regenerated[key] == value, (run, rel, key)
                compared += 1
        assert load(new.run_result)["token_stats"].keys() >= {"cache_creation_tokens", "cache_read_tokens"}
    assert compared > 100


def old_root(value: str, old) -> str:
    # The fixture's absolute paths point at the machine it was made on: .../T0/00/run_01/...
    marker = "/".join(old.dir.parts[-3:])
    return value[: value.index(marker) + len(marker)]


def test_only_selected_runs_change(prefect_harness, scylla_copy: Path) -> None:
    for run in (("T1", "01", 1), ("T2", "01", 1), ("T3", "01", 1)):
        run_paths(scylla_copy, *run).run_result.unlink()
    t2 = run_paths(scylla_copy, "T2", "01", 1).dir
    before_outside = tree_hash(scylla_copy, skip=t2, ignore_reports=True)
    state, summary = run_recover(scylla_copy, tiers=["T2"])
    assert state.is_completed() and summary.planned == 1
    assert run_paths(scylla_copy, "T2", "01", 1).run_result.is_file()
    after_outside = tree_hash(scylla_copy, skip=t2, ignore_reports=True)
    assert after_outside == before_outside  # T1 and T3 still lack run_result.json; nothing else moved
    assert not run_paths(scylla_copy, "T1", "01", 1).run_result.exists()
    assert not ExperimentPaths(scylla_copy).lock.exists()


def test_corrupt_result_file_is_kept_aside_when_regenerated(prefect_harness, scylla_copy: Path) -> None:
    p = run_paths(scylla_copy)
    p.run_result.write_text('{"run_number": 1, "exit_code": "zero"}')
    state, summary = run_recover(scylla_copy, statuses=["results"])
    assert state.is_completed() and summary.after["completed"] == 1  # counts cover the selected runs
    kept = p.dir / ".failed" / "run_result.json_attempt_1"
    assert kept.read_text() == '{"run_number": 1, "exit_code": "zero"}'
    assert load(p.run_result)["judge_score"] == load(run_paths(FIXTURE).run_result)["judge_score"]


def test_summary_artifact_and_exit_code_when_work_is_left(prefect_harness, scylla_copy: Path) -> None:
    from prefect.client.orchestration import get_client

    p = run_paths(scylla_copy)
    p.run_result.unlink()
    for slot in (1, 2, 3):
        edit_json(p.judge_slot(slot).judgment, is_valid=False)  # nothing valid to rebuild from
    run_paths(scylla_copy, "T2", "01", 1).agent_result.unlink()
    state, summary = run_recover(scylla_copy, agents_only=True)
    # The one regeneration asked for succeeded, but a selected run is not complete afterwards.
    assert state.is_failed() and summary.exit_code == 1 and not summary.not_done
    assert summary.remaining == (("T1/01/run_01", "results", summary.remaining[0][2]),)
    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()  # newest first
    table = next(a for a in artifact if a.key and a.key.startswith("recover-") and a.flow_run_id == state.state_details.flow_run_id)
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    items = {r["item"]: r for r in rows}
    assert items["runs results"]["before"] == 2 and items["runs results"]["after"] == 1
    assert items["runs completed"]["after"] == 6
    assert "run_result.json missing" in items["T1/01/run_01"]["reason"]


def test_command_line_exit_codes(prefect_harness, scylla_copy: Path, capsys) -> None:
    run_paths(scylla_copy).agent_result.unlink()
    assert main([str(scylla_copy)]) == 0
    out = capsys.readouterr().out
    assert "recovered" in out and "1 of 1 planned run(s) done" in out
    assert main([str(scylla_copy)]) == 0  # nothing left to do
    assert "nothing to do" in capsys.readouterr().out


def test_held_lock_stops_a_second_recovery(prefect_harness, scylla_copy: Path, capsys) -> None:
    run_paths(scylla_copy).run_result.unlink()
    before = tree_hash(scylla_copy)
    lock = ExperimentPaths(scylla_copy).lock
    with acquire_lock(lock, what=str(scylla_copy), command=["first", "recovery"]):
        code = main([str(scylla_copy)])
        err = capsys.readouterr().err
        assert code == 3
        assert err.startswith("error: ") and "pid " in err and socket.gethostname() in err and "first recovery" in err
        state, result = run_recover(scylla_copy)  # the flow itself refuses too (a deployment has no preflight)
        assert state.is_failed() and "is locked by pid" in str(result)
        snapshot = tree_hash(scylla_copy)
        snapshot.pop(".recover.lock")
        assert snapshot == before


def test_stale_lock_is_taken_over_by_a_real_recovery(prefect_harness, scylla_copy: Path) -> None:
    run_paths(scylla_copy).run_result.unlink()
    dead = subprocess.Popen([PYTHON, "-c", "pass"])
    dead.wait()
    lock = ExperimentPaths(scylla_copy).lock
    lock.write_text(LockInfo(pid=dead.pid, host=socket.gethostname(), started_at="2026-01-01T00:00:00", token="x").model_dump_json())
    state, summary = run_recover(scylla_copy)
    assert state.is_completed() and summary.after["completed"] == 7
    assert not lock.exists()


# ----------------------------------------------------------------- standard mode


def test_standard_mode_run_directory(prefect_harness, git_repo: Path, tmp_path: Path) -> None:
    from flows.run_suite import run_suite

    flag = tmp_path / "fail-while-here"
    flag.write_text("x")
    suite = make_suite(git_repo / "exp", [case_src("good"), case_src("bad", flag_file=str(flag)), case_src("later")])
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "suite")
    state = run_suite(suite_path=str(suite), results_root=str(tmp_path / "results"), return_state=True)
    assert state.is_failed()
    run = SuiteRunPaths(next((tmp_path / "results" / "demo").iterdir()))
    shutil.rmtree(run.case("later").dir)  # never started
    good_before = tree_hash(run.case("good").dir)

    dry = recover_cli(str(run.dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "cases:  completed 1, failed 1, partial 0, missing 1" in dry.stdout
    lines = [line for line in dry.stdout.splitlines() if line.startswith(("bad", "later"))]
    assert lines[0].split()[:2] == ["bad", "failed"] and lines[1].split()[:2] == ["later", "missing"]
    doc = json.loads(recover_cli(str(run.dir), "--json").stdout)
    assert doc["mode"] == "standard" and [c["status"] for c in doc["cases"]] == ["completed", "failed", "missing"]
    refused = recover_cli(str(run.dir), "--dry-run", "--tier", "T0")
    assert refused.returncode == 2 and "standard-mode run directory" in refused.stderr
    partial_selection = recover_cli(str(run.dir), "--status", "failed")
    assert partial_selection.returncode == 2 and "later" in partial_selection.stderr

    flag.unlink()
    state, summary = run_recover(run.dir)
    assert state.is_completed(), state.message
    assert summary.before == {"completed": 1, "failed": 1, "partial": 0, "missing": 1}
    assert summary.after == {"completed": 3, "failed": 0, "partial": 0, "missing": 0}
    assert tree_hash(run.case("good").dir) == good_before  # the completed case was not run again


def test_foreign_experiment_that_cannot_rerun_agents_still_regenerates(prefect_harness, scylla_copy: Path) -> None:
    """The fixture's repo/ is not a git clone: its agent reruns fail, clearly; the rest is done."""
    shutil.rmtree(run_paths(scylla_copy).dir)
    run_paths(scylla_copy, "T2", "01", 1).run_result.unlink()
    state, summary = run_recover(scylla_copy)
    assert state.is_failed() and summary.exit_code == 1
    assert [label for label, _ in summary.not_done] == ["T1/01/run_01"]
    assert "repo" in summary.not_done[0][1] and "not a git repository" in summary.not_done[0][1]
    assert run_paths(scylla_copy, "T2", "01", 1).run_result.is_file()
    assert summary.after["completed"] == 6 and summary.after["missing"] == 1


def test_real_recovery_whose_reader_went_away_still_finishes(scylla_copy: Path) -> None:
    """`recover DIR | head -1`: the reader goes away, the recovery does its work and exits as usual."""
    run_paths(scylla_copy).run_result.unlink()
    proc = subprocess.Popen(
        [PYTHON, str(Path(__file__).resolve().parents[1] / "flows" / "recover.py"), str(scylla_copy)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 0, err[-3000:]
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-3000:]
    assert run_paths(scylla_copy).run_result.is_file()


def test_regeneration_batches_are_a_tier_each_split_at_subtests_when_large() -> None:
    from experiment_infra.status.rules import RunStatus
    from experiment_infra.recovery.survey import RunWork
    from flows.recover import REGENERATE_BATCH_RUNS, _regeneration_batches

    def work(tier: str, subtest: str, run: int, regenerate: bool = True) -> RunWork:
        return RunWork(tier, subtest, run, RunStatus.RESULTS, "", (), regenerate=regenerate)

    per_subtest = REGENERATE_BATCH_RUNS // 2 + 1  # two subtests overflow a batch
    runs = [work("T0", "00", 1), work("T0", "01", 1), work("T0", "01", 2, regenerate=False)]
    runs += [work("T1", f"{s:02d}", r) for s in range(3) for r in range(1, per_subtest + 1)]
    batches = _regeneration_batches(runs)
    assert [(label, len(rs)) for label, rs in batches] == [
        ("T0", 2), ("T1/00", per_subtest), ("T1/01", per_subtest), ("T1/02", per_subtest),
    ]
    assert all(r.regenerate for _, rs in batches for r in rs)
