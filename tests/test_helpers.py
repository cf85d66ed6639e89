"""Helper processes for pure file work: a call runs in another process, its exception
comes back, and a helper that dies costs nothing but speed (the call runs here)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from experiment_infra import helpers
from experiment_infra.recovery.batch import regenerate_batch


def test_a_call_runs_in_another_process_and_its_error_comes_back() -> None:
    assert helpers.call(os.getpid) != os.getpid()
    with pytest.raises(FileNotFoundError):
        helpers.call(os.stat, "/no/such/file/anywhere")


def test_a_helper_that_dies_mid_call_leaves_the_call_to_this_process(tmp_path: Path) -> None:
    helpers.close()
    helpers.prewarm()
    pids = {helpers.call(os.getpid) for _ in range(4)}
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # Every helper is gone: the next call notices and runs here instead, with the same answer.
    assert helpers.call(os.getcwd) == os.getcwd()
    # A new helper takes the dead one's place afterwards.
    assert helpers.call(os.getpid) not in pids | {os.getpid()}


def test_a_batch_in_a_helper_names_every_run_it_could_not_do(tmp_path: Path) -> None:
    # No such experiment: every run fails, each named, none raised; the outcome pickles back.
    outcome = helpers.call(regenerate_batch, "T0", str(tmp_path), ["m"], [("T0", "00", 1), ("T0", "01", 2)])
    assert outcome.total == 2 and not outcome.done
    assert sorted(outcome.failed) == ["T0/00/run_01", "T0/01/run_02"]
    assert all("missing" in why or "No such file" in why for why in outcome.failed.values()), outcome.failed
