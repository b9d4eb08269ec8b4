"""Statistics for seeded ablations: paired lifts, ties, multiple testing, power, adaptive seeds,
factorial effects. Pure numpy/scipy and side-effect free (apart from one warning, see
`factorial_effects`); ``from ablate import stats; stats.<name>`` is the interface.

Every arm of an ablation is trained with the same seeds as the baseline, so seed ``s`` of an
arm and seed ``s`` of the baseline share data order, initialisation and augmentation draws.
Seed-to-seed noise is large and mostly common to both, so we analyse the *paired differences*
``d_s = arm_s - baseline_s``: their spread excludes the shared seed effect, which makes the
interval for the mean lift much narrower than comparing two independent means would.

* Intervals are Student t intervals ``mean ± t_{(1+c)/2, n-1} * sd / sqrt(n)`` (`paired`).
* Tests are the paired t-test, the Wilcoxon (1945) signed-rank test (both delegated to SciPy so
  the numbers are the textbook ones), or the exact paired sign-flip randomisation test (Fisher
  1935), which assumes only that the differences are symmetric about 0 under H0 and can never
  give p = 0. Ties are judged to a tolerance (`TIE_RTOL`): with zero spread the t statistic is
  0/0 or x/0, so there is no p-value (NaN, ``zero_variance``), and Holm counts it as p = 1.
* Equivalence (a lift no larger than ± a margin) is the two one-sided t-tests (TOST).
* Many arms mean many tests; Holm's (1979) step-down procedure controls the family-wise error
  rate without assuming independence (`multiple`).
* Power of the two-sided paired t-test uses the noncentral t distribution: under a true mean
  difference ``delta`` the statistic is ``nct(df=n-1, nc=delta*sqrt(n)/sd)`` (`power`).
* Adaptive seeding is an internal pilot: one seed count for all arms, chosen once from the
  root mean square of the pilot differences, blind to their signs (`adaptive`).
* Two-level factorial designs are fitted by OLS on ±1 contrasts with seed blocks; an effect is
  ``2 * coefficient`` (the +1 mean minus the -1 mean when the data are balanced) (`effects`).
"""

from __future__ import annotations

from ablate.stats._checks import TIE_RTOL, snap_ties, tie_tolerance
from ablate.stats.adaptive import pilot_sd, pilot_seed_count
from ablate.stats.effects import Effect, factorial_effects
from ablate.stats.multiple import holm
from ablate.stats.paired import (
    TESTS,
    PairedLift,
    Summary,
    equivalence_p_values,
    paired_lift,
    paired_lifts,
    sign_flip_p_value,
    smallest_p_value,
    summarize,
    summarize_rows,
)
from ablate.stats.power import min_detectable_lift, seeds_for_ci_width, seeds_to_detect

__all__ = [
    "Summary", "summarize", "summarize_rows", "PairedLift", "paired_lift", "paired_lifts", "holm",
    "min_detectable_lift", "seeds_for_ci_width", "seeds_to_detect", "Effect", "factorial_effects",
    "sign_flip_p_value", "smallest_p_value", "equivalence_p_values", "pilot_sd", "pilot_seed_count",
    "TESTS", "TIE_RTOL", "tie_tolerance", "snap_ties",
]
