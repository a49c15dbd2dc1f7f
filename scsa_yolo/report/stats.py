"""Confidence intervals for the difference between two methods over seeds (no scipy).

Two intervals, both at 95% by default:

* **paired** (both methods ran the same seeds): the t-interval of the per-seed differences
  d_i = x_i - y_i, mean(d) +- t(1 - a/2, n - 1) * sd(d) / sqrt(n);
* **Welch** (the seeds differ): mean(x) - mean(y) +- t(1 - a/2, v) * sqrt(sx^2/nx + sy^2/ny),
  with the Welch-Satterthwaite degrees of freedom
  v = (sx^2/nx + sy^2/ny)^2 / ((sx^2/nx)^2/(nx - 1) + (sy^2/ny)^2/(ny - 1)).

Precision, at 95% confidence and 80% power by default:

* **minimum detectable difference** (MDD), the smallest true difference the comparison
  would detect: paired, MDD = (t(1 - a/2, n - 1) + t(power, n - 1)) * sd(d) / sqrt(n);
  Welch, the same with its degrees of freedom and standard error,
  MDD = (t(1 - a/2, v) + t(power, v)) * sqrt(sx^2/nx + sy^2/ny). This is the usual t
  approximation of power (the central t for the second quantile), not the noncentral t;
* **seeds needed** to detect a chosen difference D if the observed spread held: the
  smallest n >= 2 with MDD(n) <= D (paired: n seeds run by both; Welch: n runs per side),
  found by iterating from the normal approximation, since t depends on n.

Student's t quantile comes from its CDF, written with the regularized incomplete beta
function (continued fraction, as in Numerical Recipes 6.4), inverted by bisection; it takes
real degrees of freedom, which Welch's interval needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

__all__ = ["POWER", "Difference", "detectable_difference", "difference", "seeds_needed", "t_cdf", "t_quantile",
           "welch_detectable_difference", "welch_seeds_needed"]

#: Power of the detectable differences: the chance that a true difference of that size is detected.
POWER = 0.80


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


def _upper(level: float) -> float:
    """The two-sided quantile of a confidence ``level``: 0.975 for 0.95."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    return 1.0 - (1.0 - level) / 2.0


def _detectable(df: float, standard_error: float, level: float, power: float) -> float:
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power}")
    if standard_error == 0.0:
        return 0.0
    return (t_quantile(_upper(level), df) + t_quantile(power, df)) * standard_error


def detectable_difference(spread: float, n: int, level: float = 0.95, power: float = POWER) -> float:
    """MDD of a paired comparison: (t(1 - a/2, n - 1) + t(power, n - 1)) * spread / sqrt(n).

    Args:
        spread: sample std (ddof=1) of the n per-seed differences.
        n: pairs (seeds run by both sides), at least 2.
    """
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 pairs, got {n}")
    return _detectable(n - 1, spread / math.sqrt(n), level, power)


def _welch(spread_x: float, spread_y: float, nx: int, ny: int) -> tuple[float, float]:
    """(degrees of freedom, standard error) of Welch's comparison."""
    vx, vy = spread_x ** 2 / nx, spread_y ** 2 / ny
    se2 = vx + vy
    if se2 == 0.0:
        return float("inf"), 0.0
    return se2 ** 2 / (vx ** 2 / (nx - 1) + vy ** 2 / (ny - 1)), math.sqrt(se2)


def welch_detectable_difference(spread_x: float, spread_y: float, nx: int, ny: int, level: float = 0.95,
                                power: float = POWER) -> float:
    """MDD of Welch's comparison: (t(1 - a/2, v) + t(power, v)) * sqrt(sx^2/nx + sy^2/ny)."""
    if nx < 2 or ny < 2:
        raise ValueError(f"Welch's comparison needs at least 2 runs per side, got {nx} and {ny}")
    df, se = _welch(spread_x, spread_y, nx, ny)
    return _detectable(df, se, level, power)


def _smallest_n(mdd_of, target: float, spread: float, level: float, power: float) -> int:
    """The smallest n >= 2 with ``mdd_of(n) <= target``, ``mdd_of`` falling with n, searched
    from the normal approximation for ``spread``."""
    if not target > 0.0:
        raise ValueError(f"the difference to detect must be > 0, got {target}")
    n = max(2, math.ceil(_z_guess(spread, target, level, power)))
    while mdd_of(n) > target:  # the normal approximation underestimates: t > z
        n = max(n + 1, math.ceil(n * min(2.0, (mdd_of(n) / target) ** 2)))
    while n > 2 and mdd_of(n - 1) <= target:
        n -= 1
    return n


