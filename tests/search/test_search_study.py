"""search/study.py and search/finalists.py directly: the Optuna pieces, without running a search."""

from __future__ import annotations

import optuna
import pytest

from ablate.search.finalists import record_finalists, select_trials, stored_finalists, top_configurations
from ablate.config.search import search_metrics
from ablate.design.search import distributions, grid, make_pruner, make_sampler
from ablate.search.study import fail_if_unfinished, open_study
from ablate.design.plan import plan
from ablate.store import Store
from tests.search_helpers import search_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_distributions_and_grid_follow_the_spec():
    s = search_spec().search
    d = distributions(s)
    assert d["recipe.lr"] == optuna.distributions.FloatDistribution(0.01, 1.0, log=True)
    assert d["tricks.mixup.alpha"] == optuna.distributions.FloatDistribution(0.1, 1.0, step=0.1)
    g = search_spec(params={"tricks.mixup.alpha": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1},
                            "recipe.batch_size": {"type": "categorical", "choices": [16, 32]}}).search
    assert grid(g) == {"tricks.mixup.alpha": [0.1, 0.2, 0.3], "recipe.batch_size": [16, 32]}


@pytest.mark.parametrize("name, cls", [("random", "RandomSampler"), ("tpe", "TPESampler"),
                                       ("qmc", "QMCSampler")])
def test_the_sampler_is_the_one_named_and_a_resumed_one_draws_on(name, cls):
    s = search_spec(sampler={"name": name, "seed": 3}).search
    assert type(make_sampler(s, seed_offset=0)).__name__ == cls
    if name == "random":   # a resumed seeded sampler does not repeat the draws it made before
        first = make_sampler(s, seed_offset=0)._rng.rng.random()
        assert make_sampler(s, seed_offset=0)._rng.rng.random() == first
        assert make_sampler(s, seed_offset=5)._rng.rng.random() != first


def test_pruners_by_name():
    s = search_spec(pruner={"name": "percentile"}).search
    p = make_pruner(s.pruner)
    assert isinstance(p, optuna.pruners.PercentilePruner) and p._percentile == 25.0
    assert isinstance(make_pruner(search_spec(pruner={"name": "none"}).search.pruner), optuna.pruners.NopPruner)


def test_the_study_lives_in_the_store_and_an_unfinished_trial_is_failed_once(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    spec = search_spec()
    study = open_study(store, "srch-study", spec.search, ["max"], pruning=False)
    t = study.ask()
    again = optuna.load_study(study_name="srch-study", storage=store.url)
    assert [x.number for x in again.trials] == [t.number]
    assert fail_if_unfinished(store, t._trial_id, {"why": "driver gone"}) is True
    assert fail_if_unfinished(store, t._trial_id, {"why": "second driver"}) is False     # compare-and-set
    (done,) = optuna.load_study(study_name="srch-study", storage=store.url).trials
    assert done.state == optuna.trial.TrialState.FAIL and done.user_attrs == {"why": "driver gone"}


def test_finalists_are_the_best_distinct_configurations_and_are_kept_in_the_study():
    spec = search_spec()
    study = optuna.create_study(direction="maximize")
    for lr, value in [(0.1, 50.0), (0.2, 70.0), (0.1, 50.0), (0.3, 60.0)]:
        study.add_trial(optuna.trial.create_trial(params={"recipe.lr": lr, "tricks.mixup.alpha": 0.2},
                                                  distributions=distributions(spec.search), value=value))
    top = top_configurations(study, search_metrics(spec), 3)
    assert [c["recipe.lr"] for c in top] == [0.2, 0.3, 0.1]          # by value, duplicates once
    record_finalists(study, top[:2])
    assert stored_finalists(study) == top[:2]
    trials = select_trials(plan(spec), 0, top[:2], [1, 2])
    assert [(t.seed, t.reason) for t in trials] == [(1, "select: finalist 1"), (2, "select: finalist 1"),
                                                     (1, "select: finalist 2"), (2, "select: finalist 2")]
    assert trials[0].id != trials[2].id and trials[0].recipe.lr == 0.2


def test_a_report_on_a_search_that_has_not_started_says_so_and_creates_nothing(tmp_path):
    """`ablate report` reads: on a search whose study is not in the store yet it creates neither
    Optuna's tables nor the study."""
    import json

    import sqlalchemy as sa

    from ablate.design.spec import spec_to_dict
    from ablate.errors import ReportError

    import ablate

    store = Store(str(tmp_path / "s.db"), create=True)
    spec = search_spec()
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    with pytest.raises(ReportError, match="'srch' has no search in .* yet: study 'srch' is not there"):
        ablate.build_report(store, spec.name)
    assert not sa.inspect(store.engine).has_table("studies")
