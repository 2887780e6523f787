"""Examples are run by the suite (on tiny settings) so they cannot rot."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_train_loop_integration_example_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_loop_integration.py"), "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"QPM accuracy ([\d.]+)%  class 3 uses features \[([\d, ]+)\]", out.stdout)
    assert m, out.stdout
    assert len(m.group(2).split(",")) == 5  # k features for the class


@pytest.mark.slow
def test_quick_demo_writes_pictures_and_report(tmp_path):
    from qpmopt.torch.demo import run_demo

    report = run_demo(tmp_path, quick=True, progress=False, echo=lambda s: None)
    for name in ("assignment.png", "class_pair.png", "report.json"):
        assert (tmp_path / name).stat().st_size > 1000
    solution = report["solution"]
    assert solution["status"] in ("optimal", "feasible")
    # the explanation is a valid QPM assignment: 5 selected features per class, all different
    rows = [frozenset(solution["class_features"][c]) for c in range(10)]
    assert all(len(r) == 5 and r <= set(solution["features"]) for r in rows) and len(set(rows)) == 10
    assert len(solution["features"]) == 20
    # even after one epoch, both models are far above chance (10%) on the held-out digits
    assert report["dense"]["accuracy"] > 0.5
    # one fine-tuning epoch at lr 1e-2: without recomputing the batch-norm statistics
    # afterwards, eval accuracy fell to 0.78 here (0.50 after 5 dense epochs)
    assert report["qpm"]["accuracy"] > 0.9


def test_solve_npz_example_prints_the_explanation():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "solve_npz.py"), "--demo", "--time-limit", "3"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    classes = re.findall(r"class (\d+): features \[([\d, ]+)\]", out.stdout)
    assert len(classes) == 20 and all(len(f.split(",")) == 3 for _, f in classes)  # the small preset, k=3
    assert len({f for _, f in classes}) == 20  # every class its own set


def test_benchmark_solvers_example_writes_and_compares(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "examples" / "benchmark_solvers.sh"), "tiny", "2", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "first.json").stat().st_size > 100 and (tmp_path / "second.json").stat().st_size > 100
    assert "ratio" in out.stdout or "new/old" in out.stdout, out.stdout[-2000:]


@pytest.mark.slow
def test_torchvision_resnet_example_runs():
    pytest.importorskip("torchvision")
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "torchvision_resnet.py"), "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"QPM accuracy ([\d.]+)%  class 0 uses features \[([\d, ]+)\]  reloaded logits equal: True",
                  out.stdout)
    assert m, out.stdout
    assert float(m.group(1)) > 25.0 and len(m.group(2).split(",")) == 2
