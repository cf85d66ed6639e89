"""The experiment's plots drawn in a helper process, while this one writes the other reports.

Drawing the four plots (and importing matplotlib for them) is the largest single cost
of a report rebuild, and it is pure CPU: in a second process it runs on another core
beside the markdown and JSON work instead of after it. ``start(result)`` spawns the
helper (``python -m experiment_infra.reports.plot_worker``: the result pickled on its
stdin, the PNG bytes pickled on its stdout); ``PlotJob.result()`` collects them. Any
trouble with the helper (it cannot start, crashes, times out) draws the plots here
instead, so the files are the same either way.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ..records import ExperimentResult
from . import plots

PLOTS: dict[str, Callable[[ExperimentResult], bytes]] = {
    "score_distribution_plot": plots.score_distribution,
    "pass_rate_plot": plots.pass_rate,
    "cost_vs_score_plot": plots.cost_vs_score,
    "judge_agreement_plot": plots.judge_agreement,
}
TIMEOUT_SECONDS = 300.0
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def draw_all(result: ExperimentResult) -> dict[str, bytes]:
    return {name: draw(result) for name, draw in PLOTS.items()}


class PlotJob:
    def __init__(self, result: ExperimentResult, proc: subprocess.Popen[bytes] | None, payload: bytes) -> None:
        self._result, self._proc, self._payload = result, proc, payload

    def __del__(self) -> None:
        # Never collected (a caller that wanted only the file list): stop the helper.
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def result(self) -> dict[str, bytes]:
        """The PNG bytes of every plot, by ``PLOTS`` name."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                out, _ = proc.communicate(self._payload, timeout=TIMEOUT_SECONDS)
                if proc.returncode == 0:
                    drawn = pickle.loads(out)
                    if isinstance(drawn, dict) and set(drawn) == set(PLOTS):
                        return drawn
            except (OSError, subprocess.SubprocessError, pickle.UnpicklingError, EOFError, ValueError):
                proc.kill()
                proc.wait()
        return draw_all(self._result)


_prewarmed: subprocess.Popen[bytes] | None = None


def _spawn() -> subprocess.Popen[bytes] | None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (_PACKAGE_PARENT, os.environ.get("PYTHONPATH")) if p)}
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "experiment_infra.reports.plot_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
    except OSError:
        return None


def prewarm() -> None:
    """Start a helper now (it imports matplotlib while the caller does other work), for
    the next ``start`` of this process to use. A recovery calls it before regenerating."""
    global _prewarmed
    discard_prewarmed()
    _prewarmed = _spawn()


def discard_prewarmed() -> None:
    """Stop a helper ``prewarm`` started that no ``start`` used."""
    global _prewarmed
    proc, _prewarmed = _prewarmed, None
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


def start(result: ExperimentResult) -> PlotJob:
    """Start drawing ``result``'s plots in a helper process (here, if it cannot start)."""
    global _prewarmed
    proc, _prewarmed = _prewarmed, None
    if proc is None or proc.poll() is not None:
        proc = _spawn()
    return PlotJob(result, proc, pickle.dumps(result))


def _main() -> int:
    # Imported before the result arrives: a prewarmed helper has them by then.
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401

    data = sys.stdin.buffer.read()
    if not data:
        return 0  # prewarmed, never used
    sys.stdout.buffer.write(pickle.dumps(draw_all(pickle.loads(data))))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
