"""Report frames: lifts match scipy on known numbers; failures are counted; errors are clear."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as st

from ablate import stats
from ablate.errors import ReportError
from ablate.design.plan import plan
from ablate.report import build_report, render, write_report
from ablate.report.frames import lift_table, outcomes
from ablate.design.spec import spec_to_dict
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
                       [88.6, 89.5, 88.2, 88.7, 89.4], [90.3, 90.6, 90.1, 90.0, 91.2],
                       [90.5, 92.8, 88.0, 91.9, 89.4]])
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}, "mixup": {}, "random_erasing": {}}, seeds=5)
    store, _ = filled_store(tmp_path, spec, values)
    report = build_report(store, "tiny")
    f = report.lift.frame
    assert f.significant.tolist()[1:] == [True, True, False, False]
    line = render.verdict(report.lift)
    lift_c, lift_s = (values[1] - values[0]).mean(), (values[2] - values[0]).mean()
    assert line.startswith(f"2 of 4 lifts decided: ResNet8-w8 + C helps (+{lift_c:.2f} pp), "
                           f"ResNet8-w8 + S hurts (−{abs(lift_s):.2f} pp); ResNet8-w8 + M is within noise: no "
                           f"larger than ±1.00 pp (equivalence test, Holm-adjusted); undecided: ResNet8-w8 + RE "
                           f"(paired seeds each would need to decide a lift of 1.00 pp with 80% power: ~")
    # M: its 90% interval lies inside ±1 pp (TOST at the default min_lift, Holm over 4 lifts)
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.power import TTestPower
    from statsmodels.stats.weightstats import ttost_paired

    tost = [ttost_paired(values[a], values[0], -1.0, 1.0)[0] for a in (1, 2, 3, 4)]
    assert f.tost_p.tolist()[1:] == pytest.approx(tost)
    assert f.equivalent.tolist()[1:] == [bool(x < 0.05) for x in multipletests(tost, method="holm")[1]]
    # RE's seeds: its own paired SD, the smallest lift of interest, the first Holm level
    n = int(line.split("80% power: ~")[1].split(")")[0])
    sd = (values[4] - values[0]).std(ddof=1)
    power = TTestPower()
    assert power.power(1.0 / sd, n, 0.05 / 4) >= 0.8 > power.power(1.0 / sd, n - 1, 0.05 / 4)
    assert f"**Verdict:** {line}" in report.markdown()


def test_verdict_sizes_seeds_from_each_arms_own_sd_and_never_claims_equivalence_it_lacks(tmp_path):
    """The issue's case: a 4-seed arm with a diverged seed (scored at chance) was told "need ~2
    seeds" from a pooled SD without it and its own large lift; and a lift with CI [-89, +46] was
    called "within noise"."""
    values = np.array([[90.0, 91.0, 89.5, 90.2], [90.3, 91.2, 89.4, 90.6], [90.4, 90.8, 89.9, 90.1]])
    spec = tiny_spec(seeds=4, metric={"name": "val_acc", "min_lift": 0.5})
    store, p = filled_store(tmp_path, spec, values, fail={(1, 3)})
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    f = t.frame
    assert f.lift_low.iloc[1] < -50 and f.lift_high.iloc[1] > 15, "the premise: a huge interval"
    line = render.verdict(t)
    assert "within noise" not in line.split("undecided")[1] and "ResNet8-w8 + C" in line.split("undecided")[1]
    assert not f.equivalent.iloc[1]
    own = float(f.lift_std.iloc[1])
    expect = stats.seeds_to_detect(0.5, own, alpha=t.detectable_alpha) or np.inf
    assert f.seeds_needed.iloc[1] == expect and expect > 100
    assert (">1000" if np.isinf(expect) else f"~{expect}") in line
    assert t.min_lift == 0.5 and "±0.50 pp" in " ".join(render.footnotes(t))


def test_verdict_of_a_metric_without_a_lift_of_interest(tmp_path):
    spec = tiny_spec(seeds=3, metric={"name": "top1", "mode": "max"})
    store = Store(tmp_path / "m.db", create=True)
    p = plan(spec)
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    store.add_trials(spec.name, list(p.trials))
    for t in p.trials:
        store.start_trial(spec.name, t.id, {})
        v = ARM_VALS[t.arm, t.seed] + (0.3 if t.arm == 1 else 0.0)
        store.finish_trial(spec.name, t.id, "complete", metrics={"top1": v, "val_acc": v, "test_acc": v})
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    assert t.min_lift is None and t.direction == "max"
    line = render.verdict(t)
    assert "undecided: ResNet8-w8 + C and ResNet8-w8 + S (set metric.min_lift" in line
    assert np.isnan(t.frame.tost_p.to_numpy(dtype=float)).all()
    with pytest.raises(ReportError, match=r"min_lift must be a finite number > 0"):
        lift_table(p, outcomes(p, store.trials_frame("tiny")), min_lift=-1.0)
    assert lift_table(p, outcomes(p, store.trials_frame("tiny")), min_lift=5.0).frame.equivalent.iloc[2]


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
    (tmp_path / "escape.txt").write_text("outside")
    for tampered in (["../escape.txt", "notes.txt", "lift.md"],                   # the first release's form
                     {"../escape.txt": "sha256:0", "notes.txt": "sha256:" + "0" * 64}):
        (out / ".ablate-report.json").write_text(json.dumps({"files": tampered}))
        write_report(report, out, ("md",))
        assert (tmp_path / "escape.txt").exists(), "names only: never outside the folder"
        # notes.txt listed by a hand-edited manifest: its content is not what ablate wrote, so it stays
        assert (out / "notes.txt").read_text() == "mine" and (out / "lift.md").exists()
    write_report(report, out, ("md", "json"))
    (out / "report.json").write_text("edited by hand")
    write_report(report, out, ("md",))
    assert (out / "report.json").read_text() == "edited by hand", "a file ablate wrote, edited since, stays"


def test_adaptive_arms_are_shown_and_analysed_as_a_fixed_design(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}, "label_smoothing": {}}, seeds={"count": 3, "adaptive": {
        "max_seeds": 10, "target_half_width": 0.5}})
    values = np.array([[90.0, 91.0, 89.5], [91.0, 92.5, 90.1], [90.2, 91.1, 89.7]])
    store, p = filled_store(tmp_path, spec, values)
    extra = {0: 90.4, 1: 91.7, 2: 90.3}
    why = "adaptive: pilot RMS paired difference 0.8 over 6 pair(s) -> 4 seeds per arm for a lift CI of about ±0.5"
    for arm, v in extra.items():
        t = p.trial(arm, 3)
        store.add_trials("tiny", [t], reason=why)
        store.start_trial("tiny", t.id, {})
        store.finish_trial("tiny", t.id, "complete", metrics={"val_acc": v, "test_acc": v + 1})
    report = build_report(store, "tiny")
    f = report.lift.frame
    assert f.adaptive_seeds.tolist() == [1, 1, 1]
    d = np.append(values[1], 91.7) - np.append(values[0], 90.4)
    assert f.p.iloc[1] == pytest.approx(st.ttest_rel(d, np.zeros(4)).pvalue)   # no correction: a fixed design
    lo, hi = st.t.interval(0.95, 3, loc=d.mean(), scale=st.sem(d))
    assert (f.lift_low.iloc[1], f.lift_high.iloc[1]) == pytest.approx((lo, hi))
    assert report.lift.detectable_alpha == pytest.approx(0.05 / 2) and report.lift.pilot_seeds == 3
    md = report.markdown()
    assert "Lift val_acc (pp) [95% CI]" in md and "| +1 |" in md
    assert "Adaptive seeds added: +1 to every arm (pilot RMS paired difference 0.8 over 6 pair(s)" in md
    assert "the first 3 seed(s) were a pilot" in md
    for test in ("permutation", "wilcoxon"):   # no note that these are uncorrected: nothing is
        assert not any("Adaptive" in n for n in build_report(store, "tiny", test=test).lift.notes)


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
            f"Holm's correction for 3 lifts; ") in line


def test_noise_floor_never_quotes_a_detectable_lift_beyond_100_pp(tmp_path):
    store, _ = one_at_a_time_store(tmp_path, np.array([[90.0, 91.0], [95.0, 88.0], [93.0, 89.0], [85.0, 92.0]]))
    lift = build_report(store, "tiny").lift
    assert lift.detectable_lift > 100, "the premise: 2 seeds at the first Holm level"
    md = build_report(store, "tiny").markdown()
    assert "no lift can be detected with 80% power (it would have to exceed 100 pp)" in md
    assert f"{lift.detectable_lift:.2f}" not in md


# --- every column of the arm table, with failures, diverged seeds and per-arm costs (issue 14)

ARM_VALS = np.array([[90.0, 91.0, 89.0], [92.0, 91.5, 93.0], [90.5, 92.5, 91.0]])
COSTS = {0: (1000, 0.5, 30.0, 2.0), 1: (1000, 0.5, 32.0, 2.4), 2: (1100, 0.6, 31.0, 3.0)}


def costs_store(tmp_path, *, failed=(), diverged=()):
    spec = tiny_spec(seeds=3)            # one_at_a_time: baseline, + C, + S
    store = Store(tmp_path / "c.db", create=True)
    p = plan(spec)
    store.save_experiment("tiny", json.dumps(spec_to_dict(spec)), None)
    store.add_trials("tiny", list(p.trials))
    for t in p.trials:
        store.start_trial("tiny", t.id, {})
        if (t.arm, t.seed) in failed or (t.arm, t.seed) in diverged:
            store.finish_trial("tiny", t.id, "failed" if (t.arm, t.seed) in failed else "diverged", error="boom")
            continue
        params, gflops, mem, wall = COSTS[t.arm]
        v = ARM_VALS[t.arm, t.seed]
        store.finish_trial("tiny", t.id, "complete", metrics={
            "val_acc": v, "test_acc": v - 1, "params": params, "gflops": gflops, "peak_mem_mb": mem, "wall_s": wall})
    return store, p


def test_arm_columns_with_failures_diverged_seeds_and_costs(tmp_path):
    from statsmodels.stats.multitest import multipletests

    store, p = costs_store(tmp_path, failed={(2, 1)}, diverged={(1, 2)})
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    f = t.frame
    assert f.tricks.tolist() == ["", "cosine", "label_smoothing"]
    assert f.n.tolist() == [3, 2, 2] and f.n_planned.tolist() == [3, 3, 3]
    assert f.n_failed.tolist() == [0, 1, 1] and f.n_diverged.tolist() == [0, 1, 0]
    assert f.failures.tolist() == ["", "seed 2: diverged", "seed 1: failed"]
    assert f.warning.tolist() == ["", "", ""]      # diverged seeds are scored, not excluded
    assert f.adaptive_seeds.tolist() == [0, 0, 0] and f.adaptive_reason.tolist() == ["", "", ""]
    assert f.params.tolist() == [1000, 1000, 1100] and f.gflops.tolist() == pytest.approx([0.5, 0.5, 0.6])
    assert f.peak_mem_mb.tolist() == [30.0, 32.0, 31.0] and f.time_s.tolist() == pytest.approx([2.0, 2.4, 3.0])
    # arm 1's diverged seed 2 scores chance (10%); arm 2's failed seed is missing from the pairs
    arm1 = np.array([92.0, 91.5, 10.0])
    d1, d2 = arm1 - ARM_VALS[0], (ARM_VALS[2] - ARM_VALS[0])[[0, 2]]
    assert f.n_pairs.tolist()[1:] == [3, 2]
    assert f.lift.tolist()[1:] == pytest.approx([d1.mean(), d2.mean()])
    assert f.lift_std.tolist()[1:] == pytest.approx([d1.std(ddof=1), d2.std(ddof=1)])
    raw = [st.ttest_rel(arm1, ARM_VALS[0]).pvalue, st.ttest_rel(ARM_VALS[2][[0, 2]], ARM_VALS[0][[0, 2]]).pvalue]
    assert f.p.tolist()[1:] == pytest.approx(raw)
    assert f.p_holm.tolist()[1:] == pytest.approx(multipletests(raw, method="holm")[1])
    assert f.zero_variance.tolist() == [False, False, False]
    assert t.baseline_std == pytest.approx(ARM_VALS[0].std(ddof=1))
    # the noise floor leaves out the arm with a diverged seed (an outlier at chance, not seed noise)
    assert t.noise_floor == pytest.approx(d2.std(ddof=1))
    assert t.n_pairs == 2 and t.tested == 2 and t.detectable_alpha == pytest.approx(0.05 / 2)
    assert t.notes == ["Arms missing seeds: ResNet8-w8 + C (n=2 of 3), ResNet8-w8 + S (n=2 of 3)."]
    assert t.status_counts == {"complete": 7, "failed": 1, "diverged": 1}
    assert t.worst_value == pytest.approx(10.0) and t.diverged == "worst"
    assert "step_lift" not in f, "step lifts belong to cumulative designs only"

    e = lift_table(p, outcomes(p, store.trials_frame("tiny")), diverged="exclude")
    assert e.frame.warning.tolist() == ["", "1 diverged seed(s) excluded: lift over surviving seeds only, "
                                            "biased in the trick's favour", ""]
    assert e.frame.n_pairs.tolist()[1:] == [2, 2] and e.worst_value is None


def test_noise_floor_pools_every_arm_when_each_has_a_diverged_seed(tmp_path):
    store, p = costs_store(tmp_path, diverged={(1, 2), (2, 0)})
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    scored = ARM_VALS.copy()
    scored[1, 2] = scored[2, 0] = 10.0
    d = scored[1:] - scored[0]
    assert t.noise_floor == pytest.approx(np.sqrt((d.var(axis=1, ddof=1) * 2).sum() / 4))


def test_a_single_arm_has_no_lifts(tmp_path):
    spec = tiny_spec(tricks={"cosine": {}}, design={"kind": "explicit", "arms": [[]]}, seeds=2)
    store, p = filled_store(tmp_path, spec, np.array([[90.0, 91.0]]))
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    f = t.frame
    for col in ("lift", "lift_low", "lift_high", "p", "n_pairs", "lift_std", "p_holm"):
        assert np.isnan(f[col].to_numpy(dtype=float)).all(), col
    assert f.zero_variance.tolist() == [False] and f.significant.tolist() == [False]
    assert t.n_pairs == 0 and t.tested == 0 and np.isnan(t.detectable_lift) and np.isnan(t.noise_floor)
    assert t.baseline_std == pytest.approx(np.std([90.0, 91.0], ddof=1))


def test_leave_one_out_note_and_a_lone_baseline_seed(tmp_path):
    spec = tiny_spec(design={"kind": "leave_one_out"}, seeds=2)
    store, p = filled_store(tmp_path, spec, np.array([[90.0, 91.0], [91.0, 90.0], [89.0, 88.5]]), fail={(0, 1)})
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")), diverged="exclude")
    assert "Leave-one-out: arm 0 has every trick; a negative lift is what removing a trick costs." in t.notes
    assert np.isnan(t.baseline_std), "one baseline seed has no spread"
    assert t.frame.n_pairs.tolist()[1:] == [1, 1] and np.isnan(t.detectable_lift)


def test_cumulative_step_columns_and_stars(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    f = lift_table(p, outcomes(p, store.trials_frame("tiny")), confidence=0.9).frame
    assert f.step_n_pairs.tolist()[1:] == [4, 4, 4]
    assert f.step_zero_variance.tolist() == [False, False, False, False]
    assert f.step_significant.tolist() == [False] + [bool(x < 0.1) for x in f.step_p_holm.iloc[1:]]
    assert f.significant.iloc[0] == False and f.step_significant.iloc[0] == False   # noqa: E712


def test_zero_variance_arm_counts_in_holm_and_gets_no_star(tmp_path):
    """Identical differences: no t-test p, no star, but p = 1 in Holm's m for the other arms."""
    vals = np.array([[90.0, 91.0, 92.0], [91.0, 92.0, 93.0], [93.0, 91.5, 95.0]])
    spec = tiny_spec(seeds=3)
    store, p = filled_store(tmp_path, spec, vals)
    f = lift_table(p, outcomes(p, store.trials_frame("tiny"))).frame
    assert f.zero_variance.tolist() == [False, True, False]
    raw = st.ttest_rel(vals[2], vals[0]).pvalue
    assert np.isnan(f.p.iloc[1]) and np.isnan(f.p_holm.iloc[1])
    assert f.p_holm.iloc[2] == pytest.approx(min(1.0, 2 * raw)), "the zero-variance arm still counts in m"
    assert f.significant.tolist() == [False, False, bool(2 * raw < 0.05)]


