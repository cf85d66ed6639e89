"""Dask workers as Slurm jobs (dask-jobqueue's ``SLURMCluster``): what to ask Slurm for,
and whether Slurm will take it, checked before a run starts.

A run with ``SlurmWorkers`` submits ``jobs`` batch jobs, each one Dask worker running
one task (a case, an agent or judge run) at a time; the flow's process holds the Dask
scheduler they connect to. What is not set here comes from dask-jobqueue's own
configuration (``jobqueue.slurm`` in ``~/.config/dask/jobqueue.yaml``, or
``DASK_JOBQUEUE__SLURM__...`` variables): the network interface the workers reach
the scheduler on, modules to load in the job, the job's CPU count, and so on.

A Slurm job that can never start would leave the run waiting for workers forever, so
``check_slurm`` asks ``sbatch --test-only`` about the exact job script first: a bad
partition, a walltime over the partition's limit or more memory than a node has is
one line naming the option and the fix, before anything is written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

from .services import ServiceError

__all__ = ["DEFAULT_MEMORY", "SlurmWorkers", "check_directive", "check_slurm", "check_walltime", "slurm_client_problem"]

DEFAULT_MEMORY = "2GB"  # per worker job, unless set here or in dask-jobqueue's configuration
SLURM_TIMEOUT_SECONDS = 10.0  # scontrol/sbatch answer in milliseconds; a controller that is down takes this long
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")  # Slurm's forms: MM, MM:SS, HH:MM:SS, D-HH[:MM[:SS]]


def check_walltime(value: str) -> str:
    if not _WALLTIME.match(value):
        raise ValueError(f"--slurm-walltime {value!r} is not a Slurm time limit: use HH:MM:SS (or D-HH:MM:SS)")
    return value


def check_directive(value: str) -> str:
    if not value.startswith("-") or "\n" in value:
        raise ValueError(f"--slurm-directive {value!r} is not an sbatch option: use one option such as --gres=gpu:1")
    return value


@dataclass(frozen=True)
class SlurmWorkers:
    """Dask workers started as Slurm batch jobs, one task at a time each.

    A dataclass, not a pydantic model: the command lines' parsers name it, and a dry run
    parses before it imports pydantic. As a flow parameter Prefect validates it all the
    same (and the UI shows a form of its fields)."""

    jobs: int  # worker jobs to submit (each runs one task at a time)
    partition: str | None = None  # sbatch --partition (default: the cluster's default partition)
    walltime: str | None = None  # each job's time limit, e.g. 04:00:00 (default: dask-jobqueue's, 30 min)
    memory: str | None = None  # each job's memory, e.g. 8GB (default DEFAULT_MEMORY)
    account: str | None = None  # sbatch --account
    directives: tuple[str, ...] = ()  # more sbatch options, e.g. --gres=gpu:1

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"--slurm-workers must be a positive integer, got {self.jobs!r}")
        if self.walltime is not None:
            check_walltime(self.walltime)
        object.__setattr__(self, "directives", tuple(check_directive(d) for d in self.directives))

    def cluster_kwargs(self, configured: dict[str, Any], log_directory: str | None) -> dict[str, Any]:
        """``SLURMCluster`` keyword arguments: what is set here, over dask-jobqueue's
        configuration (``configured``: its ``jobqueue.slurm`` section), over ours: one
        worker process per job, one core (so one task at a time), DEFAULT_MEMORY."""
        kwargs: dict[str, Any] = dict(
            n_workers=self.jobs, processes=1, cores=configured.get("cores") or 1,
            memory=self.memory or configured.get("memory") or DEFAULT_MEMORY, job_name="experiment-infra",
        )
        for key, value in (("queue", self.partition), ("walltime", self.walltime), ("account", self.account),
                           ("log_directory", log_directory)):
            if value is not None:
                kwargs[key] = value
        if self.directives:
            kwargs["job_extra_directives"] = list(self.directives)
        return kwargs


def slurm_client_problem() -> str | None:
    """Why this machine cannot submit Slurm jobs now (no client commands, no controller), else None."""
    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return "Slurm's client commands (sbatch, scontrol) are not on PATH; run on a Slurm login node"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=SLURM_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"the Slurm controller does not answer `scontrol ping` within {SLURM_TIMEOUT_SECONDS:g} s"
    if ping.returncode != 0 or " is UP" not in ping.stdout:
        return f"the Slurm controller is not reachable ({_last_line(ping)})"
    return None


def check_slurm(job_script: str) -> None:
    """ServiceError unless Slurm is reachable and would accept ``job_script`` (a worker's
    batch script), asked with ``sbatch --test-only`` (nothing is submitted)."""
    problem = slurm_client_problem()
    if problem is not None:
        raise ServiceError(f"--slurm-workers: {problem}")
    fd, path = tempfile.mkstemp(prefix="slurm-worker-", suffix=".sh")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(job_script)
        test = subprocess.run(["sbatch", "--test-only", path], capture_output=True, text=True, timeout=SLURM_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise ServiceError(f"--slurm-workers: sbatch --test-only did not answer within {SLURM_TIMEOUT_SECONDS:g} s") from None
    finally:
        os.unlink(path)
    if test.returncode != 0:
        raise ServiceError(
            f"--slurm-workers: Slurm would refuse the worker jobs ({_last_line(test)}); "
            "fix --slurm-partition, --slurm-walltime, --slurm-memory, --slurm-account or --slurm-directive "
            "(or jobqueue.slurm in dask's configuration)"
        )


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip() and not line.startswith("*")]
    return lines[-1] if lines else f"exit code {proc.returncode}"
