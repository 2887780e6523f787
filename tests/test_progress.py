"""Progress lines (``verbose=True``): their rate limit, and that this package's own
backends report what they end with."""

from __future__ import annotations

import io
import re

import pytest

import qpmopt
from qpmopt.instances import generate
from qpmopt.progress import Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_rate_limited_but_notes_always_written():
    clock, out = _Clock(), io.StringIO()
    progress = Progress("demo", True, start=90.0, clock=clock, every=1.0, stream=out)
    for t, text in [(100.0, "a"), (100.5, "b"), (101.2, "c"), (101.3, "d")]:
        clock.now = t
        progress(text)
    clock.now = 101.4
    progress.note("end")
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1] for line in lines] == ["a", "c", "end"]
    assert lines[0].startswith("[demo") and "10.0s]" in lines[0]  # seconds since start


def test_a_disabled_progress_writes_nothing_and_formats_nothing():
    out = io.StringIO()
    progress = Progress("demo", False, stream=out)

    def boom() -> str:
        raise AssertionError("formatted although disabled")

    progress(boom)
    progress.note(boom)
    assert out.getvalue() == ""


def _last_line(err: str, name: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"[{name} ")]
    assert lines, f"no progress line from {name} in {err!r}"
    return lines[-1]


@pytest.mark.parametrize("backend, options", [
    ("anneal", {"max_steps": 300}),
    ("bnb", {"workers": 1}),
    ("bnb", {"workers": 2}),
    ("localsearch", None),
])
def test_verbose_backends_report_the_answer_they_return(capsys, backend, options):
    inst = generate("small", seed=2)
    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend=backend,
                                  options=options, time_limit=60, verbose=True)
    err = capsys.readouterr().err
    last = _last_line(err, backend)
    if backend == "localsearch":
        assert "swaps" in last
    else:
        assert f"{sol.objective:.8g}" in last  # the final line names the (verified) objective
    if backend == "bnb":
        assert f"bound {sol.bound:.8g}" in last and sol.status is qpmopt.Status.OPTIMAL
        nodes = [int(m) for m in re.findall(r"nodes (\d+),", err)]
        assert nodes and nodes == sorted(nodes)  # one line per dive or task, counts growing


def test_auto_names_its_path_and_the_annealer_reports_inside_it(capsys):
    inst = generate("medium", seed=0)
    qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, time_limit=6, verbose=True,
                            options={"sdp_bound": False})
    err = capsys.readouterr().err
    assert any(line.startswith("[auto ") and "path " in line for line in err.splitlines())
    _last_line(err, "anneal")  # asserts that the annealer wrote at least one line


def test_quiet_by_default(capsys):
    inst = generate("small", seed=2)
    for backend in ("anneal", "bnb", "localsearch", "auto"):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend=backend,
                                time_limit=5, options={"max_steps": 200} if backend == "anneal" else None)
    assert capsys.readouterr().err == ""
