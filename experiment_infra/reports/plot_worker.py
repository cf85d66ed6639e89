"""The experiment's plots drawn in a helper process, while this one writes the other reports.

Drawing the four plots (and importing matplotlib for them) is the largest single cost
of a report rebuild, and it is pure CPU: in a second process it runs on another core
beside the markdown and JSON work instead of after it. ``start(result)`` spawns the
helper (``python -m experiment_infra.reports.plot_worker``: the result pickled on its
stdin with the names of the plots it draws, the PNG bytes pickled on its stdout);
``PlotJob.result()`` collects them. Prewarmed helpers (two on two CPUs) share the plots
out. Any trouble with a helper (it cannot start, crashes, times out) draws its plots
here instead, so the files are the same either way.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
from typing import Callable

from ..records import ExperimentResult
from ..processes.process import package_env, usable_cpus
from . import plots

PLOTS: dict[str, Callable[[ExperimentResult], bytes]] = {
    "score_distribution_plot": plots.score_distribution,
    "pass_rate_plot": plots.pass_rate,
    "cost_vs_score_plot": plots.cost_vs_score,
    "judge_agreement_plot": plots.judge_agreement,
}
# Rough relative drawing costs: the plots are shared out between the helpers by them.
_WEIGHT = {"cost_vs_score_plot": 3.0, "score_distribution_plot": 2.0, "judge_agreement_plot": 2.0, "pass_rate_plot": 1.5}
TIMEOUT_SECONDS = 300.0



def draw_all(result: ExperimentResult, names: list[str] | None = None) -> dict[str, bytes]:
    return {name: PLOTS[name](result) for name in (names if names is not None else PLOTS)}


def share_out(names: list[str], helpers: int) -> list[list[str]]:
    """``names`` in ``helpers`` groups of about equal drawing cost (heaviest first, each to the lightest group)."""
    groups: list[list[str]] = [[] for _ in range(max(1, helpers))]
    loads = [0.0] * len(groups)
    for name in sorted(names, key=lambda n: -_WEIGHT.get(n, 1.0)):
        i = loads.index(min(loads))
        groups[i].append(name)
        loads[i] += _WEIGHT.get(name, 1.0)
    return [g for g in groups if g]


class PlotJob:
    def __init__(self, result: ExperimentResult, jobs: list[tuple[subprocess.Popen[bytes] | None, list[str]]]) -> None:
        self._result = result
        self._jobs = jobs
        # Each helper starts drawing its share now. Sent from a thread: a helper still
        # importing matplotlib reads nothing yet, and a pipe holds only 64 KiB.
        self._senders = [
            threading.Thread(target=_send, args=(proc, pickle.dumps((result, names))), daemon=True)
            for proc, names in jobs if proc is not None
        ]
        for sender in self._senders:
            sender.start()

    def __del__(self) -> None:
        # Never collected (a caller that wanted only the file list): stop the helpers.
        jobs, self._jobs = getattr(self, "_jobs", []), []
        for proc, _ in jobs:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    def result(self) -> dict[str, bytes]:
        """The PNG bytes of every plot, by ``PLOTS`` name (any a helper did not deliver drawn here)."""
        jobs, self._jobs = self._jobs, []
        for sender in self._senders:
            sender.join(TIMEOUT_SECONDS)
        drawn: dict[str, bytes] = {}
        for proc, names in jobs:
            if proc is None:
                continue
            try:
                assert proc.stdout is not None
                out = proc.stdout.read()
                proc.wait(timeout=TIMEOUT_SECONDS)
                if proc.returncode == 0:
                    got = pickle.loads(out)
                    if isinstance(got, dict) and set(got) == set(names):
                        drawn.update(got)
            except (OSError, subprocess.SubprocessError, pickle.UnpicklingError, EOFError, ValueError):
                proc.kill()
                proc.wait()
        missing = [name for name in PLOTS if name not in drawn]
        drawn.update(draw_all(self._result, missing))
        return {name: drawn[name] for name in PLOTS}


def _send(proc: subprocess.Popen[bytes], payload: bytes) -> None:
    try:
        assert proc.stdin is not None
        proc.stdin.write(payload)
        proc.stdin.close()
    except OSError:  # the helper is gone: its plots are drawn here
        pass


_prewarmed: list[subprocess.Popen[bytes]] = []


def _spawn() -> subprocess.Popen[bytes] | None:
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "experiment_infra.reports.plot_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=package_env(),
        )
    except OSError:
        return None


def prewarm() -> None:
    """Start the helpers now (one per CPU, at most two: they import matplotlib while the
    caller does other work), for the next ``start`` of this process to use. A recovery's
    helper processes call it as they start."""
    discard_prewarmed()
    for _ in range(min(2, usable_cpus())):
        proc = _spawn()
        if proc is not None:
            _prewarmed.append(proc)


def discard_prewarmed() -> None:
    """Stop the helpers ``prewarm`` started that no ``start`` used."""
    while _prewarmed:
        proc = _prewarmed.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(result: ExperimentResult) -> PlotJob:
    """Start drawing ``result``'s plots in helper processes: the prewarmed ones, sharing
    the plots out, or else one started now (here, if none can start)."""
    procs = [p for p in _prewarmed if p.poll() is None]
    _prewarmed.clear()
    if not procs:
        procs = [p for p in [_spawn()] if p is not None]
    if not procs:
        return PlotJob(result, [])
    groups = share_out(list(PLOTS), len(procs))
    for spare in procs[len(groups):]:
        spare.kill()
        spare.wait()
    return PlotJob(result, list(zip(procs, groups)))


def _main() -> int:
    # Imported before the result arrives: a prewarmed helper has them by then.
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    data = sys.stdin.buffer.read()
    if not data:
        return 0  # prewarmed, never used
    result, names = pickle.loads(data)
    sys.stdout.buffer.write(pickle.dumps(draw_all(result, names)))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
