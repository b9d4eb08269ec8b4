"""spec_changes directly: which edits make another experiment, and how they are worded."""

from __future__ import annotations

from ablate.design.spec import spec_to_dict
from ablate.design.changes import section_differences, spec_changes
from tests.conftest import tiny_spec
from tests.search_helpers import search_dict, search_spec


def test_small_edits_keep_the_experiment_and_defining_ones_do_not():
    base = spec_to_dict(tiny_spec())
    assert spec_changes(base, base) == []
    assert spec_changes(base, spec_to_dict(tiny_spec(seeds=5, tricks={"cosine": {}}))) == []
    assert spec_changes(base, spec_to_dict(tiny_spec(recipe={"compile": True}))) == []   # execution only
    assert spec_changes(base, spec_to_dict(tiny_spec(design={"kind": "leave_one_out"}))) == ["design"]
    changed = spec_to_dict(tiny_spec(recipe={"lr": 0.1}, model={"depth": 14}))
    assert spec_changes(base, changed) == ["model", "recipe"]
    assert section_differences(base, changed, "recipe") == ["lr: 0.05 -> 0.1"]
    assert section_differences(base, changed, "design") == ["kind: one_at_a_time -> one_at_a_time"]


def test_a_searchs_space_and_metrics_define_it_its_budget_does_not():
    base = spec_to_dict(search_spec())
    assert spec_changes(base, spec_to_dict(search_spec(n_trials=20))) == []
    d = search_dict()
    d["search"]["params"]["recipe.lr"]["high"] = 2.0
    wider = spec_to_dict(search_spec(d))
    assert spec_changes(base, wider) == ["search"]
    (line,) = section_differences(base, wider, "search")
    assert line.startswith("params.recipe.lr: ") and "'high': 1.0" in line and "'high': 2.0" in line
    plain = spec_to_dict(tiny_spec())
    assert section_differences(plain, base, "search") == ["no search -> a search"]
    assert section_differences(base, plain, "search") == ["a search -> no search"]
