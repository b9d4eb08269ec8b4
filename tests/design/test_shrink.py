"""`--override KEY=VALUE` and `--shrink`: edits by dotted path, errors naming the override and the
field, and the shrink rules on every shipped spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from ablate.cli import main
from ablate.errors import SpecError
from ablate.design.plan import plan
from ablate.design.stages import stage_seeds
from ablate.design.shrink import apply_overrides, load_run_spec, parse_override, shrink_spec
from ablate.store import Store
from tests.conftest import tiny_dict, tiny_spec

SPECS = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "search_spaces").glob("*.yaml"))


def test_overrides_set_fields_by_dotted_path_with_yaml_values():
    spec = tiny_spec(tricks={"mixup": {"alpha": 0.2}, "warmup": {"epochs": 1}})
    out = apply_overrides(spec, ["recipe.epochs=3", "tricks.mixup.alpha=0.4", "recipe.milestones=[0.3, 0.6]",
                                 "seeds=3", "model.width=12", "data.flip=true"])
    assert out.recipe.epochs == 3 and out.recipe.lr == spec.recipe.lr   # merged, not replaced
    assert out.tricks["mixup"].params.alpha == 0.4 and out.recipe.milestones == (0.3, 0.6)
    assert out.seeds.values == (0, 1, 2) and out.model.width == 12 and out.data.flip is True
    assert apply_overrides(spec, []) is spec
    assert parse_override("data.val=") == (("data", "val"), None)


def test_a_plain_value_for_a_named_section_starts_it_afresh():
    spec = tiny_spec(data={"name": "digits", "image_size": 8, "train_size": 64, "channels": 3})
    out = apply_overrides(spec, ["data=synthetic", "data.train_size=40", "model.name=resnet18",
                                 "design=leave_one_out"])
    assert out.data.name == "synthetic" and out.data.train_size == 40 and out.data.image_size == 32
    assert out.model.name == "resnet18" and out.design.kind == "leave_one_out"


@pytest.mark.parametrize("override, words", [
    ("recipe.epochz=3", r"--override recipe.epochz=3, field 'recipe.epochz': unknown key 'epochz' in recipe \(did you mean 'epochs'\?\)"),
    ("recip.epochs=3", r"--override recip.epochs=3, field 'recip': unknown path 'recip' \(did you mean 'recipe'\?\)"),
    ("desing=cumulative", r"field 'desing': unknown section 'desing' \(did you mean 'design'\?\)"),
    ("tricks.label_smoothin.eps=0.2", r"field 'tricks.label_smoothin': unknown path .*did you mean 'label_smoothing'"),
    ("recipe.epochs=many", r"--override recipe.epochs=many, field 'recipe.epochs': .*valid integer.*got 'many'"),
    ("recipe.lr=[1", r"--override recipe.lr=\[1, field 'recipe.lr': the value '\[1' is not valid YAML"),
    ("recipe.epochs.x=1", r"field 'recipe.epochs': 'recipe.epochs' is 2, not a section"),
    ("epochs", r"an override is KEY=VALUE .*got 'epochs'"),
    ("data.root=/x", r"--override data.root=/x, field 'data.root': unknown key 'root' in data"),
])
def test_bad_overrides_name_the_override_and_the_path(override, words):
    with pytest.raises(SpecError, match=words):
        apply_overrides(tiny_spec(), [override])


def test_the_command_line_exits_2_naming_the_path_and_writes_nothing(capsys, spec_file, tmp_path):
    path = spec_file(tiny_dict())
    store = tmp_path / "s.db"
    for command in ("run", "plan"):
        extra = ["--store", str(store)] if command == "run" else []
        assert main([command, str(path), "--override", "recipe.batch_sise=8", *extra]) == 2
        assert "field 'recipe.batch_sise'" in capsys.readouterr().err
    assert not store.exists()


@pytest.mark.parametrize("name", SPECS)
def test_shrink_keeps_every_shipped_spec_valid_and_small(name):
    original = load_run_spec(name, check_files=False)
    spec = load_run_spec(name, shrink=True)   # data files are checked: the shrunk spec needs none
    assert spec.name == f"{name}-shrunk" and shrink_spec(spec).name == spec.name
    assert spec.data.name in ("digits", "synthetic") and spec.data.train_size <= 64
    assert spec.recipe.epochs <= 2 and spec.recipe.batch_size <= 16
    if original.search is None or stage_seeds(original).top_k == 0:
        assert len(spec.seeds.values) == 1 and spec.seeds.values[0] == original.seeds.values[0]
    else:   # a search that validates: its first seeds, one to search, one to select, two to report
        assert spec.seeds.values == original.seeds.values[:4]
        st = stage_seeds(spec)
        assert (len(st.search), len(st.select), len(st.report)) == (1, 1, 2) and st.top_k == 2
    assert len(plan(spec).arms) == len(plan(original).arms), "the design is kept"
    assert spec.tricks.keys() == original.tricks.keys()
    if getattr(original.model, "depth", None):
        assert spec.model.depth <= original.model.depth


def test_shrink_rules_for_lengths_in_epochs_adaptive_seeds_and_file_data(tmp_path):
    from ablate.design.spec import spec_from_dict

    spec = spec_from_dict(tiny_dict(data={"name": "imagefolder", "root": str(tmp_path), "channels": 1, "flip": True},
                                    model={"name": "cifar_resnet", "depth": 56, "width": 32},
                                    recipe={"epochs": 30, "batch_size": 128},
                                    tricks={"warmup": {"epochs": 5}, "mixup": {}},
                                    seeds={"count": 3, "adaptive": {"max_seeds": 8}}), check_files=False)
    small = shrink_spec(spec)
    assert small.data.name == "digits" and small.data.channels == 1 and small.data.flip is True
    assert small.model.depth == 8 and small.model.width == 8
    assert small.recipe.epochs == 1 and small.tricks["warmup"].params.epochs == 0.5
    assert small.seeds.values == (0, 1) and small.seeds.adaptive.max_seeds == 2
    assert small.description.startswith("(shrunk)")


def test_a_shrunk_run_is_its_own_experiment_in_the_store(capsys, spec_file, tmp_path):
    path = spec_file(tiny_dict(recipe={"epochs": 3}))
    store = tmp_path / "s.db"
    assert main(["run", str(path), "--shrink", "--override", "tricks.label_smoothing.eps=0.2",
                 "--store", str(store), "--no-report"]) == 0
    frame = Store(store).trials_frame("tiny-shrunk")
    assert len(frame) == 3 and (frame.status == "complete").all() and (frame.epochs == 1).all()
    assert "tiny" not in Store(store).status_counts()


def test_plan_takes_the_same_overrides_and_shrink(capsys):
    # the override replaces the data before the files are checked: no CIFAR-10 needed
    assert main(["plan", "cifar10_attention", "--override", "data=digits", "--shrink", "--no-estimate"]) == 0
    out = capsys.readouterr().out
    assert "cifar10_attention-shrunk: one_at_a_time design, 4 arms x 1 seeds" in out and "ResNet8-w8 + SE" in out
