"""Scheduling a suite on the machine: one GPU per case, retries by cause, a failure budget.

The devices are a stand-in ``nvidia-smi`` on ``PATH`` or an explicit ``--gpus`` list; the
cases are real processes that report the devices and thread count they were given.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import PYTHON, REPO_ROOT, shared_server_env, wait_for
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from suite_factory import case_src, gpu_suite, make_suite, suite_with_entry
from test_resources import fake_nvidia_smi

from experiment_cli.run_suite import main
from experiment_infra import CasePaths, load_record
from experiment_infra.records import RunRecord


def seen(run_dir: Path, variant: str) -> dict:
    return json.loads((run_dir / variant / "seen.json").read_text())


def only_run_dir(results: Path, name: str) -> Path:
    (run_dir,) = (results / name).iterdir()
    return run_dir


def test_sixteen_cases_on_four_devices_each_get_their_own(prefect_harness, tmp_path: Path, capsys) -> None:
    rng = random.Random(3)
    # No gpus= anywhere: once --gpus names devices, each case asks for one.
    cases = [f'    ExperimentCase("c{i:02d}", DemoConfig(label="c{i:02d}", sleep={rng.uniform(0.2, 1.2):.2f})),' for i in range(16)]
    suite = gpu_suite(tmp_path / "s", cases)
    results = tmp_path / "results"

    code = main([str(suite), "--results-root", str(results), "--gpus", "0,1,2,3"])

    assert code == 0, capsys.readouterr()
    run_dir = only_run_dir(results, "gpus")
    spans: dict[str, list[tuple[float, float]]] = {}
    for i in range(16):
        got = seen(run_dir, f"c{i:02d}")
        assert got["devices"] == got["nvidia"] and got["devices"] in {"0", "1", "2", "3"}
        assert got["threads"] == "1"
        record = load_record(CasePaths(run_dir / f"c{i:02d}").run_record, RunRecord)
        assert record.gpus == [got["devices"]] and record.cpus == 1
        spans.setdefault(got["devices"], []).append((got["start"], got["end"]))
    assert sorted(spans) == ["0", "1", "2", "3"]  # every device had work
    for device, held in spans.items():
        held.sort()
        for (_, end), (start, _) in zip(held, held[1:]):
            assert start >= end, f"device {device} ran two cases at once"


def test_all_finds_the_devices_and_fractions_share_one(prefect_harness, tmp_path: Path, monkeypatch, capsys) -> None:
    env = fake_nvidia_smi(tmp_path, 2)
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cases = [f'    ExperimentCase("h{i}", DemoConfig(label="h{i}", sleep=0.3), gpus=0.5),' for i in range(4)]
    cases.append('    ExperimentCase("cpu_only", DemoConfig(label="cpu_only"), gpus=0, cpus=2),')
    suite = gpu_suite(tmp_path / "s", cases)
    results = tmp_path / "results"

    assert main([str(suite), "--results-root", str(results), "--gpus", "all", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "GPUs 0, 1" in dry and "[gpus 0.5, cpus 1]" in dry and "[gpus 0, cpus 2]" in dry
    assert not results.exists()

    assert main([str(suite), "--results-root", str(results), "--gpus", "all"]) == 0
    run_dir = only_run_dir(results, "gpus")
    half = [seen(run_dir, f"h{i}") for i in range(4)]
    assert {h["devices"] for h in half} <= {"0", "1"}
    for device in ("0", "1"):  # at most two halves on a device at any moment
        mine = [(h["start"], h["end"]) for h in half if h["devices"] == device]
        for start, _ in mine:
            assert sum(1 for s, e in mine if s <= start < e) <= 2
    cpu_only = seen(run_dir, "cpu_only")
    assert cpu_only["devices"] == "" and cpu_only["threads"] == "2"  # no GPU it did not ask for


def test_a_case_asking_for_more_gpus_than_exist_is_one_error_line(git_repo: Path, tmp_path: Path, capsys) -> None:
    # In a git repository: outside one, a warning would share stderr with the error line.
    suite = gpu_suite(git_repo / "s", ['    ExperimentCase("big", DemoConfig(label="big"), gpus=4),'])
    results = tmp_path / "results"

    code = main([str(suite), "--results-root", str(results), "--gpus", "0,1"])

    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err == "error: case 'big' asks for 4 GPU(s) but this run has 2 (0, 1); ask for fewer or pass more with --gpus\n"
    assert not results.exists()


def test_without_gpus_nothing_changes(prefect_harness, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    suite = gpu_suite(tmp_path / "s", ['    ExperimentCase("plain", DemoConfig(label="plain")),'])
    results = tmp_path / "results"

    assert main([str(suite), "--results-root", str(results)]) == 0
    run_dir = only_run_dir(results, "gpus")
    assert seen(run_dir, "plain")["devices"] == "7"  # the machine's, untouched
    assert load_record(CasePaths(run_dir / "plain").run_record, RunRecord).gpus is None
    assert "progress: 1/1 cases done\n" in capsys.readouterr().out  # no word of devices


# Three cases hold their devices until the test says go; "first" ends once they all run.
GATED_ENTRY = '''
import os, time
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
gate = Path(cfg.gate_dir)
deadline = time.time() + 300  # a broken test must not hang forever
if cfg.label == "first":
    while len(list(gate.glob("started-*"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
else:
    (gate / f"started-{{cfg.label}}").write_text(os.environ["CUDA_VISIBLE_DEVICES"])
    while not (gate / "go").exists() and time.time() < deadline:
        time.sleep(0.05)
Path(cfg.output_dir, "metrics.json").write_text("{{}}")
'''


def _progress_artifact(key: str, starts: str = "") -> Any:
    """The run's progress artifact, read through the Prefect API, once its text starts with ``starts``."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return found[0] if len(found) == 1 and (found[0].description or "").startswith(starts) else None