def test_options_are_checked_with_the_allowed_values(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS)
    out = outcomes(p, store.trials_frame("tiny"))
    with pytest.raises(ReportError, match=r"unknown test 'z'; allowed: t, wilcoxon, permutation"):
        lift_table(p, out, test="z")
    for bad in (0.0, 1.0):
        with pytest.raises(ReportError, match=rf"confidence must be in \(0, 1\), got {bad}"):
            lift_table(p, out, confidence=bad)


def test_missing_baseline_names_the_baseline_arm(tmp_path):
    store, p = filled_store(tmp_path, cumulative_spec(), VALS, fail={(0, s) for s in range(4)})
    with pytest.raises(ReportError, match=r"baseline arm 'ResNet8-w8', so no lift"):
        lift_table(p, outcomes(p, store.trials_frame("tiny")))


def test_no_trials_stored_is_said(tmp_path):
    store = Store(tmp_path / "e.db", create=True)
    spec = cumulative_spec()
    store.save_experiment("tiny", json.dumps(spec_to_dict(spec)), None)
    p = plan(spec)
    frame = store.trials_frame("tiny")
    assert len(outcomes(p, frame)) == 0
    with pytest.raises(ReportError, match=r"has no complete trials yet \(no trials stored\)"):
        lift_table(p, outcomes(p, frame))


