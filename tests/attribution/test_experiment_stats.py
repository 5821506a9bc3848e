"""Experiment statistics against scipy's own tests and the formulas written out independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from services.attribution.experiments import stats

# Two proportion arms: (viewers, conversions) of the control, then of the variant.
COUNTS = ("n_a", "c_a", "n_b", "c_b")
TYPICAL_COUNTS = [(1000, 100, 1000, 125), (5000, 400, 4800, 380), (250, 30, 260, 20)]


def _arm_from_values(values: np.ndarray) -> stats.Arm:
    return stats.mean_arm(len(values), float(values.sum()), float((values**2).sum()))


@pytest.mark.parametrize("seed", range(8))
def test_mean_metric_absolute_interval_and_df_equal_scipys_welch_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.exponential(30.0, size=int(rng.integers(20, 400))) * (rng.random(1)[0] + 0.5)
    b = rng.exponential(33.0, size=int(rng.integers(20, 400)))
    control, variant = _arm_from_values(a), _arm_from_values(b)
    assert control.variance == pytest.approx(float(np.var(a, ddof=1)), rel=1e-9)
    reference = sps.ttest_ind(b, a, equal_var=False)
    assert stats.welch_df(control, variant) == pytest.approx(reference.df, rel=1e-9)
    result = stats.compare(control, variant)
    low, high = reference.confidence_interval(0.95)
    assert result.absolute_diff == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert result.absolute_ci95 is not None
    assert result.absolute_ci95[0] == pytest.approx(low, rel=1e-9)
    assert result.absolute_ci95[1] == pytest.approx(high, rel=1e-9)


@pytest.mark.parametrize(COUNTS, [*TYPICAL_COUNTS, (80, 40, 90, 60)])
def test_proportion_absolute_interval_bounds_are_where_scipys_test_gives_p_005(
    n_a: int, c_a: int, n_b: int, c_b: int
) -> None:
    """A proportion's variance is p(1-p): at each end of the interval, Welch's test of the
    shifted difference (scipy, from the same summary statistics) gives exactly p = 0.05."""
    control, variant = stats.proportion_arm(n_a, c_a), stats.proportion_arm(n_b, c_b)
    result = stats.compare(control, variant)
    assert result.absolute_ci95 is not None
    pa, pb = c_a / n_a, c_b / n_b
    for bound in result.absolute_ci95:
        shifted = sps.ttest_ind_from_stats(
            pb - bound,
            math.sqrt(pb * (1 - pb)),
            n_b,
            pa,
            math.sqrt(pa * (1 - pa)),
            n_a,
            equal_var=False,
        )
        assert shifted.pvalue == pytest.approx(0.05, abs=1e-9)


def _relative_reference(
    ma: float, va: float, na: int, mb: float, vb: float, nb: int
) -> tuple[float, float, float, float, float]:
    """GrowthBook's frequentist relative effect, written out term by term."""
    lift = (mb - ma) / abs(ma)
    var = vb / (nb * ma**2) + va * mb**2 / (na * ma**4)
    se = math.sqrt(var)
    df = (va / na + vb / nb) ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    t = sps.t(df)
    p = 2 * (1 - t.cdf(abs(lift / se)))
    q = t.ppf(0.975)
    return lift, lift - q * se, lift + q * se, p, sps.norm.cdf(lift / se)


@pytest.mark.parametrize(COUNTS, [*TYPICAL_COUNTS, (12, 3, 15, 6)])  # and a tiny sample
def test_relative_lift_interval_p_value_and_chance_to_win(
    n_a: int, c_a: int, n_b: int, c_b: int
) -> None:
    control, variant = stats.proportion_arm(n_a, c_a), stats.proportion_arm(n_b, c_b)
    result = stats.compare(control, variant)
    lift, low, high, p, chance = _relative_reference(
        control.mean, control.variance, n_a, variant.mean, variant.variance, n_b
    )
    assert result.relative_lift == pytest.approx(lift, rel=1e-12)
    assert result.ci95 == pytest.approx((low, high), rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-7)
    assert result.chance_to_win == pytest.approx(chance, rel=1e-9)


def test_worked_example_ten_versus_twelve_and_a_half_percent() -> None:
    """1,000 viewers each, 100 vs 125 clicks: lift 25 %, and by hand (delta method)
    se² = 0.125·0.875/(1000·0.1²) + 0.125²·0.1·0.9/(1000·0.1⁴) = 0.0109375 + 0.0140625 = 0.025,
    se = 0.158114, t = 1.5811, df ≈ 1979: p ≈ 0.1140, chance to win Φ(1.5811) ≈ 0.9431."""
    result = stats.compare(stats.proportion_arm(1000, 100), stats.proportion_arm(1000, 125))
    assert result.relative_lift == pytest.approx(0.25)
    assert result.p_value == pytest.approx(0.1140, abs=5e-4)
    assert result.chance_to_win == pytest.approx(0.9431, abs=5e-4)
    assert result.ci95 == pytest.approx(
        (0.25 - 1.96115 * 0.158114, 0.25 + 1.96115 * 0.158114), abs=1e-4
    )


def test_zero_control_and_tiny_arms_give_nulls_not_zeros() -> None:
    zero = stats.compare(stats.proportion_arm(100, 0), stats.proportion_arm(100, 5))
    assert zero.relative_lift is None
    assert zero.p_value is None
    assert zero.chance_to_win is None
    assert zero.absolute_diff == pytest.approx(0.05)
    tiny = stats.compare(stats.proportion_arm(1, 1), stats.proportion_arm(100, 5))
    assert tiny == stats.Comparison(None, None, None, None, None, None, None)


def test_srm_against_the_chi_square_by_hand_and_scipy() -> None:
    # 100 vs 120 planned 50/50: expected 110 each, χ² = 2·10²/110 = 1.818, 1 df.
    assert stats.srm_p_value([100, 120]) == pytest.approx(sps.chi2.sf(200 / 110, 1), rel=1e-12)
    assert stats.srm_p_value([100, 120]) == pytest.approx(0.1775, abs=1e-4)
    # 50,000 vs 51,000: χ² = 1,000²/(2·50,500)·... = 9.90, p ≈ 0.00165 — no mismatch yet;
    # 50,000 vs 52,000 is p ≈ 4e-10 — a mismatch.
    assert stats.srm_p_value([50_000, 51_000]) == pytest.approx(0.00165, abs=2e-5)
    assert stats.srm_p_value([50_000, 52_000]) < stats.SRM_THRESHOLD  # type: ignore[operator]  # not None here
    three = [300, 330, 270]
    assert stats.srm_p_value(three) == pytest.approx(sps.chisquare(three).pvalue)
    assert stats.srm_p_value([0, 0]) is None


@pytest.mark.parametrize(("c_a", "c_b"), [(100, 115), (200, 230), (50, 40)])
def test_viewers_needed_reach_eighty_percent_power(c_a: int, c_b: int) -> None:
    control, variant = stats.proportion_arm(1000, c_a), stats.proportion_arm(1000, c_b)
    needed = stats.viewers_needed(control, variant)
    assert needed is not None
    n = needed + 1000
    delta = abs(variant.mean - control.mean)
    se = math.sqrt((control.variance + variant.variance) / n)
    power = sps.norm.cdf(delta / se - sps.norm.ppf(0.975))
    assert 0.8 <= power < 0.8 + 1e-3
    assert stats.viewers_needed(control, control) is None
