"""An always-valid sequential test of a canary against the champion on live per-item scores.

The mixture SPRT (Johari, Pekelis, Walsh, "Always Valid Inference", 2017/2022) on the
difference of two means: the difference of the arms' means, d, is taken as normal with the
variance V of a difference of means, and the likelihood ratio of an effect theta against none is
mixed over a half-normal prior of scale tau on theta's side. Each side's mixture is a
nonnegative (super)martingale while the challenger is no better (resp. no worse), so by Ville's
inequality it ever reaches 1/alpha with probability at most alpha: the test may be looked at
after every item and stopped at any time without inflating false promotions.

Per-item scores are bounded (accuracy on corrected labels 0/1, ratings 1-5, ROUGE-L 0-1). Each
arm's variance is its sample variance with one pseudo-item at each end of the scale added (the
"plus two" of Agresti and Coull: never zero, fading as 2/(n+2)), re-evaluated at the pooled mean
(see `variance_of_difference`) and never below the pooled variance. tau is a share of the scale's
span, so one setting fits every metric. Vectorised: the benchmark's seeds and the live test
call the same functions. Decision record: docs/decisions/0024-canary-sequential-test.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

Decision = Literal["promote", "abort", "continue", "expire"]
#: Decision codes of `decide`, by position.
DECISIONS: tuple[Decision, ...] = ("continue", "promote", "abort", "expire")
CONTINUE, PROMOTE, ABORT, EXPIRE = range(4)


@dataclass(frozen=True)
class Scale:
    """The bounds of a per-item score."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"a scale needs finite bounds low < high, not {self.low}..{self.high}")

    @property
    def span(self) -> float:
        """high - low."""
        return self.high - self.low


#: The live metrics a canary is judged on.
SCALES: dict[str, Scale] = {
    "accuracy": Scale(0.0, 1.0),
    "rating": Scale(1.0, 5.0),
    "rouge_l": Scale(0.0, 1.0),
}


class Sums(NamedTuple):
    """One arm's sufficient statistics: items, sum and sum of squares (scalars or arrays)."""

    n: float | NDArray[Any] = 0
    total: float | NDArray[Any] = 0.0
    total_sq: float | NDArray[Any] = 0.0


def accumulate(sums: Sums, values: Iterable[float], scale: Scale) -> Sums:
    """`sums` with `values` added; a value off the scale or not finite raises ValueError."""
    x = np.asarray(list(values), dtype=float)
    if x.size and not (np.all(np.isfinite(x)) and x.min() >= scale.low and x.max() <= scale.high):
        raise ValueError(f"scores must be finite and within {scale.low}..{scale.high}")
    return Sums(
        int(np.asarray(sums.n)) + x.size,
        float(np.asarray(sums.total)) + float(x.sum()),
        float(np.asarray(sums.total_sq)) + float((x * x).sum()),
    )


