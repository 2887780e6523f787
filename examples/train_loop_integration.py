"""QPM in an existing PyTorch training script, in about 40 lines.

Run: python examples/train_loop_integration.py [--epochs N] [--quick]
"""

import argparse
import copy

import torch
from torch.nn import functional as F

import qpmopt
from qpmopt import torch as qt
from qpmopt.torch.demo import DigitsNet, digits_loaders

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--quick", action="store_true", help="tiny settings for tests")
args = parser.parse_args()
epochs = 1 if args.quick else args.epochs

train, train_eval, test = digits_loaders(seed=0)
model = DigitsNet()  # your model: any network whose last layer is an nn.Linear
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
for _ in range(epochs):  # your usual dense training
    for x, y in train:
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

# 1. statistics in one streaming pass, 2. QPM's matrices, 3. the solve
stats = qt.collect_features(model, train_eval, progress=False)
A, R, B = qt.build_matrices(stats, k=5, n_features=20)
sol = qpmopt.solve_assignment(A, R, B, 5, n_features=20, time_limit=3 if args.quick else 20)

# 4. swap the last layer for the QPM head and fine-tune in your own loop
qpm = copy.deepcopy(model)
head = qt.install_head(qpm, sol, stats)
diversity = qt.FeatureDiversityLoss(head, weight=0.2)
opt = torch.optim.SGD(qpm.parameters(), lr=1e-2, momentum=0.9)
with qt.FeatureMapHook(qpm) as maps:
    for _ in range(epochs):
        for x, y in train:
            logits = qpm(x)
            loss = F.cross_entropy(logits, y) + diversity(maps.maps, logits)
            opt.zero_grad()
            loss.backward()
            opt.step()

qt.recalibrate_batch_norm(qpm, train)  # eval-mode BatchNorm statistics for the new weights
report = qt.interpretability_report(qpm, test)
print(f"QPM accuracy {100 * report['accuracy']:.1f}%  class 3 uses features {head.class_features(3)}")
