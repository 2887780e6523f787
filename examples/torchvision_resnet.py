"""QPM on a torchvision ResNet inside an existing training loop, then saved and reloaded.

Needs torchvision (`pip install -e ".[backbones]"`).  No download: the network starts from
random weights and the data are synthetic (a coloured square whose colour is the class);
with your own data, load pretrained weights instead.

    python examples/torchvision_resnet.py [--epochs 5] [--quick]
"""

import argparse
import tempfile
from pathlib import Path

import torch
import torchvision
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import qpmopt
from qpmopt import torch as qt

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--quick", action="store_true", help="tiny settings for tests")
args = parser.parse_args()
epochs = 2 if args.quick else args.epochs
n = 96 if args.quick else 512
torch.manual_seed(0)


def squares(n, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = 0.3 * torch.rand(n, 3, 64, 64, generator=g), torch.arange(n) % 4
    for i in range(n):
        r, c = torch.randint(0, 49, (2,), generator=g).tolist()
        x[i, [int(y[i])] if y[i] < 3 else [0, 1, 2], r : r + 16, c : c + 16] += 1.0
    return TensorDataset(x, y)


train = DataLoader(squares(n, 1), batch_size=32, shuffle=True)
test = DataLoader(squares(n // 2, 2), batch_size=64)
model = torchvision.models.resnet18(num_classes=4)  # or resnet50(weights=...) with your data
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
for _ in range(epochs):  # your usual training loop
    for x, y in train:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

stats = qt.collect_features(model, train, progress=False)  # maps found: layer4's output
A, R, B = qt.build_matrices(stats, k=2, n_features=8)
sol = qpmopt.solve_assignment(A, R, B, 2, n_features=8, time_limit=5)
head = qt.install_head(model, sol, stats)  # replaces model.fc
qt.fine_tune(model, train, epochs=epochs, progress=False)  # or your own loop with qt.FeatureDiversityLoss
report = qt.interpretability_report(model, test)

path = Path(tempfile.mkdtemp()) / "resnet18-qpm.pt"
qt.save_qpm_model(model, path)
fresh = torchvision.models.resnet18(num_classes=4)  # e.g. in another process
qt.load_qpm_model(fresh, path)
model.eval()
fresh.eval()
with torch.no_grad():
    same = torch.equal(model(next(iter(test))[0]), fresh(next(iter(test))[0]))
print(f"QPM accuracy {100 * report['accuracy']:.1f}%  class 0 uses features {head.class_features(0)}  "
      f"reloaded logits equal: {same}")
