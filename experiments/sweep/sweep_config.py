"""Config of the example sweep: fit a polynomial to noisy samples of a function."""

from __future__ import annotations

from enum import Enum

from experiment_infra import BaseExperimentConfig


class Target(str, Enum):
    SINE = "sine"
    ABS = "abs"


class SweepConfig(BaseExperimentConfig):
    """One point of the grid. ``output_dir`` and ``seed`` come from BaseExperimentConfig."""

    target: Target = Target.SINE
    degree: int = 3
    noise: float = 0.1
    ridge: float = 0.0
    n_train: int = 30
    n_test: int = 400
