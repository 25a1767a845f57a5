"""The statistics the benchmark report uses, small enough to check by hand.

- `describe(values)`: n, mean, the sample standard deviation (n - 1 in the denominator;
  none for a single value) and the half width of the mean's 95% t interval,
  t(0.975, n - 1) * sd / sqrt(n) (none for a single value).
- `paired_difference(a, b)`: the differences a_i - b_i of runs paired by seed (same data
  split, same initialisation), their mean, sample standard deviation, and the 95% confidence
  interval of the mean difference from Student's t with n - 1 degrees of freedom:
  mean +- t(0.975, n - 1) * sd / sqrt(n). With one pair there is no interval (the spread is
  unknown), and the result says so.

Worked example: differences [1, 2, 3] have mean 2, sd 1, t(0.975, 2) = 4.303, so the interval
is 2 +- 4.303 / sqrt(3) = 2 +- 2.484, i.e. [-0.484, 4.484]: it includes zero.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

from scipy import stats as _scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """n values: their mean, sample standard deviation and the mean's 95% t half width (None when n < 2)."""

    n: int
    mean: float | None
    std: float | None
    values: tuple[float, ...]
    half_width: float | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "values": list(self.values)}


@dataclass(frozen=True)
class PairedDifference:
    """Mean of paired differences a - b with its 95% t interval (None when n < 2)."""

    n: int
    mean: float | None
    sd: float | None
    t: float | None
    half_width: float | None
    low: float | None
    high: float | None
    diffs: tuple[float, ...]
    keys: tuple

    @property
    def has_ci(self) -> bool:
        return self.low is not None

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or entirely below zero."""
        return self.has_ci and (self.low > 0 or self.high < 0)

    @property
    def no_ci_reason(self) -> str | None:
        if self.n == 0:
            return "no pairs"
        if self.n == 1:
            return "one pair: no interval"
        return None

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "sd": self.sd, "t_quantile": self.t,
                "half_width": self.half_width, "ci95": [self.low, self.high] if self.has_ci else None,
                "no_ci_reason": self.no_ci_reason, "diffs": list(self.diffs), "paired_by": list(self.keys)}


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def sample_std(values: Sequence[float]) -> float | None:
    """Standard deviation with n - 1 in the denominator; None for fewer than two values."""
    if len(values) < 2:
        return None
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided t quantile for the mean of n values (n - 1 degrees of freedom)."""
    return float(_scipy_stats.t.ppf(0.5 + confidence / 2, n - 1))


def describe(values: Sequence[float]) -> Summary:
    values = tuple(float(v) for v in values)
    if not values:
        return Summary(0, None, None, ())
    sd = sample_std(values)
    half = None if sd is None else t_quantile(len(values)) * sd / math.sqrt(len(values))
    return Summary(len(values), mean(values), sd, values, half)


def paired_difference(a: Mapping, b: Mapping, confidence: float = CONFIDENCE) -> PairedDifference:
    """a - b over the keys (seeds) both have, with the t interval of the mean difference."""
    keys = tuple(sorted(set(a) & set(b)))
    diffs = tuple(float(a[k]) - float(b[k]) for k in keys)
    n = len(diffs)
    if n == 0:
        return PairedDifference(0, None, None, None, None, None, None, (), ())
    m = mean(diffs)
    sd = sample_std(diffs)
    if sd is None:
        return PairedDifference(n, m, None, None, None, None, None, diffs, keys)
    t = t_quantile(n, confidence)
    half = t * sd / math.sqrt(n)
    return PairedDifference(n, m, sd, t, half, m - half, m + half, diffs, keys)
