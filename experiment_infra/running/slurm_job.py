"""Whether the Slurm job this process runs in is being ended by Slurm (cancelled,
preempted, out of time): the case waiter's test for a ``lost`` attempt.

Slurm ends a job by sending SIGTERM to every process in it (SIGKILL after the
cluster's ``KillWait``), the same signal a run's own stop sends; what tells them
apart is the job's state, which Slurm sets before it signals: ``COMPLETING`` while it
signals (its batch script, the worker, is ending too), then ``CANCELLED``, ``TIMEOUT``,
``PREEMPTED``, ... instead of ``RUNNING``. The standard library alone:
the waiter runs beside every case, and this is asked only when a signal came.
"""

from __future__ import annotations

import os

__all__ = ["LOST_JOB_STATES", "ending_slurm_job"]

# Every state of a job that Slurm is ending or has ended while this process still runs
# in it (COMPLETING: it is signalling the job's processes, whatever the cause).
LOST_JOB_STATES = frozenset({
    "COMPLETING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "REQUEUED", "REQUEUE_HOLD",
    "REQUEUE_FED", "OUT_OF_MEMORY", "REVOKED",
})
SCONTROL_TIMEOUT_SECONDS = 5.0  # inside Slurm's KillWait (30 s by default), with the waiter's grace


def ending_slurm_job() -> tuple[str, str] | None:
    """``(job id, state)`` if this process runs in a Slurm job that Slurm is ending
    (a state in LOST_JOB_STATES); None outside Slurm, for a running job, or when
    ``scontrol`` does not answer (then nothing is claimed)."""
    job = os.environ.get("SLURM_JOB_ID", "")
    if not job.isdigit():
        return None
    import subprocess

    try:
        shown = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job], capture_output=True, text=True,
            timeout=SCONTROL_TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for field in shown.stdout.split():
        if field.startswith("JobState="):
            state = field.partition("=")[2]
            return (job, state) if state in LOST_JOB_STATES else None
    return None
