"""The planner: arms per design, paired seeds, stable ids."""

from __future__ import annotations

import numpy as np
import pytest

from ablate.design.plan import plan
from tests.conftest import tiny_spec

THREE = {"cosine": {}, "label_smoothing": {}, "mixup": {}}


def arms(kind, tricks=THREE, **design):
    p = plan(tiny_spec(tricks=tricks, design={"kind": kind, **design}))
    return [a.tricks for a in p.arms], p


def test_one_at_a_time():
    got, _ = arms("one_at_a_time")
    assert got == [(), ("cosine",), ("label_smoothing",), ("mixup",)]


def test_leave_one_out():
    got, _ = arms("leave_one_out")
    assert got == [("cosine", "label_smoothing", "mixup"), ("label_smoothing", "mixup"),
                   ("cosine", "mixup"), ("cosine", "label_smoothing")]


def test_cumulative_keeps_the_listed_order():
    got, p = arms("cumulative", {"mixup": {}, "cosine": {}, "label_smoothing": {}})
    assert got == [(), ("mixup",), ("mixup", "cosine"), ("mixup", "cosine", "label_smoothing")]
    assert [a.label for a in p.arms] == ["ResNet8-w8", "ResNet8-w8 + M", "ResNet8-w8 + M + C",
                                        "ResNet8-w8 + M + C + S"]


def test_full_factorial_has_every_combination_baseline_first():
    got, p = arms("full_factorial")
    assert len(got) == 8 and got[0] == () and len(set(got)) == 8
    levels = np.array([a.levels for a in p.arms])
    assert (levels.sum(axis=0) == 0).all()


def test_fractional_factorial_seven_tricks_in_sixteen_runs_with_a_baseline():
    seven = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay", "ema",
                             "random_erasing"]}
    got, p = arms("fractional_factorial", seven)
    assert len(got) == 16 and got[0] == ()
    levels = np.array([a.levels for a in p.arms])
    assert (levels.sum(axis=0) == 0).all() and (levels.T @ levels == 16 * np.eye(7)).all()
    assert p.design.resolution == 4
    assert "Generators" in p.describe()


def test_plackett_burman_screens_eleven_tricks_in_twelve_runs():
    eleven = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay", "ema",
                              "random_erasing", "warmup", "cutout", "resnet_d", "se"]}
    eleven["warmup"] = {"epochs": 1}
    got, p = arms("plackett_burman", eleven)
    assert len(got) == 12 and got[0] == ()
    text = p.describe()
    assert "  A ~ +0.33 x (" in text and "assume no active two-factor interactions" in text


def test_plackett_burman_foldover_plans_the_mirror_runs():
    eight = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay", "ema",
                             "random_erasing", "cutout"]}
    got, p = arms("plackett_burman", eight, foldover=True)
    assert len(got) == 24 and got[0] == () and len(set(got)) == 24
    levels = {a.levels for a in p.arms}
    assert all(tuple(-v for v in lv) in levels for lv in levels), "every run has its mirror image"
    text = p.describe()
    assert "with fold-over: 8 factors in 24 runs" in text and "assume no active" not in text
    assert "  A: clear" in text


def test_seeds_are_paired_and_ids_stable():
    p = plan(tiny_spec(seeds=3))
    assert len(p.trials) == len(p.arms) * 3
    for a in p.arms:
        assert [t.seed for t in p.trials if t.arm == a.index] == [0, 1, 2]
    assert len({t.id for t in p.trials}) == len(p.trials)
    again = plan(tiny_spec(seeds=3))
    assert [t.id for t in again.trials] == [t.id for t in p.trials]


def test_id_depends_on_config_not_on_labels_or_order():
    a = plan(tiny_spec(tricks={"cosine": {}, "mixup": {}}, design={"kind": "full_factorial"}))
    b = plan(tiny_spec(tricks={"mixup": {}, "cosine": {}}, design={"kind": "full_factorial"}))
    both = lambda p: next(t.id for t in p.trials if len(p.arms[t.arm].tricks) == 2 and t.seed == 0)
    assert both(a) == both(b)
    c = plan(tiny_spec(tricks={"cosine": {}, "mixup": {"alpha": 0.3}}, design={"kind": "full_factorial"}))
    assert both(c) != both(a)
    d = plan(tiny_spec(tricks={"cosine": {}, "mixup": {}}, design={"kind": "full_factorial"}, recipe={"epochs": 3}))
    assert both(d) != both(a)


