"""Spec loading: every shipped file loads, and every bad input names file, field, rule, value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ablate.errors import SpecError
from ablate.spec import (
    available_specs,
    load_spec,
    parse_spec,
    spec_from_dict,
    spec_to_dict,
)
from tests.conftest import tiny_dict, tiny_spec

SEARCH_SPACES = sorted((Path(__file__).parent.parent / "search_spaces").glob("*.yaml"))


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