def test_unknown_experiment_lists_the_stored_ones(tmp_path):
    from ablate.report.frames import load_experiment

    empty = Store(tmp_path / "none.db", create=True)
    with pytest.raises(ReportError, match=r"experiments there: \(none\)"):
        load_experiment(empty, "x")
    store, _ = filled_store(tmp_path, cumulative_spec(), VALS)
    with pytest.raises(ReportError, match=r"experiments there: tiny$"):
        load_experiment(store, "zzz")


# --- results: the tidy frames below the reports

def test_outcomes_and_metric_matrix_columns(tmp_path):
    from ablate.results import metric_matrix

    store, p = filled_store(tmp_path, cumulative_spec(), VALS, fail={(1, 2)})
    out = outcomes(p, store.trials_frame("tiny"))
    assert out.index.tolist() == list(range(16)) and "index" not in out
    assert out.arm.tolist() == [a for a in range(4) for _ in range(4)]
    assert out.label.tolist() == [p.arms[a].label for a in range(4) for _ in range(4)]
    m, seeds = metric_matrix(p, out, "val_acc")
    expect = VALS.copy()
    expect[1, 2] = np.nan
    assert seeds == [0, 1, 2, 3] and np.array_equal(m, expect, equal_nan=True)
    empty = out.iloc[:0]
    m, seeds = metric_matrix(p, empty, "val_acc")
    assert seeds == [0, 1, 2, 3] and m.shape == (4, 4) and np.isnan(m).all()


