"""GPU cases on Slurm worker jobs, on the real one-node cluster of ``.ci/slurm-setup`` (its
node has four stand-in GPUs, ``gres gpu:4``): each job asks Slurm for its GPUs
(``--gres=gpu:K``), its worker declares the Dask resource ``GPU=K``, and each case runs on
devices Slurm gave its job, named in its run record."""

from __future__ import annotations

import json
import textwrap
import uuid
from datetime import datetime
from itertools import combinations
from pathlib import Path

import pytest
from server_helpers import PrefectServer, run_py, show
from test_slurm import our_jobs, slurm_server  # noqa: F401  (slurm_server: a fixture)

from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord, load_record

pytestmark = [pytest.mark.server, pytest.mark.slurm]

CONFIG = '''
from experiment_infra import BaseExperimentConfig


class GpuConfig(BaseExperimentConfig):
    hold_seconds: float = 3.0
'''

# What the case saw: its devices and the devices Slurm gave its job.
ENTRY = '''
import os, time
from pathlib import Path

from {cfg} import GpuConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths

cfg = GpuConfig.from_cli()
time.sleep(cfg.hold_seconds)
atomic_write_json(CasePaths(Path(cfg.output_dir)).metrics, {{
    "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
    "job": int(os.environ.get("SLURM_JOB_ID", "-1")),
    "job_gpus": os.environ.get("SLURM_JOB_GPUS", ""),
}})
'''

SUITE = '''
from {cfg} import GpuConfig

from experiment_infra import ExperimentCase

experiment_name = {name!r}
entry_point = "entry.py"
gpus = 1
cases = [ExperimentCase(f"c{{i}}", GpuConfig(), gpus={gpus!r}) for i in range(4)]
'''


def gpu_suite(where: Path, name: str, gpus: int = 1) -> Path:
    where.mkdir(parents=True)
    cfg = f"gpu_cfg_{uuid.uuid4().hex[:8]}"
    (where / f"{cfg}.py").write_text(CONFIG)
    (where / "entry.py").write_text(textwrap.dedent(ENTRY.format(cfg=cfg)))
    suite = where / "suite_gpu.py"
    suite.write_text(SUITE.format(cfg=cfg, name=name, gpus=gpus))
    return suite


def test_gpu_cases_run_on_the_devices_slurm_gave_their_job_never_two_at_once(
    slurm_server: PrefectServer, tmp_path: Path  # noqa: F811
) -> None:
    suite = gpu_suite(tmp_path / "exp", "slurm_gpus")
    results = tmp_path / "results"
    done = run_py(
        slurm_server, "flows/run_suite.py", suite, "--results-root", results,
        "--slurm-workers", "2", "--slurm-gpus-per-job", "2", "--slurm-walltime", "00:10:00",
    )
    assert done.returncode == 0, show(done)
    (run_dir,) = (results / "slurm_gpus").iterdir()
    run = SuiteRunPaths(run_dir)
    spans = []
    for i in range(4):
        case = run.case(f"c{i}")
        record = load_record(case.run_record, RunRecord)
        seen = json.loads(case.metrics.read_text())
        assert record.code is not None and record.gpus is not None and len(record.gpus) == 1, record
        # The record names the job and the device; the case saw that device, one of its job's.
        assert record.code.slurm_job_id == str(seen["job"]) and seen["job"] > 0, (record.code, seen)
        assert seen["visible"] == record.gpus[0] and record.gpus[0] in seen["job_gpus"].split(","), (record.gpus, seen)
        assert len(seen["job_gpus"].split(",")) == 2, seen  # each job was given two GPUs (--gres=gpu:2)
        start, end = (datetime.fromisoformat(t) for t in (record.started_at, record.ended_at))
        spans.append(((seen["job"], record.gpus[0]), start, end))
    for (where_a, start_a, end_a), (where_b, start_b, end_b) in combinations(spans, 2):
        if where_a == where_b:  # one device of one job: one case at a time
            assert end_a <= start_b or end_b <= start_a, spans
    assert len({job for (job, _), _, _ in spans}) <= 2
    assert our_jobs() == []


def test_a_case_asking_for_more_gpus_than_a_job_has_is_one_line(slurm_server: PrefectServer, tmp_path: Path) -> None:  # noqa: F811
    suite = gpu_suite(tmp_path / "exp", "too_big", gpus=3)
    proc = run_py(
        slurm_server, "flows/run_suite.py", suite, "--results-root", tmp_path / "results",
        "--slurm-workers", "1", "--slurm-gpus-per-job", "2",
    )
    assert proc.returncode == 2, show(proc)
    (line,) = [text for text in proc.stderr.splitlines() if text.startswith("error:")]
    assert line.startswith("error: case 'c0' asks for 3 GPU(s) but each Slurm worker job has 2 (--slurm-gpus-per-job 2)"), line
    assert not (tmp_path / "results").exists() and our_jobs() == []
