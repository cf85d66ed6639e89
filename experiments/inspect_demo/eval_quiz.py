"""Entry point: one Inspect eval of the quiz; the log lands in config.output_dir.

Runs offline: the mock model's answers are scripted from the config, and each
scripted output carries its own token usage, which keeps Inspect from downloading
a tokenizer to count them.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from config import QuizConfig  # noqa: E402

from experiment_infra import run_inspect_case  # noqa: E402


def build(config: QuizConfig):
    from inspect_ai import Task
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    rng = random.Random(config.seed)
    samples, answers = [], []
    for i in range(config.num_questions):
        a, b = rng.randint(0, config.max_operand), rng.randint(0, config.max_operand)
        samples.append(Sample(id=i + 1, input=f"What is {a} + {b}? Answer with the number only.", target=str(a + b)))
        wrong = rng.random() < config.error_rate
        answers.append(str(a + b + (1 if wrong else 0)))

    def outputs():
        for answer in answers:
            out = ModelOutput.from_content(model="mockllm/model", content=answer)
            out.usage = ModelUsage(input_tokens=12, output_tokens=1, total_tokens=13)
            yield out

    task = Task(dataset=samples, solver=generate(), scorer=match(), name="quiz")
    model = get_model(config.model, custom_outputs=outputs()) if config.model.startswith("mockllm/") else config.model
    return task, model


def main(argv: list[str] | None = None) -> int:
    config = QuizConfig.from_cli(argv)
    task, model = build(config)
    log = run_inspect_case(task, config, model=model, max_samples=1)
    print(f"{log.status}: {log.location}")
    return 0 if log.status == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