def test_num_classes_without_loading_images(tmp_path):
    from pydantic import TypeAdapter

    from ablate.data import DataConfig
    from ablate.results import num_classes

    cfg = lambda **d: TypeAdapter(DataConfig).validate_python(d)   # noqa: E731
    assert num_classes(cfg(name="digits")) == 10
    assert num_classes(cfg(name="cifar10", root="x")) == 10
    assert num_classes(cfg(name="cifar100", root="x")) == 100
    assert num_classes(cfg(name="synthetic", num_classes=7)) == 7
    for d in ("cat", "dog", "bird", ".cache"):
        (tmp_path / "train" / d).mkdir(parents=True)
    (tmp_path / "train" / "notes.txt").write_text("not a class")
    assert num_classes(cfg(name="imagefolder", root=str(tmp_path))) == 3
    assert num_classes(cfg(name="imagefolder", root=str(tmp_path), train="missing")) is None
    (tmp_path / "empty").mkdir()
    assert num_classes(cfg(name="imagefolder", root=str(tmp_path), train="empty")) is None


def test_worst_value_at_the_edges():
    from ablate.results import worst_value

    assert worst_value("val_acc", 2) == pytest.approx(50.0)
    assert worst_value("top1_accuracy", 4) == pytest.approx(25.0)
    assert worst_value("val_acc", 1) is None


