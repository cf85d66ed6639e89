"""Small-sample statistics for reports and comparisons: mean, sample standard deviation,
a 95% interval from Student's t distribution, and the paired t-test.

Pure Python (scipy is not a dependency): the t distribution's CDF is the regularized
incomplete beta function (Lentz's continued fraction, as in Numerical Recipes §6.4),
and its quantile is that CDF inverted by bisection. Both agree with scipy to better
than 1e-9 over the degrees of freedom seeds give (1 .. a few hundred).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["PAIRED_TEST", "PairedTest", "Summary", "paired_t_test", "summarize", "t_cdf", "t_quantile"]

CONFIDENCE = 0.95
PAIRED_TEST = "paired t-test"
_EPS = 1e-15
_TINY = 1e-300


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The fraction converges fast for x < (a+1)/(a+b+2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """The t with ``t_cdf(t, df) == p`` (0 < p < 1), by bisection on the CDF (cached: a
    comparison asks for the same few degrees of freedom thousands of times)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Summary:
    """Values of one metric over seeds: n, mean, sample SD and the 95% t interval
    (SD and interval are None below two values)."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None


def summarize(values: Sequence[float]) -> Summary:
    n = len(values)
    if n == 0:
        raise ValueError("summarize: no values")
    if min(values) == max(values):
        # Equal values: exactly no spread (the sum's rounding would show a 1e-16 SD).
        return Summary(n, float(values[0]), 0.0 if n > 1 else None, *((float(values[0]),) * 2 if n > 1 else (None, None)))
    mean = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class PairedTest:
    """The paired t-test of ``b - a`` over matched seeds: the mean difference (the effect),
    its 95% interval and the two-sided p-value (None below two pairs)."""

    n: int
    effect: float
    low: float | None
    high: float | None
    p_value: float | None
    test: str = PAIRED_TEST


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """Two-sided paired t-test of H0: mean(b - a) == 0, pairs matched by position."""
    if len(a) != len(b) or not a:
        raise ValueError("paired_t_test: needs the same number (at least one) of values on each side")
    diffs = [y - x for x, y in zip(a, b)]
    s = summarize(diffs)
    if s.sd is None:
        return PairedTest(s.n, s.mean, None, None, None)
    if s.sd == 0.0:
        # Every pair moved by the same amount: no spread to test against.
        p = 1.0 if s.mean == 0.0 else 0.0
        return PairedTest(s.n, s.mean, s.mean, s.mean, p)
    t = s.mean / (s.sd / math.sqrt(s.n))
    p = 2.0 * t_cdf(-abs(t), s.n - 1)
    return PairedTest(s.n, s.mean, s.low, s.high, min(1.0, p))
