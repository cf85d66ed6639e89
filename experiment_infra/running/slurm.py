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

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .services import ServiceError

if TYPE_CHECKING:
    import subprocess

if TYPE_CHECKING:
    from ..suites.suite import Suite
    from .worker_devices import DaskGpus

# shutil and subprocess are imported by the checks that use them: the command
# lines' parsers import this module, and a dry run parses before anything else.

__all__ = [
    "DEFAULT_MEMORY", "SlurmWorkers", "check_directive", "check_memory", "check_slurm", "check_walltime",
    "plan_slurm_gpus", "slurm_client_problem",
]

DEFAULT_MEMORY = "2GB"  # per worker job, unless set here or in dask-jobqueue's configuration
SLURM_TIMEOUT_SECONDS = 10.0  # scontrol/sbatch answer in milliseconds; a controller that is down takes this long
# Slurm's time limits: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or no limit.
_WALLTIME = re.compile(r"\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|UNLIMITED|INFINITE")
_MEMORY = re.compile(r"\d+(\.\d+)?\s*([kmgtp]i?b?|b)?", re.IGNORECASE)  # 2GB, 16 GB, 4G, 1.5GiB
# What an #SBATCH line may hold: a value with a control character (a newline above all)
# would put lines of its own into the job script.
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]*")


def check_walltime(value: str) -> str:
    if not _WALLTIME.fullmatch(value):
        raise ValueError(f"--slurm-walltime {value!r} is not a Slurm time limit: use HH:MM:SS (or D-HH:MM:SS, or minutes)")
    return value


def check_memory(value: str) -> str:
    if not _MEMORY.fullmatch(value):
        raise ValueError(f"--slurm-memory {value!r} is not a size: use e.g. 8GB or 512MB")
    return value


def check_directive(value: str) -> str:
    if not value.startswith("-") or not _PRINTABLE.fullmatch(value):
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
    directives: tuple[str, ...] = ()  # more sbatch options, e.g. --constraint=a100
    # GPUs each job asks Slurm for (--gres=gpu:K) and runs that many cases at once on, one
    # each, with the devices Slurm gave it (None: the largest case's request, when cases ask).
    gpus_per_job: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"--slurm-workers must be a positive integer, got {self.jobs!r}")
        for name in ("partition", "account"):
            value = getattr(self, name)
            if value is not None and not (value and _PRINTABLE.fullmatch(value)):
                raise ValueError(f"--slurm-{name} {value!r} is not a Slurm {name} name")
        if self.walltime is not None:
            check_walltime(self.walltime)
        if self.memory is not None:
            check_memory(self.memory)
        object.__setattr__(self, "directives", tuple(check_directive(d) for d in self.directives))
        if self.gpus_per_job is not None and (
            isinstance(self.gpus_per_job, bool) or not isinstance(self.gpus_per_job, int) or self.gpus_per_job < 1
        ):
            raise ValueError(f"--slurm-gpus-per-job must be a positive integer, got {self.gpus_per_job!r}")

    def cluster_kwargs(self, configured: dict[str, Any], log_directory: str | None) -> dict[str, Any]:
        """``SLURMCluster`` keyword arguments: what is set here, over dask-jobqueue's
        configuration (``configured``: its ``jobqueue.slurm`` section), over ours. A job is
        always one worker process with one thread, one task at a time; the configuration's
        ``cores`` only books that many CPUs for it (``--cpus-per-task``), for a case's own
        threads or processes. With ``gpus_per_job`` K the job asks for ``--gres=gpu:K``, its
        worker declares the Dask resource ``GPU=K`` and runs up to K tasks at once (one
        thread each); the cases take their devices from the job's own CUDA_VISIBLE_DEVICES,
        which Slurm sets (``worker_devices.worker_pool``)."""
        kwargs: dict[str, Any] = dict(
            n_workers=self.jobs, processes=1, cores=1, memory=self.memory or configured.get("memory") or DEFAULT_MEMORY,
            job_name="experiment-infra",
        )
        if configured.get("cores"):
            kwargs["job_cpu"] = configured["cores"]
        for key, value in (("queue", self.partition), ("walltime", self.walltime), ("account", self.account),
                           ("log_directory", log_directory)):
            if value is not None:
                kwargs[key] = value
        directives = list(self.directives)
        if self.gpus_per_job:
            kwargs["cores"] = self.gpus_per_job  # threads of its one worker process
            kwargs["job_cpu"] = configured.get("cores") or 1  # CPUs booked stay the configuration's
            kwargs["worker_extra_args"] = [*(configured.get("worker-extra-args") or []), "--resources", f"GPU={self.gpus_per_job}"]
            directives.append(f"--gres=gpu:{self.gpus_per_job}")
        if directives:
            kwargs["job_extra_directives"] = directives
        return kwargs

    def with_gpus_for(self, largest_request: float) -> SlurmWorkers:
        """These jobs, asking for GPUs: ``gpus_per_job`` as given, else enough for the largest
        case's request (``largest_request``, rounded up)."""
        import math
        from dataclasses import replace

        return replace(self, gpus_per_job=self.gpus_per_job or max(1, math.ceil(largest_request)))


