"""Confidence intervals for the difference between two methods over seeds (no scipy).

Two intervals, both at 95% by default:

* **paired** (both methods ran the same seeds): the t-interval of the per-seed differences
  d_i = x_i - y_i, mean(d) +- t(1 - a/2, n - 1) * sd(d) / sqrt(n);
* **Welch** (the seeds differ): mean(x) - mean(y) +- t(1 - a/2, v) * sqrt(sx^2/nx + sy^2/ny),
  with the Welch-Satterthwaite degrees of freedom
  v = (sx^2/nx + sy^2/ny)^2 / ((sx^2/nx)^2/(nx - 1) + (sy^2/ny)^2/(ny - 1)).

Student's t quantile comes from its CDF, written with the regularized incomplete beta
function (continued fraction, as in Numerical Recipes 6.4), inverted by bisection; it takes
real degrees of freedom, which Welch's interval needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["Difference", "difference", "t_cdf", "t_quantile"]


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` > 0 (real) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` > 0 (real) degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    if p == 0.5:
        return 0.0
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


class Interval:
    """Mixin of an estimate whose interval ``[low, high]`` may be missing (both None)."""

    low: float | None
    high: float | None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def contains_zero(self) -> bool | None:
        """Whether the interval holds 0 (the difference is not told apart from noise);
        None without an interval."""
        if not self.has_interval:
            return None
        return self.low <= 0.0 <= self.high


@dataclass(frozen=True)
class Difference(Interval):
    """Mean of a method minus mean of the plain model, with its interval when one exists.

    Attributes:
        diff: the difference of the means (paired: the mean per-seed difference, which is
            the same number).
        low, high: the interval's ends; None when there is none (fewer than two runs on a
            side, or fewer than two shared seeds for the paired form).
        test: ``paired``, ``welch`` or None (no interval).
        df: degrees of freedom of the t quantile used.
        n, n_plain: runs of the method and of the plain model.
    """

    diff: float
    low: float | None
    high: float | None
    test: str | None
    df: float | None
    n: int
    n_plain: int


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _variance(values: Sequence[float]) -> float:
    mean = _mean(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def difference(
    method: dict[int | None, float] | Sequence[tuple[int | None, float]],
    plain: dict[int | None, float] | Sequence[tuple[int | None, float]],
    level: float = 0.95,
) -> Difference | None:
    """Difference ``method - plain`` of one metric, from (seed, value) pairs of each side.

    Paired when both sides ran the same set of distinct seeds (at least two), else Welch's
    interval when each side has at least two runs, else the difference alone. None when a
    side has no value.
    """
    xs = list(method.items()) if isinstance(method, dict) else list(method)
    ys = list(plain.items()) if isinstance(plain, dict) else list(plain)
    x = [float(v) for _, v in xs]
    y = [float(v) for _, v in ys]
    if not x or not y:
        return None
    diff = _mean(x) - _mean(y)
    quantile = 1.0 - (1.0 - level) / 2.0
    x_seeds, y_seeds = [s for s, _ in xs], [s for s, _ in ys]
    distinct = None not in x_seeds and len(set(x_seeds)) == len(x_seeds) and len(set(y_seeds)) == len(y_seeds)
    if distinct and set(x_seeds) == set(y_seeds) and len(x) >= 2:
        by_seed = dict(ys)
        deltas = [v - float(by_seed[s]) for s, v in xs]
        n = len(deltas)
        df = n - 1
        half = t_quantile(quantile, df) * math.sqrt(_variance(deltas) / n)
        return Difference(diff, diff - half, diff + half, "paired", float(df), len(x), len(y))
    if len(x) >= 2 and len(y) >= 2:
        vx, vy = _variance(x) / len(x), _variance(y) / len(y)
        se2 = vx + vy
        if se2 == 0.0:
            return Difference(diff, diff, diff, "welch", float("inf"), len(x), len(y))
        df = se2 ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
        half = t_quantile(quantile, df) * math.sqrt(se2)
        return Difference(diff, diff - half, diff + half, "welch", df, len(x), len(y))
    return Difference(diff, None, None, None, None, len(x), len(y))
