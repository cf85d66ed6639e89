"""Config of the Inspect demo: an arithmetic quiz answered by Inspect's mock model."""

from __future__ import annotations

from experiment_infra import BaseExperimentConfig


class QuizConfig(BaseExperimentConfig):
    model: str = "mockllm/model"
    num_questions: int = 6
    max_operand: int = 20
    # Share of the mock model's answers that are deliberately off by one, so the
    # variants score differently without any network or real model.
    error_rate: float = 0.0