def plan_slurm_gpus(suite: Suite, gpus: str | None, slurm: SlurmWorkers) -> tuple[DaskGpus, SlurmWorkers]:
    """What GPUs mean on Slurm worker jobs, every case's request checked (ResourceError):
    the plan (each job's devices are its own, handed out by its worker) and the jobs, asking
    for GPUs when a case does (``SlurmWorkers.with_gpus_for``). ``--gpus`` may only be
    ``all`` (each case asks for one unless it says otherwise): the devices are Slurm's to give."""
    import math

    from .resources import ResourceError
    from .worker_devices import DaskGpus

    if gpus is not None and str(gpus).strip() != "all":
        raise ResourceError(
            f"--gpus {gpus}: on Slurm worker jobs the devices are the ones Slurm gives each job; "
            "use --gpus all (one GPU per case) or give the cases gpus=, and --slurm-gpus-per-job K"
        )
    default = 1.0 if gpus is not None else 0.0
    requests = {c.variant_name: suite.requests(c, default)[0] for c in suite.cases}
    largest = max(requests.values(), default=0.0)
    if largest <= 0:
        return DaskGpus(default, False), slurm
    jobs = slurm.with_gpus_for(largest)
    per_job = jobs.gpus_per_job or 0
    for name, wanted in requests.items():
        if math.ceil(wanted) > per_job:
            raise ResourceError(
                f"case {name!r} asks for {wanted:g} GPU(s) but each Slurm worker job has {per_job} "
                f"(--slurm-gpus-per-job {per_job}); ask for fewer, or give the jobs at least {math.ceil(wanted)}"
            )
    return DaskGpus(default, True, slurm_per_job=per_job), jobs


def slurm_client_problem() -> str | None:
    """Why this machine cannot submit Slurm jobs now (no client commands, no controller), else None."""
    import shutil
    import subprocess

    if not shutil.which("sbatch") or not shutil.which("scontrol"):
        return "Slurm's client commands (sbatch, scontrol) are not on PATH; run on a Slurm login node"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=SLURM_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"the Slurm controller does not answer `scontrol ping` within {SLURM_TIMEOUT_SECONDS:g} s"
    except OSError as exc:
        return f"scontrol could not run ({exc})"
    if ping.returncode != 0 or " is UP" not in ping.stdout:
        return f"the Slurm controller is not reachable ({_last_line(ping)})"
    return None


def check_slurm(job_script: str) -> None:
    """ServiceError unless Slurm is reachable and would accept ``job_script`` (a worker's
    batch script), asked with ``sbatch --test-only`` (nothing is submitted)."""
    import subprocess

    problem = slurm_client_problem()
    if problem is not None:
        raise ServiceError(f"--slurm-workers: {problem}")
    try:  # the script on stdin, as sbatch reads it when given no file
        test = subprocess.run(
            ["sbatch", "--test-only"], input=job_script, capture_output=True, text=True, timeout=SLURM_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"--slurm-workers: sbatch --test-only did not answer within {SLURM_TIMEOUT_SECONDS:g} s") from None
    except OSError as exc:
        raise ServiceError(f"--slurm-workers: sbatch could not run ({exc})") from None
    if test.returncode != 0:
        raise ServiceError(
            f"--slurm-workers: Slurm would refuse the worker jobs ({_last_line(test)}); "
            "fix --slurm-partition, --slurm-walltime, --slurm-memory, --slurm-account, --slurm-directive or --slurm-gpus-per-job "
            "(or jobqueue.slurm in dask's configuration)"
        )


def _last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip() and not line.startswith("*")]
    return lines[-1] if lines else f"exit code {proc.returncode}"
