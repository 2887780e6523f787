"""The torch adapter on a GPU (issue 14): a torchvision ResNet-50 at 224x224, 200 classes,
random weights, synthetic images held on the GPU (so that model throughput, not data
loading, is measured): one dense training epoch, ``collect_features`` (images per second),
``build_matrices``, the solve (``auto``, 50 features, k=5, 20 s), and one ``fine_tune``
epoch (its batch-norm recalibration pass included).  Exits 2 without a CUDA device.

    python benchmarks/gpu_pipeline.py --out benchmarks/results/gpu_pipeline.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_pipeline.json")
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cpu-smoke-test", action="store_true", help="run on the CPU (to check the script, not to time)")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.cpu_smoke_test:
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 2
    import torchvision
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    import qpmopt
    from qpmopt import torch as qt
    from qpmopt.bench import provenance
    from qpmopt.io import write_json

    dev = torch.device("cpu" if args.cpu_smoke_test else "cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    n_classes = 200
    y = torch.arange(args.images, device=dev) % n_classes
    x = torch.rand(args.images, 3, 224, 224, device=dev)
    x[torch.arange(args.images), y % 3, :32, :32] += 1.0  # a weak class cue
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=False)
    model = torchvision.models.resnet50(num_classes=n_classes).to(dev)
    rows: dict = {"device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu", "images": args.images, "batch": args.batch,
                  "torch": torch.__version__, "torchvision": torchvision.__version__}

    def timed(fn):
        sync()
        start = time.perf_counter()
        value = fn()
        sync()
        return value, time.perf_counter() - start

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def dense_epoch():
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    _, rows["dense_epoch_s"] = timed(dense_epoch)
    stats, rows["collect_features_s"] = timed(lambda: qt.collect_features(model, loader, progress=False))
    rows["collect_images_per_s"] = args.images / rows["collect_features_s"]
    (A, R, B), rows["build_matrices_s"] = timed(lambda: qt.build_matrices(stats, k=5, n_features=50))
    sol, rows["solve_s"] = timed(lambda: qpmopt.solve_assignment(A, R, B, 5, n_features=50, time_limit=20, seed=0))
    rows.update(objective=sol.objective, status=str(sol.status), auto_path=sol.info.get("auto_path"),
                b_nonzero=int((B != 0).sum()))
    qt.install_head(model, sol, stats)
    losses, rows["fine_tune_epoch_s"] = timed(lambda: qt.fine_tune(model, loader, epochs=1, progress=False))
    rows["fine_tune_losses"] = losses
    rows["fine_tune_images_per_s"] = args.images / rows["fine_tune_epoch_s"]
    if dev.type == "cuda":
        rows["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
    write_json(args.out, {**provenance(), "rows": [rows]}, force=True)
    for key, value in rows.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
