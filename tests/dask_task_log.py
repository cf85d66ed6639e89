"""A Dask worker preload for the scale-out tests: every task a Dask worker executes is
logged, with the worker's pid, its parent's and its Slurm job, to ``$TESTS_DASK_TASK_LOG/PID.jsonl``.

It runs only inside Dask workers (``distributed.worker.preload``, set through the
environment as ``dask_task_log_env`` does), so a logged task ran on a Dask worker: a flow
that ran its tasks in its own threads leaves no log at all. The product is not changed for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LOG_ENV = "TESTS_DASK_TASK_LOG"


def dask_task_log_env(where: Path) -> dict[str, str]:
    """The environment that makes every Dask worker started under it log its tasks into ``where``."""
    where.mkdir(parents=True, exist_ok=True)
    return {"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(Path(__file__).resolve())]), LOG_ENV: str(where)}


def logged_tasks(where: Path) -> list[dict[str, Any]]:
    """Every task the workers logged into ``where``: key, pid, ppid, slurm_job (-1: none)."""
    return [json.loads(line) for f in sorted(where.glob("*.jsonl")) for line in f.read_text().splitlines()]


async def dask_setup(worker: Any) -> None:  # called by distributed in each worker process
    from distributed import WorkerPlugin

    where = os.environ.get(LOG_ENV)
    if not where:
        return

    class TaskLog(WorkerPlugin):
        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            if start != "executing":
                return
            line = {
                "key": str(key), "finish": finish, "pid": os.getpid(), "ppid": os.getppid(),
                "slurm_job": int(os.environ.get("SLURM_JOB_ID", "-1")),
            }
            with open(Path(where) / f"{os.getpid()}.jsonl", "a") as out:
                out.write(json.dumps(line) + "\n")

    await worker.plugin_add(TaskLog(), name="tests-dask-task-log")
