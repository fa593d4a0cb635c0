"""Summaries and significance tests over seeds, the way the paper's tables report them.

The reference code had no p-value code at all; the paper marks rows by p-value vs TOWER
(Table 1: * p<0.005, ** p<0.001, *** p<0.0001). Everything here is plain numbers in, numbers out.

The t-tests and intervals are written out on Student's t distribution from ``scipy.special``
(``stdtr`` / ``stdtrit``) rather than taken from ``scipy.stats``, whose import alone costs a
leaderboard rebuild about half a second; ``tests/benchmark/test_stats.py`` checks them against
``scipy.stats.ttest_rel`` / ``ttest_ind(equal_var=False)`` / ``t.interval``.
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping, NamedTuple, Sequence, Union

import numpy as np
from scipy import special

PAPER_THRESHOLDS = (0.005, 0.001, 0.0001)  # Table 1's caption

# Seed -> value (pairs by seed) or plain values (unpaired).
Values = Union[Mapping[int, float], Sequence[float]]


class Summary(NamedTuple):
    """mean, sample std (ddof=1), n, and the half-width of the 95% t-interval (mean ± ci)."""

    mean: float
    std: float
    n: int
    ci: float


class Comparison(NamedTuple):
    """p-value of a two-sided t-test, which test gave it, and why it is NaN when it is."""

    p: float
    test: str  # "paired" | "welch" | "bootstrap" | "none"
    note: str = ""


def _array(values: Values) -> np.ndarray:
    v = values.values() if isinstance(values, Mapping) else values
    return np.asarray(list(v), dtype=np.float64)


def summarize(values: Values, confidence: float = 0.95) -> Summary:
    """Mean ± std over seeds with a t confidence interval; std and ci are NaN below two values."""
    x = _array(values)
    n = len(x)
    if n == 0:
        return Summary(math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(mean, math.nan, 1, math.nan)
    std = float(x.std(ddof=1))
    ci = float(special.stdtrit(n - 1, 0.5 + confidence / 2) * std / math.sqrt(n))
    return Summary(mean, std, n, ci)


def compare(a: Values, b: Values, paired: bool | None = None) -> Comparison:
    """Two-sided t-test of ``a`` vs ``b``: paired by seed, or Welch's (unequal variances).

    paired=None pairs when both are seed->value mappings over the same seeds; paired=True
    requires that (a clear error otherwise); paired=False always uses Welch's test.
    """
    same_seeds = isinstance(a, Mapping) and isinstance(b, Mapping) and set(a) == set(b)
    if paired is None:
        paired = same_seeds
    elif paired and not same_seeds:
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)):
            raise ValueError("compare: paired=True needs seed -> value mappings for both sides")
        raise ValueError(f"compare: paired=True but seeds differ: only in a {sorted(set(a) - set(b))}, "
                         f"only in b {sorted(set(b) - set(a))}")
    if paired:
        seeds = sorted(a)
        x, y = np.array([a[s] for s in seeds], float), np.array([b[s] for s in seeds], float)
    else:
        x, y = _array(a), _array(b)
    test = "paired" if paired else "welch"
    if min(len(x), len(y)) < 2:
        return Comparison(math.nan, "none", f"n<2 (n={len(x)} vs {len(y)}): no test")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        # every seed of one side gave one value (kNN on a fixed encoder): its std is 0 because nothing varied, and
        # a test against it is a one-sample test against a constant, whose p-value says nothing about the init
        return Comparison(math.nan, "none", "one value on every seed (zero variance): no test")
    p = _paired_p(x - y) if paired else _welch_p(x, y)
    return Comparison(p, test, "" if math.isfinite(p) else "zero variance: no test")


def bootstrap_compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Two-sided p of a paired bootstrap: ``a[i]`` and ``b[i]`` are two inits' scores on the same resample ``i`` of
    the test set, so ``a - b`` is the difference's bootstrap distribution; p = twice its smaller tail beyond 0,
    with the +1 correction that keeps a p from 1,000 resamples at or above 1/1001."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return Comparison(math.nan, "none", "no resample scored both rows: no test")
    tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
    return Comparison(min(1.0, 2 * (tail + 1) / (len(d) + 1)), "bootstrap",
                      f"paired bootstrap over test images ({len(d)} resamples)")


def _two_sided_p(diff: float, se: float, df: float) -> float:
    """P(|T_df| >= |diff / se|); as scipy: a zero standard error gives p = 0 for a nonzero difference, NaN for none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.float64(diff) / np.float64(se)
    if math.isnan(t):
        return math.nan
    return float(2 * special.stdtr(df, -abs(t)))


