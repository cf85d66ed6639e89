"""The spec's resume: "The runner reuses the directory; entry points must check for existing
results and skip". A real checkpointing entry point (a training loop that saves a
checkpoint after every epoch, atomically) is killed in epoch 3 of 5; ``--resume`` continues
from its checkpoint in the same directory and ends with the metrics of an uninterrupted
run, and a case whose metrics were written but whose run record never got its end reruns
in place and skips.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import git, wait_for
from faults_helpers import Marked, run_suite_cmd

from experiment_infra.layout import CasePaths, SuiteRunPaths
from experiment_infra.records import RunRecord, load_record, read_record
from experiment_infra.status.rules import CaseStatus, classify_case

pytestmark = pytest.mark.slow

CONFIG = '''
from experiment_infra import BaseExperimentConfig


class TrainConfig(BaseExperimentConfig):
    epochs: int = 5
    lr: float = 0.1
    target: float = 3.0
    hold_file: str = ""   # the test's: epoch 3 waits while this file exists
'''

# The README's pattern: skip when the results exist, else continue from the last checkpoint.
ENTRY = '''
import json
import os
import sys
import time
from pathlib import Path

from train_config import TrainConfig

config = TrainConfig()
out = Path(config.output_dir)
checkpoint, metrics, log = out / "checkpoint.json", out / "metrics.json", out / "train_log.txt"


def save(path, data):  # atomic: a kill never leaves half a checkpoint
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def note(line):
    with open(log, "a") as f:
        f.write(line + "\\n")
    print(line, flush=True)


if metrics.exists():
    note("metrics.json exists: nothing to do")
    sys.exit(0)
state = {"epoch": 0, "w": 0.0}
if checkpoint.exists():
    state = json.loads(checkpoint.read_text())
    note(f"resumed after epoch {state['epoch']}")
for epoch in range(state["epoch"] + 1, config.epochs + 1):
    note(f"epoch {epoch} start")
    while epoch == 3 and config.hold_file and Path(config.hold_file).exists():
        time.sleep(0.05)
    state["w"] -= config.lr * 2 * (state["w"] - config.target)  # one gradient step on (w - target)^2
    state["epoch"] = epoch
    save(checkpoint, state)
save(metrics, {"w": state["w"], "epochs": state["epoch"]})
'''

SUITE = '''
from train_config import TrainConfig

from experiment_infra import ExperimentCase, run_experiments_cli

cases = [
    ExperimentCase("interrupted", TrainConfig(hold_file={hold!r})),
    ExperimentCase("straight", TrainConfig()),
]

if __name__ == "__main__":
    # No retry: the killed case must end failed, for the --resume under test to continue it.
    run_experiments_cli(cases, entry_point="train.py", experiment_name="train", retries=0)
'''


def _log(case: CasePaths) -> list[str]:
    path = case.dir / "train_log.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_killed_training_resumes_from_its_checkpoint(prefect_harness, git_repo: Path, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.write_text("epoch 3 waits")
    exp = git_repo / "exp"
    exp.mkdir()
    (exp / "train_config.py").write_text(CONFIG)
    (exp / "train.py").write_text(ENTRY)
    suite = exp / "suite_train.py"
    suite.write_text(SUITE.format(hold=str(hold)))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "training experiment")
    sha = git(git_repo, "rev-parse", "HEAD")
    results = tmp_path / "results"
    marked = Marked(tmp_path / "prefect-home")
    try:
        flow = marked.popen(*run_suite_cmd(suite, "--results-root", str(results)), log=tmp_path / "flow.log")
        run = SuiteRunPaths(wait_for(lambda: next((results / "train").glob("*"), None), 120, "the run directory"))
        victim, straight = run.case("interrupted"), run.case("straight")
        wait_for(lambda: "epoch 3 start" in _log(victim), 120, "epoch 3 of the held case")
        record = read_record(victim.run_record, RunRecord).record
        assert record is not None and record.pid is not None
        os.killpg(os.getpgid(record.pid), signal.SIGKILL)  # the case's process group, mid-epoch
        assert flow.wait(timeout=300) == 1, (tmp_path / "flow.log").read_text()[-3000:]
        assert classify_case(victim).status is CaseStatus.FAILED
        assert json.loads((victim.dir / "checkpoint.json").read_text())["epoch"] == 2
        hold.unlink()

        done = marked.run(*run_suite_cmd(suite, "--resume", str(run.dir)))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

        log = _log(victim)
        assert log.count("epoch 1 start") == 1 and log.count("epoch 2 start") == 1  # not redone
        assert log[log.index("resumed after epoch 2"):] == [
            "resumed after epoch 2", "epoch 3 start", "epoch 4 start", "epoch 5 start",
        ]
        assert json.loads(victim.metrics.read_text()) == json.loads(straight.metrics.read_text())
        assert json.loads(victim.metrics.read_text())["epochs"] == 5
        now = load_record(victim.run_record, RunRecord)
        assert now.attempt == 2 and now.exit_code == 0 and now.code is not None and now.code.sha == sha
        kept = load_record(victim.attempt_dir(1) / victim.run_record.name, RunRecord)  # the killed attempt's record
        assert kept.attempt == 1 and kept.exit_code != 0
        assert "epoch 3 start" in (victim.attempt_dir(1) / victim.stdout.name).read_text()

        # Metrics written, but the run record never got its end (a waiter killed at the last
        # moment): the case is partial, reruns in place, and the entry point skips.
        metrics = straight.metrics.read_bytes()
        ended = load_record(straight.run_record, RunRecord)
        straight.run_record.write_text(ended.model_copy(update={"ended_at": None, "exit_code": None}).model_dump_json())
        assert classify_case(straight).status is CaseStatus.PARTIAL

        again = marked.run(*run_suite_cmd(suite, "--resume", str(run.dir)))
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert _log(straight)[-1] == "metrics.json exists: nothing to do"
        assert straight.metrics.read_bytes() == metrics
        assert load_record(straight.run_record, RunRecord).attempt == 2
        assert load_record(victim.run_record, RunRecord).attempt == 2  # completed: skipped
    finally:
        hold.unlink(missing_ok=True)
        marked.end_all()
