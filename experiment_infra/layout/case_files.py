"""The file names of a standard-mode case directory, in a module that imports only ``os``.

``standard.CasePaths`` builds its paths from these; the case waiter, a process that
starts beside every case, opens three of them through ``waiter_files`` without loading
the rest of the layout (dataclasses and pathlib alone would double its start-up).
"""

from __future__ import annotations

import os

CONFIG = "config.json"
RUN_RECORD = "run_record.json"
STDOUT_LOG = "stdout.log"
STDERR_LOG = "stderr.log"
METRICS = "metrics.json"
CODE_PATCH = "code.patch"  # the uncommitted changes an attempt ran with (tracked diff + untracked files used)
ATTEMPTS_DIR = ".attempts"
STOP_FILE = ".stop"  # in the run directory: "stop this run" for cases on other hosts (Dask, Slurm)
BUDGET_FILE = ".budget-spent"  # in the run directory: the failure budget is spent, start no new case


def stop_file(case_dir: str) -> str:
    """The run's stop file, beside the case directory: its text is the signal that stopped the run."""
    return os.path.join(os.path.dirname(os.path.abspath(case_dir)), STOP_FILE)


def read_stop(case_dir: str) -> str | None:
    """Why the run of the case at ``case_dir`` was stopped (a signal's name), or None while it runs."""
    try:
        with open(stop_file(case_dir), encoding="utf-8") as fh:
            return fh.read().strip() or "SIGTERM"
    except OSError:
        return None


def budget_spent(case_dir: str) -> bool:
    """Whether the failure budget of the run of the case at ``case_dir`` is spent (its
    run directory holds ``BUDGET_FILE``): a case that has not started must not start."""
    return os.path.exists(os.path.join(os.path.dirname(os.path.abspath(case_dir)), BUDGET_FILE))


def waiter_files(case_dir: str) -> tuple[str, str, str]:
    """``(run record, stdout log, stderr log)`` of the case at ``case_dir``: what its waiter opens."""
    return os.path.join(case_dir, RUN_RECORD), os.path.join(case_dir, STDOUT_LOG), os.path.join(case_dir, STDERR_LOG)
