"""Which seeds each stage of a search runs on: selection apart from inference.

A search's `seeds:` are split in order into three disjoint sets:

1. **search**: the first seed. Every sampled configuration runs once on it; the study ranks them
   and the top `validate.top_k` distinct ones are the finalists.
2. **select**: the next `validate.select_seeds` seeds (default 3; none when there is only one
   finalist). Every finalist runs on them; the best mean chooses the winner and the runner-up.
3. **report**: the remaining seeds (or exactly `validate.report_seeds` of them; at least 2). The
   winner, the runner-up, the hand-picked values (`compare_to`) and, with `per_arm`, each arm's
   winner run on them, paired; every mean, CI, lift and p a search report prints comes from these.

Choosing on one set of runs and reporting on another keeps the winner's curse out of the report:
the best of several noisy means is biased upward and its interval too optimistic when the same
runs that chose it also measure it, but the reporting runs never took part in the choice (sample
splitting; the simulations in tests/search/test_search_selection.py check coverage and error rates).
A search with nothing to validate (`validate: false`, no `compare_to`, no `per_arm`) runs on one
seed. `check_stages` refuses a spec whose `seeds:` do not fit the stages when it loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

if TYPE_CHECKING:  # pragma: no cover
    from ablate.design.spec import Spec

DEFAULT_SELECT_SEEDS = 3
MIN_REPORT_SEEDS = 2      # a mean over one seed has no interval


@dataclass(frozen=True)
class StageSeeds:
    search: tuple[int, ...]
    select: tuple[int, ...]
    report: tuple[int, ...]
    top_k: int                 # finalists per study (0: no validation round)

    @property
    def validates(self) -> bool:
        return self.top_k > 0


def finalists_per_study(search) -> int:
    """Finalists a study passes on: `validate.top_k`; 1 when the round is off but `compare_to`
    or `per_arm` still need a winner on the report seeds; 0 when nothing follows the search."""
    if search.validate is not None:
        return search.validate.top_k
    return 1 if search.compare_to or search.per_arm else 0


def stage_counts(search, n_seeds: int) -> tuple[int, int, int | None]:
    """(search, select, report) seed counts a search asks for; report None: the rest of `n_seeds`."""
    k = finalists_per_study(search)
    if k == 0:
        return 1, 0, 0
    v = search.validate
    select = (v.select_seeds if v is not None and v.select_seeds is not None
              else (DEFAULT_SELECT_SEEDS if k > 1 else 0))
    report = v.report_seeds if v is not None else None
    return 1, select, report


def stage_seeds(spec: Spec) -> StageSeeds:
    """The seeds of each stage of `spec`'s search (a spec that loaded fits them: `check_stages`)."""
    values = spec.seeds.values
    n_search, n_select, n_report = stage_counts(spec.search, len(values))
    if n_report is None:
        n_report = len(values) - n_search - n_select
    a, b = n_search, n_search + n_select
    return StageSeeds(values[:a], values[a:b], values[b:b + n_report], finalists_per_study(spec.search))


def check_stages(spec: Spec, fail) -> None:
    """Refuse `seeds:` and `search.validate` that contradict each other (see the module doc)."""
    s = spec.search
    n = len(spec.seeds.values)
    if spec.seeds.adaptive is not None:
        raise fail(("seeds", "adaptive"), "adaptive seeds add seeds to the arms of a design; a search splits its "
                                          "seeds into fixed stages (search, select, report): remove 'adaptive' "
                                          "and list the seeds")
    k = finalists_per_study(s)
    v = s.validate
    if k == 0:
        if n != 1:
            raise fail(("seeds",), f"with 'validate: false' and no 'compare_to' or 'per_arm', the search runs each "
                                   f"configuration once, on the first seed, and nothing else: 'seeds' lists {n} "
                                   f"values; give 'seeds: 1', or turn the validation round on")
        return
    if v is not None and k == 1 and v.select_seeds:
        raise fail(("search", "validate", "select_seeds"),
                   f"with 'top_k: 1' the search's best configuration is the only finalist, so there is nothing to "
                   f"select: remove 'select_seeds' (given {v.select_seeds}) or raise 'top_k'")
    n_search, n_select, n_report = stage_counts(s, n)
    words = (f"a search splits 'seeds' in order: {n_search} for the search, {n_select} to choose among the "
             f"finalists (search.validate.select_seeds), then the seeds the report is measured on "
             f"(search.validate.report_seeds, at least {MIN_REPORT_SEEDS})")
    if n_report is None:
        rest = n - n_search - n_select
        if rest < MIN_REPORT_SEEDS:
            need = n_search + n_select + MIN_REPORT_SEEDS
            raise fail(("seeds",), f"{words}; 'seeds' lists {n} value(s), which leaves {max(rest, 0)} to report on: "
                                   f"give at least {need} seeds (e.g. 'seeds: {need + 1}' reports on "
                                   f"{MIN_REPORT_SEEDS + 1}), or fewer 'select_seeds'")
        return
    need = n_search + n_select + n_report
    if n != need:
        raise fail(("search", "validate", "report_seeds"),
                   f"{words}; that is {n_search} + {n_select} + {n_report} = {need} seeds, but 'seeds' lists {n}: "
                   f"give 'seeds: {need}', or leave 'report_seeds' out to report on every seed after the "
                   f"selection seeds")


def stage_trials(spec: Spec, n_arms: int) -> dict[str, int]:
    """Trials each stage runs at most, over every study: search (`n_trials` per study; 0 when
    only a timeout bounds it), select (finalists x select seeds), report (winner, runner-up,
    hand-picked per study, x report seeds)."""
    st = stage_seeds(spec)
    s = spec.search
    studies = n_arms if s.per_arm else 1
    if not st.validates:
        return {"search": studies * (s.n_trials or 0), "select": 0, "report": 0}
    select = st.top_k * len(st.select) if st.top_k > 1 else 0
    reported = min(st.top_k, 2) + bool(s.compare_to)
    return {"search": studies * (s.n_trials or 0), "select": studies * select,
            "report": studies * reported * len(st.report)}