def test_trial_config_is_fully_resolved():
    t = plan(tiny_spec()).trials[-1]
    cfg = t.config
    assert cfg["seed"] == t.seed and cfg["recipe"]["epochs"] == 2
    assert cfg["tricks"] == [{"use": "label_smoothing", "params": {"eps": 0.1}}]


def test_explicit_labels_and_duplicates():
    p = plan(tiny_spec(tricks={"cosine": {}}, design={"kind": "explicit", "arms": [
        {"label": "B", "tricks": []}, {"label": "B + C", "tricks": ["cosine"]}]}))
    assert [a.label for a in p.arms] == ["B", "B + C"]


@pytest.mark.parametrize("kind", ["explicit"])
def test_explicit_arm_repeated_is_refused(kind):
    from ablate.errors import SpecError

    with pytest.raises(SpecError, match="repeats the tricks of arm 0"):
        tiny_spec(tricks={"cosine": {}}, design={"kind": kind, "arms": [["cosine"], ["cosine"]]})


def test_describe_gives_one_legend_of_factor_letters_and_codes():
    """The letters of the aliases and the codes of the arm labels share characters (C is a code of
    cosine and the letter of the third factor): one legend maps both to the trick."""
    seven = {k: {} for k in ["cosine", "label_smoothing", "nesterov", "mixup", "ema", "no_bias_decay",
                             "random_erasing"]}
    text = plan(tiny_spec(tricks=seven, design={"kind": "fractional_factorial"})).describe()
    lines = text.splitlines()
    assert "tricks: factor letter (generators, aliases) / code (arm labels) / name" in lines
    assert "   A  C     cosine" in lines and "   C  N     nesterov" in lines
    assert not any(line.startswith("codes:") for line in lines)
    assert not any(line.strip() == "C = nesterov" for line in lines), "no second letter list"
    assert "Factors: A, B, C, D, E, F, G (see the tricks legend above)" in lines
    assert any(line.startswith("Generators: ") for line in lines)
    # other designs keep the single codes line
    assert "codes: C=cosine, S=label_smoothing" in plan(tiny_spec()).describe()


# --- trial identity, stated independently of ablate.design.trial: the id is the first 16 hex digits of
# the SHA-256 of "<base json>|<tricks json, comma-joined>|seed=<seed>[|values=<json>]", every
# JSON with sorted keys. Stores written by earlier releases rely on exactly this text.