def test_a_diverged_seed_scores_really_the_worst_loss(tmp_path):
    """Issue 19, item 6: a diverged seed of a loss metric scored ln C, which a badly trained
    model can exceed; it must never score better than a seed that finished."""
    from ablate.results import worst_value

    assert worst_value("val_loss", 10, [0.3, 4.1, np.nan]) == pytest.approx(4.1)
    assert worst_value("val_loss", 10, [0.3, 0.5]) == pytest.approx(np.log(10))
    assert worst_value("val_acc", 10, [92.0, 6.5]) == pytest.approx(6.5)
    assert worst_value("val_acc", 10, [92.0]) == pytest.approx(10.0)
    assert worst_value("top5", 10, [1.0]) is None and worst_value("val_loss", None, [9.0]) is None

    spec = tiny_spec(seeds=3, metric={"name": "val_loss"})
    losses = np.array([[0.40, 0.45, 0.42], [3.10, 0.50, 0.41], [0.38, 0.40, 0.39]])   # 3.1 > ln 10 = 2.30
    store = Store(tmp_path / "l.db", create=True)
    p = plan(spec)
    store.save_experiment(spec.name, json.dumps(spec_to_dict(spec)), None)
    store.add_trials(spec.name, list(p.trials))
    for t in p.trials:
        store.start_trial(spec.name, t.id, {})
        if (t.arm, t.seed) == (2, 0):
            store.finish_trial(spec.name, t.id, "diverged", error="loss became nan")
            continue
        v = losses[t.arm, t.seed]
        store.finish_trial(spec.name, t.id, "complete", metrics={"val_loss": v, "val_acc": 90.0, "test_acc": 90.0})
    t = lift_table(p, outcomes(p, store.trials_frame("tiny")))
    assert t.worst_value == pytest.approx(3.10) and t.direction == "min"
    scored = np.array([3.10, 0.40, 0.39]) - losses[0]
    assert t.frame.lift.iloc[2] == pytest.approx(scored.mean())
    assert "the worse of the val_loss of chance and the worst completed seed" in " ".join(render.footnotes(t))


