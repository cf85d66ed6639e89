"""Writes small, real suite files (config module, entry point, suite) for the flow tests.

The entry point behaves like a user's: it rebuilds its config from argv, can fail on
its first tries or while a flag file exists, can sleep, records how many cases were
running at once in a shared directory, and writes ``metrics.json``.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

CONFIG = '''
from experiment_infra import BaseExperimentConfig


class DemoConfig(BaseExperimentConfig):
    label: str = "x"
    value: float = 1.0
    fail_times: int = 0          # fail (exit 3) on the first N tries
    flag_file: str = ""          # fail while this file exists
    sleep: float = 0.0
    gate_dir: str = ""           # shared directory to count concurrently running cases
    table: dict[str, int] | None = {}
'''

# Where the entry point counts its tries, per case: in the run directory, outside the
# case directory, whose whole content a retry moves aside with fresh_attempt_dir.
COUNTERS_DIR = ".fake-entry-counters"


def tries_file(case_dir: Path) -> Path:
    """The entry point's count of its tries in ``case_dir`` (absent before the first)."""
    return case_dir.parent / COUNTERS_DIR / case_dir.name / "tries.txt"


ENTRY = '''
import sys
import time
from pathlib import Path

from {cfg} import DemoConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths

cfg = DemoConfig.from_cli()
case = CasePaths(Path(cfg.output_dir))
saw_config = case.config.is_file()  # the runner writes config.json before starting us
# The count of tries lives outside the case directory (a retry moves everything in it
# aside): beside it, in the run directory.
tries_file = case.dir.parent / {counters!r} / case.dir.name / "tries.txt"
tries_file.parent.mkdir(parents=True, exist_ok=True)
tries = int(tries_file.read_text()) + 1 if tries_file.exists() else 1
tries_file.write_text(str(tries))
print(f"hello from {{cfg.label}} try {{tries}}")
found_earlier_output = (case.dir / "progress.txt").is_file()  # a retry continues in place by default
(case.dir / "progress.txt").write_text(f"try {{tries}} started")  # an output each try rewrites
if tries <= cfg.fail_times or (cfg.flag_file and Path(cfg.flag_file).exists()):
    print(f"boom in {{cfg.label}}", file=sys.stderr)
    sys.exit(3)
peak = 0
if cfg.gate_dir:
    gate = Path(cfg.gate_dir)
    gate.mkdir(exist_ok=True)
    me = gate / f"{{cfg.label}}.running"
    me.touch()
    peak = len(list(gate.glob("*.running")))
    time.sleep(cfg.sleep)
    peak = max(peak, len(list(gate.glob("*.running"))))
    me.unlink()
else:
    time.sleep(cfg.sleep)
atomic_write_json(case.metrics, {{"value": cfg.value, "tries": tries, "saw_config": int(saw_config), "peak": peak,
                                "found_earlier_output": int(found_earlier_output)}})
'''

SUITE = '''
from {cfg} import DemoConfig

from experiment_infra import ExperimentCase, run_experiments_cli

experiment_name = {name!r}
entry_point = {entry!r}
retries = {retries}
retry_delay_seconds = 0
{extra}
cases = [
{cases}
]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point=entry_point, experiment_name=experiment_name)
'''


def case_src(label: str, **fields: object) -> str:
    args = ", ".join([f"label={label!r}", *(f"{k}={v!r}" for k, v in fields.items())])
    return f"    ExperimentCase({label!r}, DemoConfig({args})),"


def make_suite(
    where: Path,
    cases: list[str] | None = None,
    *,
    name: str = "demo",
    retries: int = 0,
    extra: str = "",
    entry: str = "entry.py",
    write_entry: bool = True,
    suite_name: str = "suite_demo.py",
) -> Path:
    """Write a suite into ``where``; its modules get unique names (one process loads many)."""
    where.mkdir(parents=True, exist_ok=True)
    cfg = f"demo_cfg_{uuid.uuid4().hex[:10]}"
    (where / f"{cfg}.py").write_text(CONFIG)
    if write_entry:
        (where / entry).write_text(textwrap.dedent(ENTRY.format(cfg=cfg, counters=COUNTERS_DIR)))
    lines = "\n".join(cases if cases is not None else [case_src("a"), case_src("b", value=2.0)])
    suite = where / suite_name
    suite.write_text(SUITE.format(cfg=cfg, name=name, entry=entry, retries=retries, extra=extra, cases=lines))
    return suite


def suite_with_entry(where: Path, cases: list[str], entry: str, *, name: str, **options: Any) -> Path:
    """A suite (``make_suite``'s ``options``) whose entry point is ``entry``, a template whose
    ``{cfg}`` names the config module (other braces doubled)."""
    suite = make_suite(where, cases, name=name, write_entry=False, **options)
    cfg = next(p.stem for p in where.glob("demo_cfg_*.py"))
    (where / "entry.py").write_text(entry.format(cfg=cfg))
    return suite


# An entry point that says which devices it saw (and which Dask worker ran it: a test names
# each worker in GPU_TEST_WORKER), its thread count and when it held them, then sleeps.
GPU_ENTRY = '''
import json, os, time
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
start = time.time()
time.sleep(cfg.sleep)
out = {{"devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "nvidia": os.environ.get("NVIDIA_VISIBLE_DEVICES"),
        "threads": os.environ.get("OMP_NUM_THREADS"), "worker": os.environ.get("GPU_TEST_WORKER", ""),
        "start": start, "end": time.time()}}
Path(cfg.output_dir, "seen.json").write_text(json.dumps(out))
Path(cfg.output_dir, "metrics.json").write_text(json.dumps({{"ok": 1}}))
'''


def gpu_suite(where: Path, cases: list[str], extra: str = "", *, name: str = "gpus") -> Path:
    """A suite whose cases report the devices they were given (``seen.json``, ``GPU_ENTRY``)."""
    return suite_with_entry(where, cases, GPU_ENTRY, name=name, extra=extra)


def rewrite_cases(suite: Path, old: str, new: str) -> None:
    text = suite.read_text()
    assert old in text, f"{old!r} not in {suite}"
    suite.write_text(text.replace(old, new))