def _sha16(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _expected_id(spec, tricks: list[dict], seed: int, values: dict | None = None) -> str:
    import json

    base = {"version": 1, "data": spec.data.model_dump(mode="json")}
    if spec.trial is None:
        base["model"] = spec.model.model_dump(mode="json")
        # `compile` changes how a trial runs, not what it computes: not hashed (ablate.design.changes)
        base["recipe"] = spec.recipe.model_dump(mode="json", exclude={"compile"})
    else:
        # `api` counts only when not the default, so ids from before it existed stay valid; the
        # names of passed-through secrets (`pass_env`) are never part of an id
        base["trial"] = spec.trial.model_dump(mode="json", exclude={"timeout_s", "pass_env"} | (
            {"api"} if spec.trial.api == "ablate" else set()))
    text = (json.dumps(base, sort_keys=True) + "|" + ",".join(json.dumps(t, sort_keys=True) for t in tricks)
            + f"|seed={seed}")
    if values:
        text += "|values=" + json.dumps(values, sort_keys=True)
    return _sha16(text)


def test_trial_id_is_the_hash_of_the_documented_text():
    spec = tiny_spec(tricks={"mixup": {"alpha": 0.3}, "cosine": {}}, design={"kind": "full_factorial"})
    p = plan(spec)
    both = next(a.index for a in p.arms if len(a.tricks) == 2)
    # canonical order: by registered name, whatever the spec's order
    tricks = [{"use": "cosine", "params": {"final_factor": 0.0}}, {"use": "mixup", "params": {"alpha": 0.3, "prob": 1.0}}]
    assert p.trial_id(both, 5) == _expected_id(spec, tricks, 5)
    assert p.trial_id(0, 0) == _expected_id(spec, [], 0)
    assert [t.resolved() for t in p.trial(both, 5).tricks] == tricks


def test_trial_id_of_a_command_trial_hashes_the_command_not_model_or_recipe(tmp_path):
    from ablate.design.spec import spec_from_dict

    raw = {"name": "cmd", "data": {"name": "digits"}, "tricks": {"cosine": {}},
           "trial": {"command": ["python", "-u", "scripts/train.py", "--fast"], "timeout_s": 30},
           "design": {"kind": "one_at_a_time"}, "seeds": 2}
    spec = spec_from_dict(raw, check_files=False)
    p = plan(spec)
    assert p.trial_id(1, 1) == _expected_id(spec, [{"use": "cosine", "params": {}}], 1)
    # the label is the script's file name, not the interpreter's
    assert [a.label for a in p.arms] == ["train.py", "train.py + cosine"]


def test_command_label_falls_back_to_the_program():
    from ablate.design.plan import command_label

    assert command_label(("python", "-m", "train")) == "python"
    assert command_label(("/usr/bin/train --fast",)) == "train"
    assert command_label(("python", "--cfg", "a/b/run.py")) == "run.py"
    assert command_label(("python", "train.py")) == "train.py"
    assert command_label(("python", "--config=x.yaml", "train.py")) == "train.py"


def test_trial_create_computes_the_same_id_and_hashes_search_values():
    from ablate.design.trial import Trial

    spec = tiny_spec(tricks={"mixup": {"alpha": 0.3}, "cosine": {}}, design={"kind": "full_factorial"})
    p = plan(spec)
    both = next(a.index for a in p.arms if len(a.tricks) == 2)
    settings = [spec.tricks["mixup"], spec.tricks["cosine"]]          # spec order, not canonical
    kw = dict(experiment="e", arm=both, label="x", seed=3, data=spec.data, model=spec.model,
              recipe=spec.recipe, tricks=settings)
    t = Trial.create(**kw)
    assert t.id == p.trial_id(both, 3)
    assert [s.use for s in t.tricks] == ["cosine", "mixup"]
    values = {"lr": 0.1, "batch": 32}
    s = Trial.create(**kw, values=values, origin="search", reason="sample 4")
    tricks = [{"use": "cosine", "params": {"final_factor": 0.0}}, {"use": "mixup", "params": {"alpha": 0.3, "prob": 1.0}}]
    assert s.id == _expected_id(spec, tricks, 3, {"batch": 32, "lr": 0.1}) != t.id
    assert (s.origin, s.reason, s.values, s.config["values"]) == ("search", "sample 4", values, values)
    params = s.params()
    assert params == {"trial_id": s.id, "experiment": "e", "arm": both, "label": "x", "seed": 3,
                      "tricks": {"cosine": {"final_factor": 0.0}, "mixup": {"alpha": 0.3, "prob": 1.0}}, "values": values,
                      "data": spec.data.model_dump(mode="json")}


def test_plan_trial_fields():
    spec = tiny_spec(seeds=2)
    p = plan(spec)
    t = p.trial(1, 9)
    assert (t.experiment, t.arm, t.label, t.seed, t.origin, t.reason, t.values, t.command) == \
        ("tiny", 1, "ResNet8-w8 + C", 9, "design", "design", {}, None)
    assert (t.data, t.model, t.recipe) == (spec.data, spec.model, spec.recipe)
    u = p.trial(1, 9, experiment="other", origin="adaptive", reason="CI too wide")
    assert (u.experiment, u.origin, u.reason, u.id) == ("other", "adaptive", "CI too wide", t.id)


def test_duplicate_labels_are_refused():
    from ablate.errors import DesignError

    with pytest.raises(DesignError, match="two arms share the label 'B'"):
        plan(tiny_spec(tricks={"cosine": {}}, design={"kind": "explicit", "arms": [
            {"label": "B", "tricks": []}, {"label": "B", "tricks": ["cosine"]}]}))
    # an arm given as a plain list gets the generated label next to labelled ones
    p = plan(tiny_spec(tricks={"cosine": {}}, design={"kind": "explicit", "arms": [
        {"label": "B", "tricks": []}, ["cosine"]]}))
    assert [a.label for a in p.arms] == ["B", "ResNet8-w8 + C"]
    assert [a.tricks for a in p.arms] == [(), ("cosine",)]


# --- baseline first: stated on hand-made matrices

def test_baseline_first_moves_the_all_off_row_first_and_keeps_the_rest_in_order():
    from ablate.design.arms import baseline_first, flipped_factors

    m = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]])
    assert baseline_first(m).tolist() == [[-1, -1], [1, 1], [-1, 1], [1, -1]]
    assert flipped_factors(m) == []