def moments(
    sums: Sums, scale: Scale
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(mean of the items, plus-two variance, plus-two mean), the means 0 without items.

    The plus-two mean is in units above the scale's low end; it lies strictly inside the span.
    """
    n = np.asarray(sums.n, dtype=float)
    total = np.asarray(sums.total, dtype=float)
    # Centred on the scale's low end, so sums of squares stay small and differences exact.
    s = total - n * scale.low
    q = np.asarray(sums.total_sq, dtype=float) - 2 * scale.low * total + n * scale.low**2
    m, s2, q2 = n + 2, s + scale.span, q + scale.span**2
    variance = np.maximum(q2 - s2 * s2 / m, 0.0) / (m - 1)
    return np.where(n > 0, total / np.maximum(n, 1), 0.0), variance, s2 / m


def pooled(a: Sums, b: Sums) -> Sums:
    """Both arms' items as one sample."""
    return Sums(*(np.add(x, y) for x, y in zip(a, b, strict=True)))


def variance_of_difference(a: Sums, b: Sums, scale: Scale) -> NDArray[np.float64]:
    """V, the variance of the difference of the arms' means, as the null hypothesis has it.

    An arm's own variance falls as its mean nears a bound, so a canary that drifts up by chance
    would look surer than it is (Wald's flaw, which the pooled score test fixes for 0/1). So each
    arm keeps the shape of its scores, its variance as a share of the most its mean allows
    ((mean - low)(high - mean), Bhatia and Davis), re-evaluated at the pooled mean both arms
    share under the null; for 0/1 scores that is the pooled variance. Never below the pooled
    variance itself, which steadies a small arm. An arm without items makes V infinite.
    """
    _, v_pool, u_pool = moments(pooled(a, b), scale)
    widest = u_pool * (scale.span - u_pool)
    out = np.zeros_like(v_pool)
    for arm in (a, b):
        n = np.asarray(arm.n, dtype=float)
        _, v, u = moments(arm, scale)
        at_null = v / (u * (scale.span - u)) * widest
        with np.errstate(divide="ignore", invalid="ignore"):
            out = out + np.where(n > 0, np.maximum(at_null, v_pool) / n, np.inf)
    return out


def log_mixture_ratios(
    champion: Sums, challenger: Sums, *, scale: Scale, tau: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(d, log ratio for "challenger better", log ratio for "challenger worse"), elementwise.

    With r = tau'^2 / V (tau' = tau * span), the half-normal mixture on the positive side is
    2 * (1 + r)^-1/2 * exp(z^2 r / (2 (1 + r))) * Phi(z sqrt(r / (1 + r))), z = d / sqrt(V).
    """
    d = moments(challenger, scale)[0] - moments(champion, scale)[0]
    v = variance_of_difference(champion, challenger, scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(np.isfinite(v), (tau * scale.span) ** 2 / v, 0.0)
        z = np.where(np.isfinite(v), d / np.sqrt(v), 0.0)
    shrink = r / (1 + r)
    common = math.log(2) - 0.5 * np.log1p(r) + 0.5 * z * z * shrink
    root = np.sqrt(shrink)
    return d, common + log_ndtr(z * root), common + log_ndtr(-z * root)


@dataclass(frozen=True)
class SequentialOptions:
    """The test's error rates, prior scale and limits (CanarySettings documents each rule)."""

    alpha: float = 0.05
    abort_alpha: float = 0.10
    tau: float = 0.05
    min_items: int = 100
    max_items: int = 5000
    max_hours: float = 168.0

    def __post_init__(self) -> None:
        if not (0 < self.alpha < 1 and 0 < self.abort_alpha < 1):
            raise ValueError("alpha and abort_alpha must lie strictly between 0 and 1")
        if not self.tau > 0 or not self.max_hours > 0:
            raise ValueError("tau and max_hours must be positive")
        if not 1 <= self.min_items <= self.max_items:
            raise ValueError("need 1 <= min_items <= max_items")


def decide(
    best_promote: ArrayLike,
    best_abort: ArrayLike,
    n_challenger: ArrayLike,
    options: SequentialOptions,
    hours: ArrayLike = 0.0,
) -> NDArray[np.int_]:
    """Decision codes (see DECISIONS) from the running maxima of the two log ratios.

    A crossing decides even on the look that reaches the limit; expiry keeps the champion.
    """
    promote = np.asarray(best_promote) >= -math.log(options.alpha)
    abort = np.asarray(best_abort) >= -math.log(options.abort_alpha)
    spent = (np.asarray(n_challenger) >= options.max_items) | (
        np.asarray(hours) >= options.max_hours
    )
    return np.select([promote, abort, spent], [PROMOTE, ABORT, EXPIRE], CONTINUE)


@dataclass(frozen=True)
class Verdict:
    """One look: the decision and the statistics a dashboard shows beside it."""

    decision: Decision
    difference: float  # challenger's mean minus champion's, in the metric's units
    lr_promote: float  # the mixture likelihood ratio for "challenger better", this look
    lr_abort: float
    p_promote: float  # always-valid p-values: 1 / the running maximum of the ratio, capped at 1
    p_abort: float
    n_champion: int
    n_challenger: int


@dataclass(frozen=True)
class SequentialTest:
    """The live test's state; `look` returns the next state and its verdict, never mutates."""

    scale: Scale
    options: SequentialOptions = field(default_factory=SequentialOptions)
    champion: Sums = field(default_factory=Sums)
    challenger: Sums = field(default_factory=Sums)
    best_promote: float = 0.0  # running maxima of the log ratios over looks past min_items
    best_abort: float = 0.0
    decision: Decision = "continue"

    def look(
        self,
        *,
        champion: Iterable[float] = (),
        challenger: Iterable[float] = (),
        hours: float = 0.0,
    ) -> tuple[SequentialTest, Verdict]:
        """Add the new scores of each arm, then decide; a decided test stays decided."""
        if not (math.isfinite(hours) and hours >= 0):
            raise ValueError("hours must be a finite number >= 0")
        a = accumulate(self.champion, champion, self.scale)
        b = accumulate(self.challenger, challenger, self.scale)
        d, up, down = (
            float(x) for x in log_mixture_ratios(a, b, scale=self.scale, tau=self.options.tau)
        )
        best_up, best_down = self.best_promote, self.best_abort
        # Looks before both arms have min_items do not count: their variance is too rough.
        if self.decision == "continue" and min(int(a.n), int(b.n)) >= self.options.min_items:
            best_up, best_down = max(best_up, up), max(best_down, down)
        decision = self.decision
        if decision == "continue":
            decision = DECISIONS[int(decide(best_up, best_down, b.n, self.options, hours))]
        state = replace(
            self,
            champion=a,
            challenger=b,
            best_promote=best_up,
            best_abort=best_down,
            decision=decision,
        )
        verdict = Verdict(
            decision=decision,
            difference=d,
            lr_promote=math.exp(min(up, 700.0)),
            lr_abort=math.exp(min(down, 700.0)),
            p_promote=math.exp(-best_up),
            p_abort=math.exp(-best_down),
            n_champion=int(a.n),
            n_challenger=int(b.n),
        )
        return state, verdict
