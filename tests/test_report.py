"""Report frames: lifts match scipy on known numbers; failures are counted; errors are clear."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as st

from ablate.errors import ReportError
from ablate.plan import plan
from ablate.report import build_report, render, write_report
from ablate.report.frames import lift_table, outcomes
from ablate.spec import spec_to_dict
from ablate.store import Store
from tests.conftest import tiny_spec

# val_acc per arm (rows) and seed (columns) for a cumulative design of 3 tricks
VALS = np.array([[90.1, 91.3, 89.7, 90.6],
                 [91.0, 92.2, 90.9, 91.1],
                 [92.4, 93.0, 91.8, 92.9],
                 [92.0, 93.4, 91.1, 92.2]])


def filled_store(tmp_path, spec, values, *, fail=()):
    store = Store(tmp_path / "r.db", create=True)
    p = plan(spec)
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    store.add_trials(spec.name, list(p.trials))
    for t in p.trials:
        store.start_trial(spec.name, t.id, {})
        if (t.arm, t.seed) in fail:
            store.finish_trial(spec.name, t.id, "diverged", error="training loss became nan in epoch 3")
            continue
        v = values[t.arm, t.seed]
        store.add_epoch(spec.name, t.id, {"epoch": 1, "val_acc": v - 5, "train_loss": 1.0})
        store.add_epoch(spec.name, t.id, {"epoch": 2, "val_acc": v, "train_loss": 0.5})
        store.finish_trial(spec.name, t.id, "complete",
                           metrics={"val_acc": v, "test_acc": v + 1, "params": 1000, "wall_s": 2.0})
    return store, p


def cumulative_spec(**kw):
    return tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}}, design={"kind": "cumulative"},
                     seeds=4, **kw)


def test_lift_matches_scipy(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    f = t.frame
    assert list(f.label) == [a.label for a in p.arms]
    assert f.val_mean.tolist() == pytest.approx(VALS.mean(1).tolist())
    assert f.val_std.tolist() == pytest.approx(VALS.std(1, ddof=1).tolist())
    assert f.test_mean.tolist() == pytest.approx((VALS.mean(1) + 1).tolist())
    raw_p = []
    for i in (1, 2, 3):
        d = VALS[i] - VALS[0]
        r = st.ttest_rel(VALS[i], VALS[0])
        lo, hi = st.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=st.sem(d))
        row = f.iloc[i]
        assert row.lift == pytest.approx(d.mean()) and row.p == pytest.approx(r.pvalue)
        assert (row.lift_low, row.lift_high) == pytest.approx((lo, hi))
        step = st.ttest_rel(VALS[i], VALS[i - 1])
        assert row.step_lift == pytest.approx((VALS[i] - VALS[i - 1]).mean()) and row.step_p == pytest.approx(step.pvalue)
        raw_p.append(r.pvalue)
    # Holm by hand
    order = np.argsort(raw_p)
    adj = np.maximum.accumulate([min(1, (3 - k) * raw_p[j]) for k, j in enumerate(order)])
    expect = np.empty(3)
    expect[order] = adj
    assert f.p_holm.tolist()[1:] == pytest.approx(expect.tolist())
    assert f.significant.tolist()[1:] == [bool(x < 0.05) for x in expect]
    assert t.baseline_std == pytest.approx(VALS[0].std(ddof=1))


def _pooled_sd(vals):
    d = vals[1:] - vals[0]
    return float(np.sqrt(((d - d.mean(axis=1, keepdims=True)) ** 2).sum() / (d.shape[0] * (d.shape[1] - 1))))


def test_every_lift_column_against_independent_values(tmp_path):
    """Issue 14: each column recomputed here from the metric matrix with scipy/statsmodels."""
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.power import TTestPower

    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")), confidence=0.9)
    f = t.frame.iloc[1:]
    lift_p = [st.ttest_rel(VALS[i], VALS[0]).pvalue for i in (1, 2, 3)]
    step_p = [st.ttest_rel(VALS[i], VALS[i - 1]).pvalue for i in (1, 2, 3)]
    assert f.n_pairs.tolist() == [4, 4, 4] and f.n.tolist() == [4, 4, 4]
    assert f.p_holm.tolist() == pytest.approx(multipletests(lift_p, method="holm")[1])
    assert f.step_p_holm.tolist() == pytest.approx(multipletests(step_p, method="holm")[1])
    for i, row in zip((1, 2, 3), f.itertuples()):
        d = VALS[i] - VALS[i - 1]
        lo, hi = st.t.interval(0.9, 3, loc=d.mean(), scale=st.sem(d))
        assert (row.step_lift, row.step_low, row.step_high) == pytest.approx((d.mean(), lo, hi))
    # one alpha: at 90% confidence the star is p_holm < 0.10
    assert t.alpha == pytest.approx(0.1)
    assert f.significant.tolist() == [bool(x < 0.1) for x in multipletests(lift_p, method="holm")[1]]
    # noise floor: the SD of the paired differences (pooled, df-weighted), and the detectable lift
    # from that same spread, the number of pairs, at the first Holm step alpha / 3
    sd = _pooled_sd(VALS)
    assert t.noise_floor == pytest.approx(sd)
    es = TTestPower().solve_power(nobs=4, alpha=0.1 / 3, power=0.8, alternative="two-sided")
    assert t.detectable_lift == pytest.approx(es * sd, rel=1e-4)
    md = build_report(store, "tiny", confidence=0.9).markdown()
    assert f"vary by {sd:.2f} pp" in md and f"about {es * sd:.2f} pp" in md and "with 4 paired seeds" in md


@pytest.mark.parametrize("test", ["wilcoxon", "permutation"])
def test_rank_and_sign_flip_variants_reach_step_lifts(tmp_path, test):
    from itertools import product

    from statsmodels.stats.multitest import multipletests

    def sign_flip(d):
        obs = abs(d.sum())
        return np.mean([abs(np.dot(s, d)) >= obs - 1e-9 for s in product((1, -1), repeat=d.size)])

    ref = (lambda d: st.wilcoxon(d).pvalue) if test == "wilcoxon" else sign_flip
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    f = lift_table(p, outcomes(p, store.trials_frame("tiny")), test=test).frame.iloc[1:]
    lift_p = [ref(VALS[i] - VALS[0]) for i in (1, 2, 3)]
    step_p = [ref(VALS[i] - VALS[i - 1]) for i in (1, 2, 3)]
    assert f.p.tolist() == pytest.approx(lift_p) and f.step_p.tolist() == pytest.approx(step_p)
    assert f.p_holm.tolist() == pytest.approx(multipletests(lift_p, method="holm")[1])
    assert f.step_p_holm.tolist() == pytest.approx(multipletests(step_p, method="holm")[1])


def test_wilcoxon_option_matches_scipy(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")), test="wilcoxon")
    assert t.frame.p.iloc[2] == pytest.approx(st.wilcoxon(VALS[2] - VALS[0]).pvalue)


def test_diverged_seed_scores_chance_in_the_paired_lift(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS, fail={(2, 1)})
    report = build_report(store, "tiny")
    row = report.lift.frame.iloc[2]
    assert row.n == 3 and row.n_failed == 1 and "seed 1: diverged" in row.failures
    scored = VALS[2].copy()
    scored[1] = 100 / 10                      # digits: 10 classes, chance accuracy 10%
    assert row.n_pairs == 4 and row.lift == pytest.approx((scored - VALS[0]).mean())
    assert row.p == pytest.approx(st.ttest_rel(scored, VALS[0]).pvalue)
    assert row.val_mean == pytest.approx(np.delete(VALS[2], 1).mean()), "accuracies average completed seeds"
    md = report.markdown()
    assert "(3)" in md and "n=3 of 4" in md and "each scores 10.00 pp" in md


def test_diverged_exclude_restores_surviving_seeds_with_a_warning(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS, fail={(2, 1)})
    report = build_report(store, "tiny", diverged="exclude")
    row = report.lift.frame.iloc[2]
    assert row.n_pairs == 3
    assert row.lift == pytest.approx(np.delete(VALS[2] - VALS[0], 1).mean()), "pairs only the seeds both have"
    assert "excluded" in row.warning and report.lift.frame.warning.iloc[1] == ""
    assert "Warning: ResNet8-w8 + C + S: 1 diverged seed(s) excluded" in report.markdown()
    with pytest.raises(ReportError, match="unknown diverged rule 'drop'; allowed: worst, exclude"):
        build_report(store, "tiny", diverged="drop")


def test_diverged_loss_metric_scores_chance_cross_entropy(tmp_path):
    from ablate.results import worst_value

    assert worst_value("val_loss", 10) == pytest.approx(np.log(10))
    assert worst_value("val_acc", 100) == pytest.approx(1.0)
    assert worst_value("top5", 10) is None and worst_value("val_acc", None) is None


def test_markdown_and_files(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    report = build_report(store, "tiny")
    md = report.markdown()
    assert "| ResNet8-w8 + C + S | 92.53 ± 0.55 (4) | 93.53 ± 0.55 (4) | +2.10 [+1.65, +2.55] | 0.002 * |" in md, md
    assert "[95% CI]" in md and "Noise floor" in md and "reference" in md
    assert "| |" not in md.split("\n")[2] and "||" not in md, "no column without a header"
    paths = write_report(report, tmp_path / "out", ("md", "csv", "json", "latex"))
    assert sorted(x.name for x in paths) == ["lift.csv", "lift.md", "lift.tex", "report.json"]
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(doc["arms"]) == 4 and doc["arms"][0]["lift"] is None
    assert "\\toprule" in (tmp_path / "out" / "lift.tex").read_text()


def test_curves_have_mean_and_band(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    c = build_report(store, "tiny").curves
    last = c[(c.arm == 1) & (c.epoch == 2)].iloc[0]
    assert last.val_acc_mean == pytest.approx(VALS[1].mean()) and last.n == 4


def test_unknown_experiment(tmp_path):
    store, _ = filled_store(tmp_path, cumulative_spec(), VALS)
    with pytest.raises(ReportError, match="no experiment 'tinny'.*did you mean 'tiny'"):
        build_report(store, "tinny")


def test_no_complete_trials(tmp_path):
    store = Store(tmp_path / "e.db", create=True)
    spec = cumulative_spec()
    store.save_experiment("tiny", json.dumps(spec_to_dict(spec)), None)
    store.add_trials("tiny", list(plan(spec).trials))
    with pytest.raises(ReportError, match="no complete trials yet .*16 pending"):
        build_report(store, "tiny")


def test_no_baseline(tmp_path):
    fail = {(0, s) for s in range(4)}
    store, _ = filled_store(tmp_path, cumulative_spec(), VALS, fail=fail)
    with pytest.raises(ReportError, match="no complete trial of its baseline arm"):
        build_report(store, "tiny")


def test_stale_trials_of_an_edited_spec_are_not_reported(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    edited = cumulative_spec(recipe={"epochs": 3})
    store.save_experiment("tiny", json.dumps(spec_to_dict(edited)), None)
    with pytest.raises(ReportError, match="no complete trials"):
        build_report(store, "tiny")


# --------------------------------------------------------------------------- issues 7 and 13: what the table says

def one_at_a_time_store(tmp_path, values, **spec_changes):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}}, seeds=values.shape[1],
                     **spec_changes)
    return filled_store(tmp_path, spec, values)


def test_identical_differences_get_no_t_test_star(tmp_path):
    values = np.array([[90.0, 91.0, 89.5], [90.5, 91.5, 90.0], [91.0, 90.2, 92.0], [90.1, 91.3, 89.4]])
    store, _ = one_at_a_time_store(tmp_path, values)
    report = build_report(store, "tiny")
    row = report.lift.frame.iloc[1]
    assert row.zero_variance and np.isnan(row.p) and np.isnan(row.p_holm) and not row.significant
    md = report.markdown()
    assert "| n/a (zero variance) |" in md and "the t-test cannot be computed" in md
    # the zero-variance arm still counts in Holm's m: the others are adjusted over 3 arms
    raw = [st.ttest_rel(values[i], values[0]).pvalue for i in (2, 3)]
    assert report.lift.frame.p_holm.iloc[2:].tolist() == pytest.approx(
        np.minimum(1, np.maximum.accumulate(np.sort(raw) * [3, 2]))[np.argsort(np.argsort(raw))])
    perm = build_report(store, "tiny", test="permutation")
    assert perm.lift.frame.p.iloc[1] == pytest.approx(2 / 2 ** 3)   # exact: all 3 signs positive
    assert "n/a (zero variance)" not in perm.markdown()


def test_star_uses_one_alpha_with_the_confidence(tmp_path):
    values = np.array([[90.0, 91.0, 89.5, 90.2], [90.6, 91.6, 89.7, 90.9], [90.0, 91.1, 89.4, 90.3],
                       [90.1, 91.0, 89.6, 90.2]])
    store, _ = one_at_a_time_store(tmp_path, values)
    holm_p = build_report(store, "tiny").lift.frame.p_holm.iloc[1]
    assert 0.05 < holm_p < 0.1      # so 90% and 95% must disagree
    stars = {conf: bool(build_report(store, "tiny", confidence=conf).lift.frame.significant.iloc[1])
             for conf in (0.9, 0.95)}
    assert stars == {0.9: True, 0.95: False}
    assert "* = Holm p < α = 0.1 (α = 1 − confidence)" in build_report(store, "tiny", confidence=0.9).markdown()


def test_wording_without_steps_and_unadjusted_ci(tmp_path):
    store, _ = one_at_a_time_store(tmp_path, VALS)
    md = build_report(store, "tiny").markdown()
    assert "separate families" not in md and "not adjusted for multiplicity" in md
    store2, _ = filled_store(tmp_path / "c", cumulative_spec(), VALS)
    assert "lifts and steps are separate families" in build_report(store2, "tiny").markdown()


def test_wilcoxon_and_permutation_warn_when_they_cannot_reach_alpha(tmp_path):
    store, _ = one_at_a_time_store(tmp_path, VALS)
    for test, smallest in (("wilcoxon", 0.125), ("permutation", 0.125)):
        md = build_report(store, "tiny", test=test).markdown()
        assert f"smallest possible p is {smallest:.3g}" in md and "no lift can be significant" in md
    assert "smallest possible p" not in build_report(store, "tiny").markdown()


def test_verdict_line(tmp_path):
    values = np.array([[90.0, 91.0, 89.5, 90.2, 90.7], [92.0, 93.1, 91.4, 92.3, 92.6],
                       [88.6, 89.5, 88.2, 88.7, 89.4], [90.3, 90.6, 90.1, 90.0, 91.2]])
    store, _ = one_at_a_time_store(tmp_path, values)
    report = build_report(store, "tiny")
    f = report.lift.frame
    assert f.significant.tolist()[1:] == [True, True, False]
    line = render.verdict(report.lift)
    lift_c, lift_s = (values[1] - values[0]).mean(), (values[2] - values[0]).mean()
    assert line.startswith(f"2 of 3 lifts decided: ResNet8-w8 + C helps (+{lift_c:.2f} pp), "
                           f"ResNet8-w8 + S hurts (−{abs(lift_s):.2f} pp); the others are within noise (need ~")
    # N: the first n whose detectable lift (paired SD, first Holm level) reaches the undecided lift
    from statsmodels.stats.power import TTestPower

    n = int(line.split("need ~")[1].split(" ")[0])
    target = abs((values[3] - values[0]).mean()) / report.lift.noise_floor
    power = TTestPower()
    assert power.power(target, n, report.lift.detectable_alpha) >= 0.8 - 1e-6
    assert power.power(target, n - 1, report.lift.detectable_alpha) < 0.8 or n > 49
    assert f"**Verdict:** {line}" in report.markdown()


def test_reports_state_their_settings(tmp_path):
    spec = tiny_spec(tricks={"mixup_02": {"use": "mixup", "alpha": 0.2}, "label_smoothing": {"eps": 0.2}},
                     seeds=4)
    store, _ = filled_store(tmp_path, spec, VALS[:3])
    report = build_report(store, "tiny")
    md = report.markdown()
    assert "mixup (as 'mixup_02') [alpha=0.2, prob=1.0]" in md and "S = label_smoothing [eps=0.2]" in md
    assert "recipe: epochs 2, batch_size 16" in md and "data digits (" in md and "train_size 64" in md
    assert "model cifar_resnet (depth 8, width 8" in md
    paths = write_report(report, tmp_path / "o", ("json", "html"))
    doc = json.loads(paths[0].read_text())
    assert doc["settings"]["tricks"]["mixup_02"]["params"] == {"alpha": 0.2, "prob": 1.0}
    assert doc["settings"]["tricks"]["label_smoothing"]["non_default"] == {"eps": 0.2}
    assert doc["settings"]["recipe"]["lr"] == 0.05 and doc["settings"]["data"]["train_size"] == 64
    assert doc["verdict"].startswith("0 of 2 lifts decided") or "lifts decided" in doc["verdict"]
    assert "mixup (as &#x27;mixup_02&#x27;) [alpha=0.2, prob=1.0]" in paths[1].read_text()


def test_report_write_clears_its_own_earlier_files_only(tmp_path):
    store, _ = filled_store(tmp_path, cumulative_spec(), VALS)
    report = build_report(store, "tiny")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    write_report(report, out, ("md", "csv", "json", "latex"))
    assert (out / "report.json").exists() and (out / "lift.tex").exists()
    write_report(report, out, ("md",))
    assert sorted(p.name for p in out.iterdir()) == [".ablate-report.json", "lift.md", "notes.txt"]
    (out / ".ablate-report.json").write_text(json.dumps({"files": ["../escape.txt", "notes.txt", "lift.md"]}))
    (tmp_path / "escape.txt").write_text("outside")
    write_report(report, out, ("md",))
    assert (tmp_path / "escape.txt").exists(), "names only: never outside the folder"
    # notes.txt was (wrongly) listed by a hand-edited manifest: only files ablate listed go
    assert not (out / "notes.txt").exists() and (out / "lift.md").exists()


def test_adaptive_arms_are_shown_and_p_values_corrected(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}}, seeds={"count": 3, "adaptive": {
        "max_seeds": 10, "target_half_width": 0.5}})
    store, p = filled_store(tmp_path, spec, np.array([[90.0, 91.0, 89.5], [91.0, 92.5, 90.1], [90.2, 91.1, 89.7]]))
    extra = p.trial(1, 3), p.trial(0, 3)
    for t, v, why in zip(extra, (91.7, 90.4), ("adaptive: lift CI half-width 1.70 > target 0.5 (n=3)",
                                               "adaptive: paired baseline seed for arm(s) 1")):
        store.add_trials("tiny", [t], reason=why)
        store.start_trial("tiny", t.id, {})
        store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": v, "test_acc": v + 1})
    report = build_report(store, "tiny")
    f = report.lift.frame
    assert f.adaptive_seeds.tolist() == [1, 1, 0]
    assert "half-width 1.70 > target 0.5" in f.adaptive_reason.iloc[1]
    d = np.array([91.0, 92.5, 90.1, 91.7]) - np.array([90.0, 91.0, 89.5, 90.4])
    nominal = st.ttest_rel(d, np.zeros(4)).pvalue
    assert f.p_nominal.iloc[1] == pytest.approx(nominal)
    assert f.p.iloc[1] > nominal        # corrected for the stopping rule
    level = report.lift.adaptive_level
    lo, hi = st.t.interval(1 - level, 3, loc=d.mean(), scale=st.sem(d))
    assert (f.lift_low.iloc[1], f.lift_high.iloc[1]) == pytest.approx((lo, hi))
    assert report.lift.detectable_alpha == pytest.approx(level / 2)   # first Holm step at the corrected level
    md = report.markdown()
    assert "| Adaptive seeds |" in md.replace("Adaptive seeds | Params", "Adaptive seeds |") and "| +1 |" in md
    assert "Adaptive seeds added: ResNet8-w8 +1 (last because paired baseline seed for arm(s) 1); " \
        "ResNet8-w8 + C +1 (last because lift CI half-width 1.70 > target 0.5 (n=3))." in md


def test_verdict_names_a_lift_whose_ci_excludes_zero_only_before_holm(tmp_path):
    base = np.array([90.0, 91.0, 89.5, 90.2, 90.7])
    values = np.array([base, base + [2.0, 2.1, 1.9, 2.2, 2.0],      # decided
                       base + [0.9, 0.1, 1.1, 0.3, 1.3],            # unadjusted p 0.033, Holm x2 > 0.05
                       base + [0.5, -0.6, 0.3, -0.2, 0.1]])         # nothing
    from scipy import stats as sps

    p = [sps.ttest_rel(values[a], base).pvalue for a in (1, 2, 3)]
    assert p[0] * 3 < 0.05 and 0.025 < p[1] < 0.05 and p[2] > 0.5, "the premise of the test"
    store, _ = one_at_a_time_store(tmp_path, values)
    report = build_report(store, "tiny")
    f = report.lift.frame
    assert f.significant.tolist()[1:] == [True, False, False] and f.lift_low[2] > 0
    line = render.verdict(report.lift)
    lift_s = (values[2] - base).mean()
    assert (f"; ResNet8-w8 + S (+{lift_s:.2f} pp) is suggestive only: its CI excludes 0, but not after "
            f"Holm's correction for 3 lifts; the others are within noise") in line


def test_noise_floor_never_quotes_a_detectable_lift_beyond_100_pp(tmp_path):
    store, _ = one_at_a_time_store(tmp_path, np.array([[90.0, 91.0], [95.0, 88.0], [93.0, 89.0], [85.0, 92.0]]))
    lift = build_report(store, "tiny").lift
    assert lift.detectable_lift > 100, "the premise: 2 seeds at the first Holm level"
    md = build_report(store, "tiny").markdown()
    assert "no lift can be detected with 80% power (it would have to exceed 100 pp)" in md
    assert f"{lift.detectable_lift:.2f}" not in md
