"""Frequentist comparison of a variant against the control, on per-viewer values.

The formulas are those GrowthBook's and PostHog's current engines share: Welch's t-test on
per-viewer values (a proportion's variance is p(1-p)), the relative effect (B-A)/|A| with its
delta-method variance, Welch-Satterthwaite degrees of freedom, and the chance to win Φ(effect/se)
under a flat prior. Every distribution comes from scipy.stats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

ALPHA = 0.05
POWER = 0.8
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class Arm:
    """One variant's per-viewer values, summarised: count, mean and variance."""

    units: int
    mean: float
    variance: float


def proportion_arm(units: int, conversions: int) -> Arm:
    """A rate's arm: mean p, variance p(1-p) (the per-viewer value is 0 or 1)."""
    p = conversions / units if units else 0.0
    return Arm(units, p, p * (1.0 - p))


def mean_arm(units: int, total: float, total_squares: float) -> Arm:
    """A mean's arm from the sum and sum of squares: the sample variance (n-1 denominator)."""
    if units == 0:
        return Arm(0, 0.0, 0.0)
    mean = total / units
    variance = (total_squares - units * mean * mean) / (units - 1) if units > 1 else 0.0
    return Arm(units, mean, max(variance, 0.0))


@dataclass(frozen=True)
class Comparison:
    relative_lift: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    chance_to_win: float | None
    absolute_diff: float | None
    absolute_ci95: tuple[float, float] | None
    viewers_needed: int | None


def welch_df(a: Arm, b: Arm) -> float | None:
    """Welch-Satterthwaite degrees of freedom, None when undefined."""
    va, vb = a.variance / a.units, b.variance / b.units
    denominator = va * va / (a.units - 1) + vb * vb / (b.units - 1)
    if denominator <= 0:
        return None
    return (va + vb) ** 2 / denominator


def compare(control: Arm, variant: Arm) -> Comparison:
    """The variant against the control; None for what the data cannot give."""
    empty = Comparison(None, None, None, None, None, None, None)
    if control.units < 2 or variant.units < 2:
        return empty
    df = welch_df(control, variant)
    absolute = variant.mean - control.mean
    abs_se = math.sqrt(control.variance / control.units + variant.variance / variant.units)
    absolute_ci: tuple[float, float] | None = None
    if df is not None and abs_se > 0:
        half = float(stats.t.ppf(1 - ALPHA / 2, df)) * abs_se
        absolute_ci = (absolute - half, absolute + half)
    needed = viewers_needed(control, variant)
    if control.mean == 0 or df is None:
        return Comparison(None, None, None, None, absolute, absolute_ci, needed)
    effect = absolute / abs(control.mean)
    # Delta method for the ratio of the two means (they are independent).
    variance = variant.variance / (variant.units * control.mean**2) + (
        control.variance * variant.mean**2
    ) / (control.units * control.mean**4)
    se = math.sqrt(variance)
    if se == 0:
        return Comparison(effect, None, None, None, absolute, absolute_ci, needed)
    t_stat = effect / se
    p_value = float(2 * stats.t.sf(abs(t_stat), df))
    half = float(stats.t.ppf(1 - ALPHA / 2, df)) * se
    chance = float(stats.norm.cdf(t_stat))
    return Comparison(
        effect, (effect - half, effect + half), p_value, chance, absolute, absolute_ci, needed
    )


def viewers_needed(control: Arm, variant: Arm) -> int | None:
    """Viewers per variant still needed to detect the observed difference with 80 % power
    in a two-sided test at 5 %: n = (z₁₋α/₂ + z_power)² (σ²_A + σ²_B) / Δ², less those seen."""
    delta = variant.mean - control.mean
    if delta == 0:
        return None
    z = float(stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER))
    per_arm = math.ceil(z * z * (control.variance + variant.variance) / (delta * delta))
    return max(0, per_arm - min(control.units, variant.units))


def srm_p_value(units: list[int]) -> float | None:
    """Chi-square goodness of fit of the units against an equal split (None without units)."""
    if sum(units) == 0 or len(units) < 2:
        return None
    return float(stats.chisquare(units).pvalue)
