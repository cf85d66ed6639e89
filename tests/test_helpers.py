"""Helper processes for pure file work: a call runs in another process, its exception
comes back, and a helper that dies costs nothing but speed (the call runs here)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from experiment_infra.processes import helpers
from experiment_infra.recovery.batch import HELPER_WARMUP, PLOTS_WARMUP, regenerate_batch


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


def _helper_processes() -> dict[int, str]:
    """pid -> command line of this process's helper processes (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if ppid == os.getpid() and "-m experiment_infra.processes.helpers" in argv:
            found[int(entry.name)] = argv
    return found


def test_the_plots_warm_up_runs_in_one_helper_and_the_reports_call_goes_to_it() -> None:
    helpers.close()
    helpers.prewarm(HELPER_WARMUP, first=PLOTS_WARMUP)
    try:
        started = _helper_processes()
        warm = [pid for pid, argv in started.items() if PLOTS_WARMUP[0] in argv]
        # One set of plot processes for the one call that draws plots, not one per helper.
        assert len(warm) == 1, started
        assert all(HELPER_WARMUP[0] in argv for argv in started.values()), started
        assert [helpers.call(os.getpid, first=True) for _ in range(3)] == warm * 3
    finally:
        helpers.close()
