import math

import numpy as np
import pytest
from scipy import stats as sps

from benchmark.results.stats import bootstrap_compare, compare, holm, stars, summarize


def test_summarize_matches_numpy_and_t_interval():
    x = [80.0, 81.0, 82.5, 79.5]
    s = summarize(x)
    assert s.mean == pytest.approx(np.mean(x))
    assert s.std == pytest.approx(np.std(x, ddof=1))
    assert s.n == 4
    lo, hi = sps.t.interval(0.95, 3, loc=np.mean(x), scale=sps.sem(x))
    assert s.ci == pytest.approx((hi - lo) / 2)
    assert summarize({0: 1.0, 1: 3.0}).mean == 2.0


def test_summarize_small_n():
    one = summarize([5.0])
    assert one.mean == 5.0 and one.n == 1 and math.isnan(one.std) and math.isnan(one.ci)
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)


def test_compare_welch_and_paired_by_seed():
    a, b = {0: 80.0, 1: 81.0, 2: 82.5}, {0: 70.0, 1: 71.5, 2: 71.0}
    welch = compare(list(a.values()), list(b.values()))
    assert welch.test == "welch"
    assert welch.p == pytest.approx(sps.ttest_ind([80, 81, 82.5], [70, 71.5, 71], equal_var=False).pvalue)
    paired = compare(a, b)  # same seeds -> paired automatically
    assert paired.test == "paired"
    assert paired.p == pytest.approx(sps.ttest_rel([80, 81, 82.5], [70, 71.5, 71]).pvalue)
    assert paired.p != pytest.approx(welch.p)
    # pairing follows seeds, not insertion order
    shuffled = {2: 71.0, 0: 70.0, 1: 71.5}
    assert compare(a, shuffled).p == pytest.approx(paired.p)
    assert compare(a, b, paired=False).test == "welch"


def test_compare_seed_mismatch_and_small_n():
    a, b = {0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.5, 5: 2.0}
    assert compare(a, b).test == "welch"
    with pytest.raises(ValueError, match=r"only in a \[2\], only in b \[5\]"):
        compare(a, b, paired=True)
    c = compare([1.0], [2.0, 3.0])
    assert math.isnan(c.p) and "n<2" in c.note and stars(c.p) == ""


def test_stars_thresholds():
    assert [stars(p) for p in (0.01, 0.004, 0.0009, 0.00009, 0.005)] == ["", "*", "**", "***", ""]
    assert stars(0.03, thresholds=(0.05, 0.01)) == "*"
    assert stars(float("nan")) == ""
    with pytest.raises(ValueError, match="decreasing"):
        stars(0.01, thresholds=(0.001, 0.01))


def test_holm_hand_computed():
    # sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06 (monotone), 0.04*1 -> max(0.06, 0.04)=0.06
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, float("nan"), 0.04])  # NaN is not a hypothesis: m = 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([]) == []


def test_two_constant_samples_get_no_test():
    """kNN on a fixed encoder repeats one value per seed: that is one number each, not a p of 0."""
    from benchmark.results.stats import compare

    for paired in (True, False):
        a, b = {0: 65.3, 1: 65.3, 2: 65.3}, {0: 73.0, 1: 73.0, 2: 73.0}
        result = compare(a, b, paired=paired)
        assert result.test == "none" and result.p != result.p and "zero variance" in result.note
    # one constant side is a one-sample test against a constant: no test either (kNN of one pretraining)
    one_side = compare({0: 1.0, 1: 2.0}, {0: 3.0, 1: 3.0})
    assert one_side.test == "none" and one_side.p != one_side.p and "zero variance" in one_side.note


@pytest.mark.parametrize("seed", range(20))
def test_tests_and_intervals_equal_scipy_stats(seed):
    """benchmark.results.stats writes the t-tests out on scipy.special (a faster import): they must be scipy.stats'."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 12, size=2)
    x = rng.normal(70, rng.uniform(0.1, 10), n)
    y = rng.normal(70 + rng.normal(0, 5), rng.uniform(0.1, 10), m)
    assert compare(list(x), list(y)).p == pytest.approx(sps.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-9)
    pair = y[:n] if m >= n else np.resize(y, n)
    paired = compare(dict(enumerate(x)), dict(enumerate(pair)))
    assert paired.test == "paired" and paired.p == pytest.approx(sps.ttest_rel(x, pair).pvalue, rel=1e-9)
    lo, hi = sps.t.interval(0.95, n - 1, loc=np.mean(x), scale=sps.sem(x))
    assert summarize(x).ci == pytest.approx((hi - lo) / 2, rel=1e-9)


def test_no_test_against_a_constant_side_and_constant_differences_as_scipy():
    x, y = [1.0, 2.0, 4.0], [3.0, 3.0, 3.0]
    assert compare(x, y).test == "none" and math.isnan(compare(x, y).p)  # scipy would test against the constant
    shifted = compare({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 1.0, 2: 3.0})  # every difference 1: p = 0 as in scipy
    assert shifted.p == 0.0 and shifted.test == "paired"
    same = compare({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert math.isnan(same.p) and "zero variance" in same.note


def test_paired_bootstrap_p_is_twice_the_smaller_tail_with_the_plus_one_correction():
    a = np.linspace(70, 80, 999)
    assert bootstrap_compare(a + 5, a).p == pytest.approx(2 / 1000)  # every resample favours a + 5
    assert bootstrap_compare(a, a).p == 1.0  # every difference is 0: both tails hold all of them
    d = np.r_[np.full(100, -1.0), np.full(899, 1.0)]
    cmp = bootstrap_compare(a + d, a)
    assert cmp.p == pytest.approx(2 * 101 / 1000) and cmp.test == "bootstrap"
    assert math.isnan(bootstrap_compare([math.nan], [1.0]).p)
