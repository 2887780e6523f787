"""The plug-ins under ``backends/`` (issue 16), through their installed entry points: CI
installs both, so these run there; elsewhere they skip and say how to install."""

import ast
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_within_gap_of_oracle, random_instance

import qpmopt
from qpmopt import ProblemTooLargeError, Status
from qpmopt.backends import ENTRY_POINT_GROUP
from qpmopt.instances import generate
from qpmopt.testing import assert_backend_conforms

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {"gurobi": "qpmopt-gurobi", "scip": "qpmopt-scip"}


def installed(name):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    if name not in eps:
        pytest.skip(f"{PLUGINS[name]} is not installed (pip install ./backends/{PLUGINS[name]})")
    return eps[name]


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugin_conforms_through_its_entry_point(name):
    installed(name)
    info = {row.name: row for row in qpmopt.available_backends()}[name]
    assert info.available and info.source == PLUGINS[name]
    assert_backend_conforms(name, seeds=range(4), time_limit=10)


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugin_uses_public_names_only(name):
    """A plug-in that needs a private module shows a gap in the public API."""
    package = ROOT / "backends" / PLUGINS[name] / PLUGINS[name].replace("-", "_")
    for source in package.rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qpmopt"):
                assert not any(part.startswith("_") for part in node.module.split(".")), (source, node.module)
                assert not any(alias.name.startswith("_") for alias in node.names), (source, node.module)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not any(p.startswith("_") for p in alias.name.split(".") if alias.name.startswith("qpmopt"))


@pytest.mark.parametrize("formulation", ["linear", "quadratic"])
def test_scip_proves_the_optimum_highs_proves(formulation):
    installed("scip")
    inst = generate("small", seed=2)
    args = (*inst.arrays(), inst.k)
    highs = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="highs", time_limit=60)
    scip = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="scip", time_limit=60,
                                   options={"formulation": formulation})
    assert highs.status is Status.OPTIMAL and scip.status is Status.OPTIMAL
    assert scip.objective == pytest.approx(highs.objective, abs=1e-7)
    with pytest.raises(qpmopt.OptionsError, match="formulation='cubic'"):
        qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="scip", options={"formulation": "cubic"})


@pytest.mark.parametrize("name", sorted(PLUGINS))
@pytest.mark.parametrize("seed", [0, 1])
def test_plugins_under_a_gap_limit_keep_its_promise(name, seed):
    installed(name)
    A, R, B = random_instance(np.random.default_rng(200 + seed), 6, 10, negative_r=seed == 1)
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=5, backend=name, gap_limit=0.05, time_limit=30,
                                  options={"sdp_bound": False})
    assert_within_gap_of_oracle(sol, A, R, B, 2, 5, True, 0.05)


def test_gurobi_beyond_its_bundled_licence_says_so():
    installed("gurobi")
    inst = generate("small", seed=2)
    try:
        sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="gurobi",
                                      time_limit=60)
    except ProblemTooLargeError as exc:
        assert "licence" in str(exc)
        pytest.skip(f"gurobipy's bundled licence is size-limited: {exc}")
    highs = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="highs",
                                    time_limit=60)
    assert sol.objective == pytest.approx(highs.objective, abs=1e-7)
    assert np.array_equal(sol.features, highs.features) or sol.status is Status.OPTIMAL
