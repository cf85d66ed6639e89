"""Entry point of the example sweep: least-squares polynomial fit, pure Python.

    python experiments/sweep/fit.py --degree=5 --noise=0.1 --output_dir=/tmp/out

Draws ``n_train`` noisy samples of the target on [-1, 1] (seeded), fits a polynomial
of the given degree by ridge-regularised least squares, and writes the train and
test error to ``metrics.json`` in ``output_dir`` (a flat JSON object of numbers).
Idempotent: the same config always writes the same metrics, atomically.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from sweep_config import SweepConfig, Target

from experiment_infra import atomic_write_json
from experiment_infra.layout import CasePaths

TARGETS = {Target.SINE: lambda x: math.sin(math.pi * x), Target.ABS: abs}


def design_row(x: float, degree: int) -> list[float]:
    return [x**k for k in range(degree + 1)]


def solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is square and, with ridge > 0, regular)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-300:
            raise ArithmeticError(f"singular normal equations at column {col}; add ridge > 0")
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            for c in range(col, n + 1):
                m[r][c] -= f * m[col][c]
    coef = [0.0] * n
    for r in range(n - 1, -1, -1):
        coef[r] = (m[r][n] - sum(m[r][c] * coef[c] for c in range(r + 1, n))) / m[r][r]
    return coef


def fit(xs: list[float], ys: list[float], degree: int, ridge: float) -> list[float]:
    rows = [design_row(x, degree) for x in xs]
    p = degree + 1
    normal = [[sum(r[i] * r[j] for r in rows) + (ridge if i == j else 0.0) for j in range(p)] for i in range(p)]
    rhs = [sum(r[i] * y for r, y in zip(rows, ys)) for i in range(p)]
    return solve(normal, rhs)


def mse(coef: list[float], xs: list[float], ys: list[float]) -> float:
    def predict(x: float) -> float:
        return sum(c * x**k for k, c in enumerate(coef))

    return sum((predict(x) - y) ** 2 for x, y in zip(xs, ys)) / len(xs)


def main() -> None:
    cfg = SweepConfig()  # the case's config, from the command line the runner built (or SweepConfig.from_cli())
    case = CasePaths(Path(cfg.output_dir))
    if case.metrics.is_file():
        # A resumed or retried case runs in its own directory with what it wrote before:
        # results already there are this config's (the fit is deterministic), so skip.
        print(f"{case.metrics} exists: nothing to do")
        return
    rng = random.Random(cfg.seed)
    f = TARGETS[cfg.target]
    train_x = [rng.uniform(-1.0, 1.0) for _ in range(cfg.n_train)]
    train_y = [f(x) + rng.gauss(0.0, cfg.noise) for x in train_x]
    test_x = [-1.0 + 2.0 * i / (cfg.n_test - 1) for i in range(cfg.n_test)]
    test_y = [f(x) for x in test_x]
    print(f"fitting degree {cfg.degree} to {cfg.n_train} samples of {cfg.target.value} (noise {cfg.noise})")
    coef = fit(train_x, train_y, cfg.degree, cfg.ridge)
    metrics = {
        "train_mse": mse(coef, train_x, train_y),
        "test_mse": mse(coef, test_x, test_y),
        "degree": cfg.degree,
        "noise": cfg.noise,
        "max_abs_coef": max(abs(c) for c in coef),
    }
    atomic_write_json(case.metrics, metrics)
    print(f"train mse {metrics['train_mse']:.4g}, test mse {metrics['test_mse']:.4g}")


if __name__ == "__main__":
    main()
