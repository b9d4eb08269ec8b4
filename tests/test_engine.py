"""The run engine: trial identity and the trainer's numbers survive the refactor; sources,
executors and the recorder plug together; retries, pruning and open metrics."""

from __future__ import annotations

import pytest

from ablate.plan import plan
from ablate.run.experiment import run_experiment
from ablate.spec import load_spec, spec_from_dict, spec_to_dict
from ablate.store import Store

# The ids of the quickstart's 15 trials as ablate 0.1.0 (store schema ablate-store/1) computed
# them: stores made by that release must keep resuming.
QUICKSTART_IDS = [
    "35529a64a4465d8a", "922beb8b7d6afa46", "8357a0c88102f31d", "fefd4c8417934f2c", "5fa41a33941105d9",
    "59f1b02da85b01cd", "7b3871446f6fbcda", "9de6b3b0e8ea8934", "b538a89263441b57", "733d17e6762d79d6",
    "30e769ca68b131fe", "643d46d1d6135f6a", "fb111458052f6af3", "4a1fb79c9383edde", "00ee547a1b158aa0",
]

# Per-trial metrics of the shrunk quickstart below, computed on the CPU by the runner before the
# engine refactor (commit 22f1e04). Only tricks that draw no randomness, so that routing the
# tricks' draws through their own generators does not move them.
PINNED = {
    "e622316a435b5f3b": {"val_acc": 12.256267409470752, "val_loss": 2.3030898750326427,
                         "test_acc": 10.86350974930362, "test_loss": 2.298699934170439,
                         "epoch_train_loss": [2.3813188870747886, 2.3004074096679688]},
    "038676c09da37950": {"val_acc": 8.913649025069638, "val_loss": 2.3045275164845926,
                         "test_acc": 10.30640668523677, "test_loss": 2.2998934349973887,
                         "epoch_train_loss": [2.3864596684773765, 2.295950253804525]},
}


def shrunk_quickstart():
    raw = spec_to_dict(load_spec("quickstart"))
    raw["tricks"] = {k: v for k, v in raw["tricks"].items() if k != "mixup"}
    raw["recipe"]["epochs"] = 2
    raw["data"] = {**raw["data"], "train_size": 96, "image_size": 8}
    raw["seeds"] = [0]
    raw["design"] = {"kind": "explicit", "arms": [[], ["cosine", "label_smoothing", "nesterov"]]}
    return spec_from_dict(raw, check_files=False)


def test_quickstart_trial_ids_are_unchanged():
    assert [t.id for t in plan(load_spec("quickstart")).trials] == QUICKSTART_IDS


def test_quickstart_metrics_are_pinned_bit_for_bit_on_the_cpu(tmp_path):
    store = Store(tmp_path / "s.db", create=True)
    spec = shrunk_quickstart()
    run_experiment(spec, store, device="cpu")
    frame = store.trials_frame(spec.name).set_index("trial_id")
    epochs = store.epochs_frame(spec.name)
    assert sorted(frame.index) == sorted(PINNED)
    for tid, want in PINNED.items():
        for col in ("val_acc", "val_loss", "test_acc", "test_loss"):
            assert frame.loc[tid, col] == want[col], (tid, col)
        got = epochs[epochs.trial_id == tid].sort_values("epoch").train_loss.tolist()
        assert got == want["epoch_train_loss"], tid
