"""Spec loading: every shipped file loads, and every bad input names file, field, rule, value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ablate.errors import SpecError
from ablate.design.changes import section_differences, spec_changes
from ablate.design.spec import (
    available_specs,
    load_spec,
    parse_spec,
    spec_from_dict,
    spec_to_dict,
)
from tests.conftest import tiny_dict, tiny_spec

SEARCH_SPACES = sorted((Path(__file__).resolve().parents[2] / "search_spaces").glob("*.yaml"))


@pytest.mark.parametrize("path", SEARCH_SPACES, ids=lambda p: p.stem)
def test_every_shipped_spec_loads_and_says_how_to_run_it(path):
    text = path.read_text()
    # data files (CIFAR, ImageFolder) are not on CI machines: validate everything else
    spec = parse_spec(text, source=str(path), default_name=path.stem, check_files=False)
    assert spec.name == path.stem
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any(f"ablate run {path.stem}" in line for line in header), "header must show the command"


def test_specs_are_found_by_name():
    assert "quickstart" in available_specs()
    assert load_spec("quickstart").name == "quickstart"


def test_round_trip_through_plain_data():
    spec = tiny_spec(tricks={"mixup": {"alpha": 0.4}, "strong": {"use": "mixup", "alpha": 1.0}},
                     design={"kind": "explicit", "arms": [[], ["mixup"], {"label": "big", "tricks": ["strong"]}]})
    again = spec_from_dict(spec_to_dict(spec), check_files=False)
    assert again == spec
    assert again.tricks["strong"].use == "mixup" and again.tricks["strong"].params.alpha == 1.0
    assert again.tricks["strong"].code == "strong"


def test_seed_shorthands():
    assert tiny_spec(seeds=3).seeds.values == (0, 1, 2)
    assert tiny_spec(seeds=[4, 9]).seeds.values == (4, 9)
    s = tiny_spec(seeds={"count": 2, "adaptive": {"max_seeds": 5}})
    assert s.seeds.values == (0, 1) and s.seeds.adaptive.max_seeds == 5


def _error(content, spec_file) -> SpecError:
    path = spec_file(content)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    err = info.value
    assert str(path) in str(err), "the message names the file"
    return err


def test_missing_file_names_the_bundled_specs(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)
    with pytest.raises(SpecError, match="did you mean 'quickstart'"):
        load_spec("quikstart")


def test_yaml_syntax_error_has_a_line(spec_file):
    err = _error("name: x\ndata: {name: digits\nmodel: [\n", spec_file)
    assert err.line is not None and "YAML syntax error" in str(err)


def test_empty_file(spec_file):
    assert "empty" in str(_error("", spec_file))


@pytest.mark.parametrize("changes, path, words", [
    ({"tricks": {"mixpu": {}}}, "tricks.mixpu", ["unknown trick 'mixpu'", "did you mean 'mixup'"]),
    ({"tricks": {"mixup": {"alpha": -1}}}, "tricks.mixup.alpha", ["greater than 0", "-1"]),
    ({"tricks": {"label_smoothing": {"eps": 1.0}}}, "tricks.label_smoothing.eps", ["less than 1", "1.0"]),
    ({"tricks": {"warmup": {"epochs": 2}}}, "tricks.warmup", ["warmup epochs must be < recipe.epochs", "epochs=2"]),
    ({"tricks": {"mixup": {"alpah": 0.2}}}, "tricks.mixup.alpah", ["unknown parameter 'alpah'", "did you mean 'alpha'"]),
    ({"design": {"kind": "cumulativ"}}, "design.kind", ["unknown design kind 'cumulativ'", "did you mean 'cumulative'"]),
    ({"model": {"name": "resnet20"}}, "model.name", ["unknown model name 'resnet20'", "cifar_resnet"]),
    ({"model": {"depth": 21}}, "model", ["6n+2", "21"]),
    ({"data": {"name": "mnist"}}, "data.name", ["unknown data name 'mnist'", "digits"]),
    ({"tricks": {}}, "tricks", ["needs at least 1 trick"]),
    ({"seeds": 0}, "seeds", ["seeds must be >= 1", "0"]),
    ({"recipe": {"epcohs": 3}}, "recipe.epcohs", ["unknown key 'epcohs'", "did you mean 'epochs'", "allowed keys"]),
    ({"serach": {}}, "serach", ["unknown key 'serach'", "allowed keys"]),
    ({"data": {"name": "digits", "imagesize": 8}}, "data.imagesize", ["unknown key 'imagesize'", "image_size"]),
    ({"recipe": {"epochs": 0}}, "recipe.epochs", ["greater than or equal to 1", "0"]),
    ({"model": {"name": "convnet"}, "tricks": {"zero_gamma": {}}}, "tricks.zero_gamma", ["needs a ResNet"]),
    ({"tricks": {"resnet_b": {}}}, "tricks.resnet_b", ["bottleneck"]),
    ({"tricks": {"adam": {}, "adamw": {}}, "design": {"kind": "cumulative"}}, "tricks.adamw",
     ["cannot be combined", "optimizer"]),
    ({"tricks": {"cosine": {}}, "recipe": {"schedule": "cosine"}}, "tricks.cosine", ["would change nothing"]),
    ({"design": {"kind": "explicit", "arms": [[], ["mixup"]]}}, "design.arms[1]", ["'mixup'", "not in 'tricks'"]),
    ({"design": {"kind": "fractional_factorial"}}, "tricks", ["at least 3"]),
    ({"data": {"name": "cifar10", "root": "/no/such/cifar"}}, "data.root",
     ["cifar10 files not found", "/no/such/cifar", "does not download"]),
    ({"data": {"name": "imagefolder", "root": "/no/such/folder"}}, "data.root", ["does not exist"]),
])
def test_bad_input_names_field_rule_and_value(spec_file, changes, path, words):
    err = _error(yaml.safe_dump(tiny_dict(**changes), sort_keys=False), spec_file)
    assert err.path == path, str(err)
    for w in words:
        assert w in str(err), f"{w!r} not in: {err}"
    assert err.line is not None, "field errors carry the YAML line"


def test_error_line_points_at_the_key(spec_file):
    text = "name: t\ndata: {name: digits}\nmodel: {name: cifar_resnet, depth: 8}\nrecipe:\n  epochs: 2\n  epcohs: 3\n" \
           "tricks: {cosine: {}}\ndesign: {kind: cumulative}\nseeds: 1\n"
    err = _error(text, spec_file)
    assert err.line == 6


def test_imagefolder_without_classes(spec_file, tmp_path):
    (tmp_path / "imgs" / "train").mkdir(parents=True)
    err = _error(tiny_dict(data={"name": "imagefolder", "root": str(tmp_path / "imgs"), "val": None, "test": None}),
                 spec_file)
    assert "has no classes" in str(err) and err.path == "data.root"


def test_duplicate_codes_are_refused(spec_file):
    err = _error(tiny_dict(tricks={"mixup": {}, "m2": {"use": "mixup", "alpha": 1.0, "code": "M"}}), spec_file)
    assert "code 'M' is already used" in str(err)


FOUR = {"cosine": {}, "label_smoothing": {}, "mixup": {}, "no_bias_decay": {}}


@pytest.mark.parametrize("design, words", [
    ({"kind": "fractional_factorial", "resolution": 5}, ["resolution V for 4 factors needs >= 16 runs"]),
    ({"kind": "fractional_factorial", "runs": 12}, ["runs must be a power of two", "12"]),
    ({"kind": "fractional_factorial", "resolution": 6}, ["less than or equal to 5", "6"]),
])
def test_impossible_fractional_designs_are_refused_at_load(spec_file, design, words):
    err = _error(tiny_dict(tricks=FOUR, design=design), spec_file)
    assert err.path.startswith("design")
    for w in words:
        assert w in str(err), str(err)


def test_too_many_tricks_for_a_full_factorial(spec_file):
    many = {f"m{i}": {"use": "mixup", "alpha": 0.1 * (i + 1), "code": f"M{i}"} for i in range(17)}
    err = _error(tiny_dict(tricks=many, design={"kind": "full_factorial"}), spec_file)
    assert "2^17 = 131072 runs" in str(err) and "fractional_factorial" in str(err)


# -- issue 7 (bad input) and issue 13 (messages) ----------------------------------------------


def test_two_keys_with_identical_settings_are_refused_naming_both(spec_file):
    err = _error(tiny_dict(tricks={"mixup": {"alpha": 0.4}, "strong": {"use": "mixup", "alpha": 0.4}}), spec_file)
    assert err.path == "tricks.strong" and "'strong' and 'mixup'" in str(err) and "same parameters" in str(err)
    # the default value written out is the same setting as leaving it out
    err = _error(tiny_dict(tricks={"mixup": {}, "m2": {"use": "mixup", "alpha": 0.2}}), spec_file)
    assert "'m2' and 'mixup'" in str(err)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("changes, path", [
    (lambda v: {"tricks": {"mixup": {"alpha": v}}}, "tricks.mixup.alpha"),
    (lambda v: {"tricks": {"label_smoothing": {"eps": v}}}, "tricks.label_smoothing.eps"),
    (lambda v: {"recipe": {"lr": v}}, "recipe.lr"),
    (lambda v: {"recipe": {"weight_decay": v}}, "recipe.weight_decay"),
    (lambda v: {"recipe": {"momentum": v}}, "recipe.momentum"),
    (lambda v: {"recipe": {"milestones": [0.5, v]}}, "recipe.milestones[1]"),
    (lambda v: {"seeds": {"count": 2, "adaptive": {"target_half_width": v}}}, "seeds.adaptive.target_half_width"),
], ids=["alpha", "eps", "lr", "weight_decay", "momentum", "milestones", "target_half_width"])
def test_non_finite_numbers_are_refused_everywhere(spec_file, changes, path, value):
    text = yaml.safe_dump(tiny_dict(**changes(value)), sort_keys=False)
    assert ".inf" in text or ".nan" in text
    err = _error(text, spec_file)
    assert err.path == path, str(err)
    assert "finite number" in str(err) and err.line is not None


def test_a_repeated_key_is_refused_naming_both_lines(spec_file):
    text = "name: t\ndata: {name: digits}\nmodel: {name: cifar_resnet, depth: 8}\nrecipe:\n  epochs: 2\n" \
           "  lr: 0.1\n  epochs: 3\ntricks: {cosine: {}}\ndesign: {kind: one_at_a_time}\nseeds: 1\n"
    err = _error(text, spec_file)
    assert "key 'epochs' appears twice" in str(err) and "lines 5 and 7" in str(err) and err.line == 7
    err = _error(text.replace("seeds: 1\n", "seeds: 1\ntricks: {mixup: {}}\n"), spec_file)
    assert "key 'tricks' appears twice" in str(err) and "lines 8 and 11" in str(err)


def test_exponential_aliases_are_refused_before_expansion(spec_file):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    err = _error("\n".join(lines) + "\nname: t\n", spec_file)    # 10^10 values if expanded
    assert "expands to more than 100,000 values" in str(err) and "aliases" in str(err)
    err = _error("name: t\ndata: &d {name: digits, extra: *d}\n", spec_file)
    assert "refers to itself" in str(err)


def test_small_aliases_still_work(spec_file):
    text = yaml.safe_dump(tiny_dict(), sort_keys=False).replace("recipe:\n", "recipe: &r\n")
    assert load_spec(spec_file(text)).recipe.epochs == 2


def test_oversized_file_is_refused_without_reading_it(spec_file):
    err = _error("# " + "x" * 1_100_000 + "\nname: t\n", spec_file)
    assert "bytes; the limit is 1,000,000" in str(err)


@pytest.mark.parametrize("changes, path, words", [
    ({"seeds": 1_000_000_000}, "seeds", ["1,000,000,000 seeds per arm", "limit is 1,000"]),
    ({"seeds": {"count": 10 ** 12}}, "seeds", ["seeds.count asks for 1,000,000,000,000", "limit is 1,000"]),
    ({"seeds": [0, 2 ** 40]}, "seeds.values", ["seeds must be in [0, 4294967295]", str(2 ** 40)]),
    ({"tricks": {f"m{i}": {"use": "mixup", "alpha": 0.1 * (i + 1), "code": f"M{i}"} for i in range(16)},
      "design": {"kind": "full_factorial"}}, "seeds", ["65,536 arms x 2 seeds = 131,072 trials", "limit is 100,000"]),
    ({"tricks": {f"m{i}": {"use": "mixup", "alpha": 0.1 * (i + 1), "code": f"M{i}"} for i in range(12)},
      "design": {"kind": "full_factorial"}, "seeds": {"count": 2, "adaptive": {"max_seeds": 30}}},
     "seeds", ["4,096 arms x 30 seeds = 122,880 trials"]),
])
def test_absurd_sizes_are_refused_with_the_count_and_the_limit(spec_file, changes, path, words):
    err = _error(tiny_dict(**changes), spec_file)
    assert err.path == path, str(err)
    for w in words:
        assert w in str(err), str(err)


def test_an_unknown_key_is_reported_with_the_missing_field_it_meant(spec_file):
    d = tiny_dict()
    d["recipe"] = {"epoch": 20, "lr": 0.1}
    err = _error(d, spec_file)
    assert err.path == "recipe.epoch"
    assert "unknown key 'epoch'" in str(err) and "did you mean 'epochs'" in str(err)
    assert "'recipe.epochs' missing" in str(err)


@pytest.mark.parametrize("changes, path, words", [
    ({"seeds": "three"}, "seeds", ["a number of seeds", "a list of seed values", "count: 3", "'three'"]),
    ({"seeds": 2.5}, "seeds", ["a number of seeds", "2.5"]),
    ({"seeds": True}, "seeds", ["a number of seeds", "True"]),
    ({"tricks": {"mixup": {"alpha": [0.2, 0.4, 1.0]}}}, "tricks.mixup.alpha",
     ["one value", "use: mixup", "search", "[0.2, 0.4, 1.0]"]),
    ({"recipe": {"lr": [0.1, 0.2]}}, "recipe.lr", ["one value", "[0.1, 0.2]"]),
])
def test_messages_say_which_forms_are_allowed(spec_file, changes, path, words):
    err = _error(tiny_dict(**changes), spec_file)
    assert err.path == path, str(err)
    for w in words:
        assert w in str(err), str(err)


def test_a_python_script_is_recognised(tmp_path):
    script = tmp_path / "train.py"
    for exists in (False, True):
        if exists:
            script.write_text("import torch\nprint('training')\n")
        with pytest.raises(SpecError) as info:
            load_spec(script)
        assert "is a Python script, not a spec" in str(info.value)
        assert "trial: {command: [python, " in str(info.value)
    shebang = tmp_path / "train"
    shebang.write_text("#!/usr/bin/env python3\nimport torch\n")
    with pytest.raises(SpecError, match="Python script"):
        load_spec(shebang)


# -- issue 14: every section refuses unknown keys; issue 7: wrong types, extremes, nesting ----------


@pytest.mark.parametrize("changes, path", [
    ({"bogus": 1}, "bogus"),
    ({"data": {"bogus": 1}}, "data.bogus"),
    ({"data": {"name": "synthetic", "bogus": 1}}, "data.bogus"),
    ({"model": {"bogus": 1}}, "model.bogus"),
    ({"model": {"name": "convnet", "bogus": 1}}, "model.bogus"),
    ({"recipe": {"bogus": 1}}, "recipe.bogus"),
    ({"tricks": {"mixup": {"bogus": 1}}}, "tricks.mixup.bogus"),
    ({"design": {"kind": "one_at_a_time", "bogus": 1}}, "design.bogus"),
    ({"design": {"kind": "fractional_factorial", "bogus": 1}, "tricks": FOUR}, "design.bogus"),
    ({"design": {"kind": "explicit", "arms": [[]], "bogus": 1}}, "design.bogus"),
    ({"design": {"kind": "explicit", "arms": [[], {"tricks": ["cosine"], "bogus": 1}]}}, "design.arms[1].bogus"),
    ({"seeds": {"count": 2, "bogus": 1}}, "seeds.bogus"),
    ({"seeds": {"count": 2, "adaptive": {"bogus": 1}}}, "seeds.adaptive.bogus"),
    ({"metric": {"name": "val_acc", "bogus": 1}}, "metric.bogus"),
], ids=lambda x: x if isinstance(x, str) else None)
def test_every_section_refuses_unknown_keys(spec_file, changes, path):
    err = _error(tiny_dict(**changes), spec_file)
    assert err.path == path, str(err)
    assert "unknown" in str(err) and "'bogus'" in str(err) and err.line is not None


@pytest.mark.parametrize("seeds", [
    {"count": 3, "adaptiv": {"max_seeds": 5}},
    {"count": 3, "adaptive": {"max_seed": 5}},
    {"values": [0, 1], "adaptive": {"max_seeds": 5, "target_halfwidth": 0.5}},
])
def test_a_typo_inside_seeds_never_switches_adaptive_seeding_off(spec_file, seeds):
    err = _error(tiny_dict(seeds=seeds), spec_file)
    assert err.path.startswith("seeds.") and "unknown key" in str(err) and "did you mean" in str(err)


@pytest.mark.parametrize("changes, path, words", [
    # wrong types
    ({"name": "has space"}, "name", ["pattern"]),
    ({"name": 123}, "name", ["valid string", "123"]),
    ({"description": ["a"]}, "description", ["valid string"]),
    ({"recipe": {"epochs": "ten"}}, "recipe.epochs", ["valid integer", "'ten'"]),
    ({"recipe": {"epochs": 2.5}}, "recipe.epochs", ["integer", "2.5"]),
    ({"recipe": {"lr": "fast"}}, "recipe.lr", ["valid number", "'fast'"]),
    ({"recipe": {"nesterov": "maybe"}}, "recipe.nesterov", ["valid boolean", "'maybe'"]),
    ({"recipe": {"optimizer": "sgdd"}}, "recipe.optimizer", ["'sgd'", "'sgdd'"]),
    ({"recipe": {"milestones": 0.5}}, "recipe.milestones", ["valid tuple", "0.5"]),
    ({"recipe": {"milestones": [0.8, 0.4]}}, "recipe.milestones", ["increasing fractions", "[0.8, 0.4]"]),
    ({"data": {"image_size": 8.5}}, "data.image_size", ["integer", "8.5"]),
    ({"model": {"depth": "deep"}}, "model.depth", ["valid integer", "'deep'"]),
    ({"tricks": ["mixup"]}, "tricks", ["mapping of trick name", "list"]),
    ({"tricks": {"mixup": 0.2}}, "tricks.mixup", ["parameters must be a mapping", "0.2"]),
    ({"design": "cumulative"}, "design", ["cumulative"]),
    ({"design": {"kind": "explicit", "arms": "baseline"}}, "design.arms", ["valid tuple"]),
    ({"design": {"kind": "explicit", "arms": []}}, "design.arms", ["at least 1"]),
    ({"metric": "val_acc"}, "metric", ["val_acc"]),
    ({"metric": {"name": "top1"}}, "metric", ["'top1' is not built in", "mode: max"]),
    ({"metric": {"name": "val_acc", "mode": "min"}}, "metric", ["mode must be 'max'"]),
    # extremes
    ({"recipe": {"epochs": 10 ** 12}}, "recipe.epochs", ["less than or equal to 100000"]),
    ({"recipe": {"batch_size": 1}}, "recipe.batch_size", ["greater than or equal to 2", "1"]),
    ({"recipe": {"lr": 1e9}}, "recipe.lr", ["less than or equal to 10"]),
    ({"recipe": {"lr": 0}}, "recipe.lr", ["greater than 0"]),
    ({"recipe": {"momentum": 1.0}}, "recipe.momentum", ["less than 1"]),
    ({"data": {"train_size": 100_000}}, "data.train_size", ["less than or equal to 1079"]),
    ({"data": {"name": "synthetic", "train_size": 10 ** 9}}, "data", ["GiB in memory"]),
    ({"model": {"width": 10 ** 6}}, "model.width", ["less than or equal to 256"]),
    ({"seeds": [-1, 0]}, "seeds.values", ["seeds must be in [0,", "-1"]),
    ({"seeds": [1, 1]}, "seeds.values", ["distinct"]),
    ({"seeds": {"count": 5, "adaptive": {"max_seeds": 3}}}, "seeds", ["must be >= the initial number"]),
    ({"seeds": {"count": 2, "adaptive": {"max_seeds": 10 ** 6}}}, "seeds.adaptive.max_seeds",
     ["less than or equal to 1000"]),
    ({"seeds": {"count": 2, "adaptive": {"target_half_width": -1}}}, "seeds.adaptive.target_half_width",
     ["greater than 0"]),
    # wrong nesting
    ({"epochs": 2}, "epochs", ["unknown key 'epochs' in the top level", "allowed keys"]),
    ({"recipe": {"epochs": 2, "mixup": {}}}, "recipe.mixup", ["unknown key 'mixup' in recipe"]),
    ({"design": {"kind": "one_at_a_time", "tricks": {"mixup": {}}}}, "design.tricks", ["unknown key 'tricks'"]),
    ({"tricks": {"mixup": {"alpha": {"value": 0.2}}}}, "tricks.mixup.alpha", ["valid number"]),
    ({"seeds": {"count": 2, "adaptive": 5}}, "seeds.adaptive", ["valid dictionary"]),
])
def test_wrong_types_extremes_and_nesting(spec_file, changes, path, words):
    err = _error(tiny_dict(**changes), spec_file)
    assert err.path == path, str(err)
    for w in words:
        assert w in str(err), f"{w!r} not in: {err}"


def test_spec_changes_tells_a_new_experiment_from_an_edit():
    old = spec_to_dict(tiny_spec())
    edits = [tiny_spec(tricks={"cosine": {}, "label_smoothing": {"eps": 0.2}}), tiny_spec(seeds=5),
             tiny_spec(tricks={"cosine": {}}), tiny_spec(tricks={**tiny_dict()["tricks"], "mixup": {}}),
             tiny_spec(metric={"name": "val_loss"}), tiny_spec(description="other words")]
    for new in edits:
        assert spec_changes(old, spec_to_dict(new)) == []
    assert spec_changes(old, spec_to_dict(tiny_spec(design={"kind": "cumulative"}))) == ["design"]
    assert spec_changes(old, spec_to_dict(tiny_spec(data={"train_size": 128}))) == ["data"]
    assert spec_changes(old, spec_to_dict(tiny_spec(model={"depth": 14}))) == ["model"]
    both = spec_to_dict(tiny_spec(recipe={"epochs": 3}, model={"name": "convnet"}))
    assert spec_changes(old, both) == ["model", "recipe"]
    assert section_differences(old, both, "recipe") == ["epochs: 2 -> 3"]