def _z_guess(spread: float, target: float, level: float, power: float) -> float:
    """n of the normal approximation: ((z(1 - a/2) + z(power)) * spread / target)^2."""
    z = t_quantile(_upper(level), 1e9) + t_quantile(power, 1e9)
    return (z * spread / target) ** 2


def seeds_needed(spread: float, target: float, level: float = 0.95, power: float = POWER) -> int:
    """Pairs of runs (seeds run by both sides) a paired comparison needs so that its MDD is
    at most ``target``, if the per-seed differences keep the sample std ``spread``."""
    return _smallest_n(lambda n: detectable_difference(spread, n, level, power), target, spread, level, power)


def welch_seeds_needed(spread_x: float, spread_y: float, target: float, level: float = 0.95,
                       power: float = POWER) -> int:
    """Runs per side Welch's comparison needs so that its MDD is at most ``target``, if the
    two sides keep the sample stds ``spread_x`` and ``spread_y``."""
    return _smallest_n(lambda n: welch_detectable_difference(spread_x, spread_y, n, n, level, power), target,
                       math.hypot(spread_x, spread_y), level, power)


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
        mdd: the minimum detectable difference at ``level`` and ``power`` (None without an
            interval).
        spread: the observed spread behind it: paired ``(sd of the differences,)``, Welch
            ``(sd of the method, sd of the plain model)``; empty without an interval.
        level, power: the confidence level and power of ``low``/``high`` and ``mdd``.
    """

    diff: float
    low: float | None
    high: float | None
    test: str | None
    df: float | None
    n: int
    n_plain: int
    mdd: float | None = None
    spread: tuple[float, ...] = ()
    level: float = 0.95
    power: float = POWER

    def seeds_needed(self, target: float) -> int | None:
        """Seeds (paired: run by both; Welch: per side) that would detect a true difference
        of ``target`` at this level and power, if the observed spread held; None without
        an interval."""
        if self.test == "paired":
            return seeds_needed(self.spread[0], target, self.level, self.power)
        if self.test == "welch":
            return welch_seeds_needed(*self.spread, target, self.level, self.power)
        return None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _variance(values: Sequence[float]) -> float:
    mean = _mean(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def difference(
    method: dict[int | None, float] | Sequence[tuple[int | None, float]],
    plain: dict[int | None, float] | Sequence[tuple[int | None, float]],
    level: float = 0.95,
    power: float = POWER,
) -> Difference | None:
    """Difference ``method - plain`` of one metric, from (seed, value) pairs of each side.

    Paired when both sides ran the same set of distinct seeds (at least two), else Welch's
    interval when each side has at least two runs, else the difference alone. None when a
    side has no value. With an interval comes its minimum detectable difference at
    ``level`` and ``power``.
    """
    xs = list(method.items()) if isinstance(method, dict) else list(method)
    ys = list(plain.items()) if isinstance(plain, dict) else list(plain)
    x = [float(v) for _, v in xs]
    y = [float(v) for _, v in ys]
    if not x or not y:
        return None
    diff = _mean(x) - _mean(y)
    quantile = _upper(level)
    x_seeds, y_seeds = [s for s, _ in xs], [s for s, _ in ys]
    distinct = None not in x_seeds and len(set(x_seeds)) == len(x_seeds) and len(set(y_seeds)) == len(y_seeds)
    if distinct and set(x_seeds) == set(y_seeds) and len(x) >= 2:
        by_seed = dict(ys)
        deltas = [v - float(by_seed[s]) for s, v in xs]
        n = len(deltas)
        df = n - 1
        half = t_quantile(quantile, df) * math.sqrt(_variance(deltas) / n)
        spread = math.sqrt(_variance(deltas))
        return Difference(diff, diff - half, diff + half, "paired", float(df), len(x), len(y),
                          detectable_difference(spread, n, level, power), (spread,), level, power)
    if len(x) >= 2 and len(y) >= 2:
        spreads = (math.sqrt(_variance(x)), math.sqrt(_variance(y)))
        precision = dict(mdd=welch_detectable_difference(*spreads, len(x), len(y), level, power), spread=spreads,
                         level=level, power=power)
        vx, vy = _variance(x) / len(x), _variance(y) / len(y)
        se2 = vx + vy
        if se2 == 0.0:
            return Difference(diff, diff, diff, "welch", float("inf"), len(x), len(y), **precision)
        df = se2 ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
        half = t_quantile(quantile, df) * math.sqrt(se2)
        return Difference(diff, diff - half, diff + half, "welch", df, len(x), len(y), **precision)
    return Difference(diff, None, None, None, None, len(x), len(y), level=level, power=power)
