"""Work split over forked children (experiment_infra.status.forked): every chunk done once, in
order; a failure in a child reaches the caller as itself; a child that dies is named;
no child outlives the call. And the dry run's early checks are forked before pydantic
is imported, which is what lets the two overlap."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, wait_for

from experiment_infra.status.forked import Chunks, processes_for


def reaped(pids: list[int]) -> bool:
    """Every one of ``pids`` has exited and been waited for (none is left running or a zombie)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        return False
    return bool(pids)


def test_every_chunk_is_done_once_and_comes_back_in_order() -> None:
    with Chunks(lambda k: (k, k * k), 40, children=2) as chunks:
        pids = chunks.pids
        assert chunks.results() == [(k, k * k) for k in range(40)]
    assert reaped(pids)


def test_a_failure_in_the_work_reaches_the_caller() -> None:
    def work(k: int) -> int:
        if k == 7:
            raise ValueError(f"chunk {k} is bad")
        return k

    with Chunks(work, 20, children=2) as chunks, pytest.raises(ValueError, match="^chunk 7 is bad$"):
        pids = chunks.pids
        chunks.results()
    assert reaped(pids)


def test_a_child_that_dies_is_named(tmp_path: Path) -> None:
    parent = os.getpid()

    def work(k: int) -> int:
        if os.getpid() != parent:
            (tmp_path / f"took-{k}").touch()
            os.kill(os.getpid(), 9)
        return k

    chunks = Chunks(work, 4, children=2)
    pids = chunks.pids
    wait_for(lambda: any(tmp_path.iterdir()), 60, "a child to take a chunk")
    with pytest.raises(RuntimeError, match=r"child process \(pid \d+\) .* died \(killed by signal 9\)"):
        chunks.results()
    assert reaped(pids)


def test_children_not_asked_for_their_results_are_stopped() -> None:
    chunks = Chunks(lambda k: k, 10, children=3)
    pids = chunks.pids
    chunks.close()
    assert reaped(pids) and len(pids) == 3


def test_no_fork_beside_other_threads() -> None:
    assert processes_for(100_000) >= 1
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert processes_for(100_000) == 1  # a fork could leave that thread's locks held in the child
    finally:
        stop.set()
        other.join()


def test_the_dry_runs_early_checks_start_before_pydantic_is_imported() -> None:
    # What lets a dry run's cached-run checks overlap its imports: the command line and the
    # checks load none of pydantic, the models or the status rules.
    code = (
        "import sys; import experiment_cli.recover, experiment_infra.status.prefetch; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' or m in "
        "('experiment_infra.status.rules', 'experiment_infra.records.base')))"
    )
    out = subprocess.run([PYTHON, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
