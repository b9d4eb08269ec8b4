"""Train a small MLP on scikit-learn's handwritten digits: a plain PyTorch training script.

It knows nothing about ablate. ablate runs it as a command trial (see digits_flags.yaml),
passing the arm's tricks as flags, and reads the JSON lines it prints:

    {"epoch": 3, "train_loss": 0.41, "val_loss": 0.38, "val_acc": 91.2}    one per epoch
    {"val_acc": 95.1, "val_loss": 0.2, "test_acc": 94.8, "test_loss": 0.21} at the end

Run it alone too: python examples/digits_train.py --epochs 30 --cosine
"""

import argparse
import json
import os

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--lr", type=float, default=0.05)                  # SGD, momentum 0.9
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--train-size", type=int, default=300)             # small: regularisers matter
parser.add_argument("--label-smoothing", type=float, default=0.0)      # the ablated flags
parser.add_argument("--cosine", action="store_true", help="cosine lr decay to 0 instead of constant")
parser.add_argument("--dropout", type=float, default=0.0)
args = parser.parse_args()

torch.set_num_threads(1)
torch.manual_seed(args.seed)

# The split is fixed (its own seed), so paired arms see the same images; the trial seed moves
# initialisation and batch order only.
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
order = torch.randperm(len(y), generator=torch.Generator().manual_seed(12345))
train, val, test = order[:args.train_size], order[-800:-400], order[-400:]

model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(args.dropout), nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs) if args.cosine else None


@torch.no_grad()
def evaluate(idx):
    model.eval()
    out = model(x[idx])
    model.train()
    return F.cross_entropy(out, y[idx]).item(), 100.0 * (out.argmax(1) == y[idx]).float().mean().item()


def stop_requested():
    # ablate creates this file when it prunes the trial (what ablate.client.should_stop checks)
    path = os.environ.get("ABLATE_STOP")
    return bool(path) and os.path.exists(path)


for epoch in range(1, args.epochs + 1):
    total = 0.0
    for batch in torch.randperm(len(train)).split(args.batch_size):
        idx = train[batch]
        loss = F.cross_entropy(model(x[idx]), y[idx], label_smoothing=args.label_smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    if sched is not None:
        sched.step()
    val_loss, val_acc = evaluate(val)
    print(json.dumps({"epoch": epoch, "train_loss": total / len(train), "val_loss": val_loss,
                      "val_acc": val_acc}), flush=True)
    if stop_requested():
        break

test_loss, test_acc = evaluate(test)
print(json.dumps({"val_acc": val_acc, "val_loss": val_loss, "test_acc": test_acc, "test_loss": test_loss}))