def test_baseline_first_flips_the_columns_on_in_row_zero_when_no_row_is_all_off():
    from ablate.design.arms import baseline_first, flipped_factors

    m = np.array([[1, -1, 1], [-1, 1, 1], [1, 1, -1], [-1, -1, -1 + 2]])   # no all -1 row
    got = baseline_first(m)
    flip = np.array([-1, 1, -1])                                            # columns 0 and 2 negated
    assert got.tolist() == (m * flip).tolist()
    assert got[0].tolist() == [-1, -1, -1]
    assert flipped_factors(m) == [0, 2]
    assert flipped_factors(m * flip) == []
    assert np.asarray(m).tolist()[0] == [1, -1, 1], "the input is not modified"


def test_plackett_burman_arms_follow_the_flipped_matrix():
    from ablate.design import factorial

    keys = ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay"]
    got, p = arms("plackett_burman", {k: {} for k in keys})
    raw = factorial.plackett_burman(keys).matrix
    flip = np.where(raw[0] == 1, -1, 1) if not (raw == -1).all(axis=1).any() else np.ones(len(keys), int)
    m = raw * flip
    off = int(np.flatnonzero((m == -1).all(axis=1))[0])
    order = [off] + [i for i in range(len(m)) if i != off]
    assert [a.levels for a in p.arms] == [tuple(int(v) for v in m[i]) for i in order]
    assert got == [tuple(k for k, v in zip(keys, m[i]) if v == 1) for i in order]


def test_fractional_factorial_honours_runs_and_resolution():
    five = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay"]}
    _, p = arms("fractional_factorial", five, runs=8, resolution=3)
    assert len(p.arms) == 8 and p.design.resolution == 3
    _, p = arms("fractional_factorial", five, runs=16, resolution=3)
    assert len(p.arms) == 16, "runs beyond the minimum are honoured"
    _, p = arms("fractional_factorial", five, resolution=5)
    assert len(p.arms) == 16 and p.design.resolution == 5


# --- describe: the exact text

def test_describe_one_at_a_time_marks_the_baseline():
    text = plan(tiny_spec()).describe()
    assert text.splitlines() == [
        "tiny: one_at_a_time design, 3 arms x 2 seeds = 6 trials (seeds 0, 1)",
        "codes: C=cosine, S=label_smoothing",
        "   arm  label         ",
        "     0  ResNet8-w8      (baseline)",
        "     1  ResNet8-w8 + C",
        "     2  ResNet8-w8 + S",
    ]


def test_describe_leave_one_out_and_adaptive_seeds():
    spec = tiny_spec(design={"kind": "leave_one_out"},
                     seeds={"count": 2, "adaptive": {"max_seeds": 6, "target_half_width": 0.25}})
    assert plan(spec).describe().splitlines() == [
        "tiny: leave_one_out design, 3 arms x 2 seeds = 6 trials (seeds 0, 1)",
        "adaptive seeds: the 2 seed(s) above are a pilot; then every arm runs the same n seeds, n chosen "
        "once (at most 6) so that a lift CI is about ±0.25 wide at the pilot's root-mean-square paired "
        "difference (blind to the lifts' signs); lifts are then tested as a fixed design of n seeds",
        "codes: C=cosine, S=label_smoothing",
        "   arm  label             ",
        "     0  ResNet8-w8 + C + S  (reference: all tricks)",
        "     1  ResNet8-w8 + S    ",
        "     2  ResNet8-w8 + C    ",
    ]


