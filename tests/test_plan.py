"""The planner: arms per design, paired seeds, stable ids."""

from __future__ import annotations

import numpy as np
import pytest

from ablate.plan import plan
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