def _paired_p(d: np.ndarray) -> float:
    """Paired t-test on the differences ``d`` (scipy.stats.ttest_rel)."""
    n = len(d)
    return _two_sided_p(d.mean(), d.std(ddof=1) / math.sqrt(n), n - 1)


def _welch_p(x: np.ndarray, y: np.ndarray) -> float:
    """Welch's t-test, with the Welch-Satterthwaite degrees of freedom (scipy.stats.ttest_ind(equal_var=False))."""
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one constant side makes a term 0/0: df from the other
        df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return _two_sided_p(x.mean() - y.mean(), math.sqrt(vx + vy), df)


def stars(p: float, thresholds: Sequence[float] = PAPER_THRESHOLDS) -> str:
    """One star per threshold that ``p`` is strictly below; "" for NaN or not significant."""
    if list(thresholds) != sorted(thresholds, reverse=True):
        raise ValueError(f"stars: thresholds must be decreasing, got {tuple(thresholds)}")
    if p is None or not math.isfinite(p):
        return ""
    return "*" * sum(p < t for t in thresholds)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order (step-down, made monotone, capped at 1).

    NaNs stay NaN and do not count towards the number of hypotheses.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def wilcoxon_p(a: Mapping[int, float], b: Mapping[int, float]) -> float:
    """Two-sided exact Wilcoxon signed-rank p-value of the paired differences ``a - b`` (zero differences dropped,
    tied ranks averaged; the exact null distribution by enumerating every sign pattern, so small n is exact, as
    ``scipy.stats.wilcoxon(method="exact")`` without ties). NaN when seeds differ or fewer than 2 nonzero pairs.
    Above 16 pairs the normal approximation with the tie-corrected variance is used."""
    if set(a) != set(b):
        return math.nan
    d = np.array([a[s] - b[s] for s in sorted(a)], dtype=np.float64)
    d = d[d != 0]
    n = len(d)
    if n < 2:
        return math.nan
    order = np.argsort(np.abs(d), kind="stable")
    ranks = np.empty(n)
    absd = np.abs(d)[order]
    i = 0
    while i < n:  # average the ranks of tied |d|
        j = i
        while j + 1 < n and absd[j + 1] == absd[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    w_plus = float(ranks[d > 0].sum())
    total = float(ranks.sum())
    stat = min(w_plus, total - w_plus)
    if n > 16:
        mean = total / 2
        var = float((ranks ** 2).sum()) / 4
        z = (abs(w_plus - mean) - 0.5) / math.sqrt(var)
        return float(min(1.0, special.erfc(z / math.sqrt(2))))
    signs = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.float64)
    sums = signs @ ranks  # W+ of every sign pattern under the null
    lower = np.minimum(sums, total - sums)
    return float(min(1.0, np.mean(lower <= stat + 1e-9)))


def min_detectable_difference(sd: float, n: int, alpha: float = PAPER_THRESHOLDS[0], power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired t-test at ``alpha`` detects with probability ``power``,
    given the std ``sd`` of the paired differences over ``n`` seeds: (t_{1-alpha/2} + t_{power}) * sd / sqrt(n),
    both quantiles with n - 1 degrees of freedom (the usual approximation to the noncentral t)."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    df = n - 1
    return float((special.stdtrit(df, 1 - alpha / 2) + special.stdtrit(df, power)) * sd / math.sqrt(n))


def seeds_needed(gap: float, sd: float, alpha: float = PAPER_THRESHOLDS[0], power: float = 0.8,
                 most: int = 10_000) -> int | None:
    """How many paired seeds make ``gap`` detectable (``min_detectable_difference`` <= |gap|); None: more than
    ``most`` or no gap to detect."""
    if not (math.isfinite(gap) and math.isfinite(sd)) or gap == 0:
        return None
    if sd == 0:
        return 2
    lo, hi = 2, most
    if min_detectable_difference(sd, hi, alpha, power) > abs(gap):
        return None
    while lo < hi:  # the detectable difference falls with n: bisect for the first n that reaches the gap
        mid = (lo + hi) // 2
        if min_detectable_difference(sd, mid, alpha, power) <= abs(gap):
            hi = mid
        else:
            lo = mid + 1
    return lo
