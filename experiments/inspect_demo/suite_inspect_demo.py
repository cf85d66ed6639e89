"""Inspect-mode suite: three error rates of a scripted model on an arithmetic quiz.

    python flows/run_suite.py experiments/inspect_demo/suite_inspect_demo.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from config import QuizConfig  # noqa: E402

from experiment_infra import ExperimentCase, run_experiments_cli  # noqa: E402

experiment_name = "inspect_demo"
entry_point = "eval_quiz.py"
mode = "inspect"

base = QuizConfig()
cases = [
    ExperimentCase("perfect", base),
    ExperimentCase("sloppy", base.copy_with(error_rate=0.5)),
    ExperimentCase("hopeless", base.copy_with(error_rate=1.0)),
]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point=entry_point, experiment_name=experiment_name, mode=mode)
