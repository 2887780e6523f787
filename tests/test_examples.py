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
    assert report["solution"]["status"] in ("optimal", "feasible")
    assert len(report["solution"]["class_features"][0]) == 5
    assert 0 <= report["qpm"]["accuracy"] <= 1
