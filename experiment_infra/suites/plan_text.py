"""The dry run's account of a standard-mode suite plan (``suite.plan_suite``)."""

from __future__ import annotations

import shlex
from typing import Any

from ..provenance.code_versions import code_label
from ..layout import DIRTY_SUFFIX

# A plan is typed loosely here: suite.py imports this module (and the other way round
# would be a cycle). ``p`` is a ``suite.PlannedCase``, ``plan`` a ``suite.SuitePlan``.

__all__ = ["case_note", "format_plan"]


def case_note(p: Any) -> str:
    """What a run does with one case, and why: ``completed: would skip``, ``added``,
    ``reuse (RUN/variant)``, ``run (config: degree 3 -> 5)``."""
    if p.done:
        return "completed: would skip"
    notes = ["added to the run"] if p.added else []
    if p.reuse is not None:
        notes.append(p.reuse.text())
    return ", ".join(notes)


def format_plan(plan: Any, pool: Any = None) -> str:
    """The dry run's account: run directory, each variant -> output dir, exact command,
    with GPUs what each case asks for out of which devices (``pool``, a ``ResourcePool``),
    and with ``--reuse`` what happens to each case and why."""
    suite = plan.suite
    verb = "resume" if plan.resumed else "create"
    lines = [
        f"dry run: would {verb} {plan.run.dir}",
        f"experiment {suite.experiment_name} ({suite.mode}), git {plan.git.short}"
        + (DIRTY_SUFFIX if plan.git.dirty else "")
        + f", {len(plan.cases)} case(s), retries {suite.retries}",
        *plan.warnings(),
    ]
    check = plan.code_check
    if check is not None and check.new_version is not None:
        lines.append(f"code changed: would run on {code_label(check.code.git)}, recorded as code version {check.version}")
    devices = pool.devices if pool is not None else ()
    # On Dask (worker_devices.DaskGpus) the devices are the workers'; the plan says how.
    on_workers = getattr(pool, "plan_line", None) if getattr(pool, "uses_gpus", False) else None
    if on_workers:
        lines.append(on_workers)
    elif devices:
        lines.append(f"GPUs {', '.join(devices)}: each case waits for its own share (CUDA_VISIBLE_DEVICES)")
    if plan.added:
        lines.append(f"would add {len(plan.added)} case(s) to the run: {', '.join(p.variant_name for p in plan.added)}")
    if plan.reusing:
        reused = sum(1 for p in plan.cases if p.reuse is not None and p.reuse.reused)
        lines.append(f"--reuse: {reused} case(s) would be reused from earlier runs")
    for p in plan.cases:
        note = case_note(p)
        note = f"  [{note}]" if note else ""
        if devices or on_workers:
            gpus, cpus = suite.requests(p.case, pool.default_gpus)
            note += f"  [gpus {gpus:g}, cpus {cpus}]"
        lines.append(f"  {p.variant_name} -> {p.paths.dir}{note}")
        if p.reuse is None or not p.reuse.reused:
            lines.append(f"    {shlex.join(p.command)}")
    for name in plan.not_in_suite:
        lines.append(f"  {name}: not in the suite (left on disk, not run)")
    lines.append("nothing written, nothing started")
    return "\n".join(lines)