def test_describe_shows_the_first_32_and_last_8_arms_of_a_big_design():
    seven = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay", "ema",
                             "random_erasing"]}
    lines = plan(tiny_spec(tricks=seven, design={"kind": "full_factorial"})).describe().splitlines()
    rows = [int(line.split()[0]) for line in lines if line.strip()[:1].isdigit() and "ResNet8" in line]
    assert rows == list(range(32)) + list(range(120, 128))
    assert "   ...  (88 more)" in lines
    assert lines[lines.index("   ...  (88 more)") - 1].split()[0] == "31"
    assert lines[-3:] == ["", "Full factorial 2^7: 7 factors in 128 runs (no aliasing)",
                          "Factors: A, B, C, D, E, F, G (see the tricks legend above)"]
    assert not any(line.startswith("Sign convention") for line in lines)


def test_describe_states_the_flipped_factors():
    from ablate.design import factorial

    five = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay"]}
    p = plan(tiny_spec(tricks=five, design={"kind": "fractional_factorial", "resolution": 5}))
    raw = factorial.fractional_factorial(list(five), resolution=5).matrix
    assert not (raw == -1).all(axis=1).any()     # E = ABCD: the all-off run is not in the fraction
    flipped = [k for k, v in zip(five, raw[0]) if v == 1]
    assert p.arms[0].tricks == () and set(p.arms[0].levels) == {-1}
    line = next(x for x in p.describe().splitlines() if x.startswith("Sign convention"))
    assert line.startswith(f"Sign convention: the levels of {', '.join(flipped)} are flipped so that run 0")


def test_without_factor_list_drops_only_the_letter_lines():
    from ablate.design.plan import without_factor_list

    text = "\n".join(["  A = a", "Design X", "  A = a", "Factors:", "  A = cosine", "  B = mixup", "  Z = zeta",
                      "Generators: C = AB", "  A = again"])
    assert without_factor_list(text, ["A", "B"]) == [
        "  A = a", "Design X", "  A = a", "Factors: A, B (see the tricks legend above)", "  Z = zeta",
        "Generators: C = AB", "  A = again"]


def test_describe_lists_all_64_arms_of_a_2_to_the_6():
    six = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay", "ema"]}
    lines = plan(tiny_spec(tricks=six, design={"kind": "full_factorial"})).describe().splitlines()
    rows = [int(line.split()[0]) for line in lines if line.strip()[:1].isdigit() and "ResNet8" in line]
    assert rows == list(range(64)) and not any("more)" in line for line in lines)


def test_sign_convention_names_every_flipped_factor():
    from ablate.design import factorial

    seven = {k: {} for k in ["cosine", "label_smoothing", "mixup", "zero_gamma", "no_bias_decay", "ema",
                             "random_erasing"]}
    p = plan(tiny_spec(tricks=seven, design={"kind": "fractional_factorial", "resolution": 3}))
    raw = factorial.fractional_factorial(list(seven), resolution=3).matrix
    flipped = [k for k, v in zip(seven, raw[0]) if v == 1]
    assert len(flipped) >= 2 and not (raw == -1).all(axis=1).any()
    assert f"Sign convention: the levels of {', '.join(flipped)} are flipped" in p.describe()


def test_command_trials_carry_their_command():
    from ablate.design.spec import spec_from_dict
    from ablate.design.trial import Trial

    raw = {"name": "cmd", "data": {"name": "digits"}, "tricks": {"cosine": {}},
           "trial": {"command": ["python", "train.py"]}, "design": {"kind": "one_at_a_time"}, "seeds": 1}
    spec = spec_from_dict(raw, check_files=False)
    p = plan(spec)
    t = p.trial(1, 0)
    assert t.command == spec.trial and t.model is None
    made = Trial.create(experiment="cmd", arm=1, label="x", seed=0, data=spec.data, model=None, recipe=None,
                        tricks=[spec.tricks["cosine"]], command=spec.trial)
    assert made.command == spec.trial and made.id == t.id
    assert (made.origin, made.reason, made.values) == ("design", "design", {})
