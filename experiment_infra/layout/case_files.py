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


def waiter_files(case_dir: str) -> tuple[str, str, str]:
    """``(run record, stdout log, stderr log)`` of the case at ``case_dir``: what its waiter opens."""
    return os.path.join(case_dir, RUN_RECORD), os.path.join(case_dir, STDOUT_LOG), os.path.join(case_dir, STDERR_LOG)