def test_sign_flip_note_counts_zero_differences(tmp_path):
    """8 pairs, 3 of them zero: the sign-flip test cannot go below 2 / 2**5 = 0.0625, so the
    note that no lift can be significant must fire (it used 2 / 2**8 = 0.0078)."""
    base = np.array([90.0, 91.0, 89.5, 90.2, 90.7, 91.3, 89.9, 90.4])
    zeros = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 1.5, 0.5, 1.0])
    values = np.stack([base, base + zeros, base - zeros[::-1], base + np.roll(zeros, 2)])
    store, _ = one_at_a_time_store(tmp_path, values)
    t = build_report(store, "tiny", test="permutation").lift
    assert t.frame.n_nonzero.tolist()[1:] == [5, 5, 5] and t.frame.n_pairs.tolist()[1:] == [8, 8, 8]
    assert any("at most 5 non-zero paired difference(s) per arm" in n and "smallest possible p is 0.0625" in n
               and "no lift can be significant" in n for n in t.notes)
    assert min(t.frame.p.iloc[1:]) >= 0.0625 - 1e-12


def test_verdict_of_many_undecided_arms_gives_their_count_and_the_range_of_seeds(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.normal(90, 1, 4)
    values = np.vstack([base] + [base + rng.normal(0, s, 4) for s in (1.5, 1.0, 1.5, 2.0, 3.0, 4.0, 2.5)])
    tricks = {k: {} for k in ("cosine", "label_smoothing", "mixup", "random_erasing", "cutmix", "nesterov",
                              "ema")}
    store, _ = filled_store(tmp_path, tiny_spec(tricks=tricks, seeds=4), values)
    t = build_report(store, "tiny").lift
    rest = t.frame.iloc[1:]
    rest = rest[~rest.significant & ~rest.equivalent & ~((rest.lift_low > 0) | (rest.lift_high < 0))]
    assert len(rest) > 5, "the premise: many undecided arms"
    word = "lifts" if len(rest) == len(t.frame) - 1 else "others"
    need = rest.seeds_needed.to_numpy()
    span = " to ".join(">1000" if np.isinf(n) else str(int(n)) for n in (need.min(), need.max()))
    line = render.verdict(t)
    assert f"undecided: {len(rest)} {word} (paired seeds each would need to decide a lift of 1.00 pp with 80% " \
           f"power: {span}; per arm in the CSV's seeds_needed)" in line