def test_the_progress_artifact_and_line_say_which_gpus_are_busy(prefect_harness, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    cases = [f'    ExperimentCase("{n}", DemoConfig(label="{n}", gate_dir={str(gate)!r})),' for n in ("first", "a", "b", "c")]
    suite = suite_with_entry(tmp_path / "s", cases, GATED_ENTRY, name="busy_gpus")
    log = tmp_path / "run.log"
    argv = [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), str(suite), "--results-root", str(tmp_path / "results"),
            "--gpus", "0,1,2,3"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=shared_server_env(PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1"),
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        # "first" has ended, a, b and c still hold their devices: the artifact says which.
        mid = wait_for(lambda: _progress_artifact("busy-gpus-progress", "1/4"), 300, "the progress after the first case")
        held = {p.read_text() for p in gate.glob("started-*")}
        (free,) = {"0", "1", "2", "3"} - held
        busy = {"0": "1-3", "1": "0,2,3", "2": "0,1,3", "3": "0-2"}[free]
        assert mid.description.endswith(f"; GPUs busy {busy} of 0-3"), mid.description
        assert mid.data == 25.0
    finally:
        (gate / "go").touch()
        code = proc.wait(timeout=300)
    assert code == 0, log.read_text()
    (line,) = [x for x in log.read_text().splitlines() if x.startswith("progress: 1/4 cases done")]
    assert line.endswith(f"; GPUs busy {busy} of 0-3"), line  # the plain line of a log says the same
    done = _progress_artifact("busy-gpus-progress")
    assert (done.data, done.description) == (100.0, "4/4 cases done; GPUs busy none of 0-3")


# ------------------------------------------------------------------ retries by cause


def test_a_plain_nonzero_exit_is_not_retried(prefect_harness, tmp_path: Path, capsys) -> None:
    suite = make_suite(tmp_path / "s", [case_src("bug", fail_times=99)], name="bug", retries=3)

    assert main([str(suite), "--results-root", str(tmp_path / "results")]) == 1
    run_dir = only_run_dir(tmp_path / "results", "bug")
    record = load_record(CasePaths(run_dir / "bug").run_record, RunRecord)
    assert record.attempt == 1 and record.failure == "exit"
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.split()[:2] == ["bug", "failed"]]
    assert row[4] == "exit"  # the summary's failures column


def test_retry_on_matches_stderr_and_retries(prefect_harness, tmp_path: Path) -> None:
    suite = make_suite(
        tmp_path / "s", [case_src("flaky", fail_times=1)], name="flaky", retries=2, extra='retry_on = "boom in"'
    )

    assert main([str(suite), "--results-root", str(tmp_path / "results")]) == 0
    run_dir = only_run_dir(tmp_path / "results", "flaky")
    record = load_record(CasePaths(run_dir / "flaky").run_record, RunRecord)
    assert record.attempt == 2 and record.exit_code == 0


def test_retry_on_exit_codes_names_codes_worth_retrying(prefect_harness, tmp_path: Path) -> None:
    suite = make_suite(
        tmp_path / "s", [case_src("three", fail_times=1)], name="three", retries=1, extra="retry_on_exit_codes = [3]"
    )

    assert main([str(suite), "--results-root", str(tmp_path / "results")]) == 0
    record = load_record(CasePaths(only_run_dir(tmp_path / "results", "three") / "three").run_record, RunRecord)
    assert record.attempt == 2


KILLED_ONCE_ENTRY = '''
import os, signal, json
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
marker = Path(cfg.output_dir).parent / ("killed-" + cfg.label)
if not marker.exists():
    marker.write_text("x")
    os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting it would
Path(cfg.output_dir, "metrics.json").write_text(json.dumps({{"ok": 1}}))
'''


def test_a_signal_from_outside_is_retried(prefect_harness, tmp_path: Path) -> None:
    suite = suite_with_entry(tmp_path / "s", [case_src("preempted")], KILLED_ONCE_ENTRY, name="preempted", retries=1)

    assert main([str(suite), "--results-root", str(tmp_path / "results")]) == 0
    record = load_record(CasePaths(only_run_dir(tmp_path / "results", "preempted") / "preempted").run_record, RunRecord)
    assert record.attempt == 2 and record.exit_code == 0


KILLED_OR_BUGGY_ENTRY = '''
import os, signal, sys, json
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
if cfg.label == "bug":
    sys.exit(3)
marker = Path(cfg.output_dir) / "killed-once"  # the case's own file: a retry continues in place
if not marker.exists():
    marker.write_text("x")
    os.kill(os.getpid(), signal.SIGKILL)  # as an administrator or a preempting scheduler would
Path(cfg.output_dir, "metrics.json").write_text(json.dumps({{"ok": 1}}))
'''


def test_by_default_a_signal_from_outside_is_retried_and_a_plain_exit_is_not(
    prefect_harness, tmp_path: Path, capsys
) -> None:
    suite = suite_with_entry(tmp_path / "s", [case_src("killed"), case_src("bug")], KILLED_OR_BUGGY_ENTRY, name="defaults")
    suite.write_text(suite.read_text().replace("retries = 0\n", ""))  # the suite says nothing about retries
    results = tmp_path / "results"

    assert main([str(suite), "--results-root", str(results), "--dry-run"]) == 0
    assert ", retries 2" in capsys.readouterr().out

    assert main([str(suite), "--results-root", str(results)]) == 1  # the bug fails the run
    killed = CasePaths(only_run_dir(results, "defaults") / "killed")
    record = load_record(killed.run_record, RunRecord)
    assert record.attempt == 2 and record.exit_code == 0 and killed.metrics.is_file()
    first = load_record(killed.attempt_dir(1) / "run_record.json", RunRecord)
    assert first.attempt == 1 and first.failure == "signal" and "SIGKILL" in (first.reason or "")
    bug = CasePaths(only_run_dir(results, "defaults") / "bug")
    record = load_record(bug.run_record, RunRecord)
    assert record.attempt == 1 and record.failure == "exit" and record.exit_code == 3
    assert bug.kept_attempts() == []


def test_a_timeout_is_classed_and_not_retried(prefect_harness, tmp_path: Path) -> None:
    suite = make_suite(
        tmp_path / "s", [case_src("slow", sleep=30.0)], name="slow", retries=2, extra="timeout_seconds = 0.5"
    )

    assert main([str(suite), "--results-root", str(tmp_path / "results")]) == 1
    record = load_record(CasePaths(only_run_dir(tmp_path / "results", "slow") / "slow").run_record, RunRecord)
    assert record.attempt == 1 and record.timed_out and record.failure == "timeout"


# ---------------------------------------------------------------- the failure budget


def test_the_failure_budget_stops_new_cases(prefect_harness, tmp_path: Path, capsys) -> None:
    cases = [case_src(f"f{i}", fail_times=99) for i in range(6)]
    suite = make_suite(tmp_path / "s", cases, name="budget")
    results = tmp_path / "results"

    code = main([str(suite), "--results-root", str(results), "-p", "1", "--max-failures", "2"])

    out = capsys.readouterr().out
    assert code == 1
    run_dir = only_run_dir(results, "budget")
    ran = [i for i in range(6) if CasePaths(run_dir / f"f{i}").run_record.exists()]
    assert len(ran) == 2  # -p 1: the third case had not started when the budget was spent
    assert "stopped by the failure budget: 2 case(s) failed" in out
    assert out.count("not started") == 4


def test_a_bad_failure_budget_is_one_error_line(tmp_path: Path, capsys) -> None:
    suite = make_suite(tmp_path / "s", name="bad_budget")
    with pytest.raises(SystemExit) as info:
        main([str(suite), "--max-failures", "-1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--max-failures" in err and err.count("\n") == 1
