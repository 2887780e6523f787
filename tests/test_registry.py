"""Registry, entry points, availability, and that verification catches lying backends."""

import importlib.metadata
from dataclasses import dataclass

import numpy as np
import pytest

import qpmopt
from qpmopt import Backend, Capabilities, VerificationError
from qpmopt.backends import base, registry
from qpmopt.instances import generate
from qpmopt.search import best_assignment, greedy_selection
from qpmopt.solution import BackendResult, Termination
from qpmopt.testing import assert_backend_conforms


@dataclass(frozen=True)
class _Opts:
    lie: str = ""


class MiniBackend(Backend):
    """A third-party style backend: greedy selection; can be told to lie."""

    name = "mini"
    capabilities = Capabilities(deterministic=True)
    Options = _Opts

    def solve(self, problem, config, options):
        sel = greedy_selection(problem)
        W, _ = best_assignment(problem, sel)
        if W is None:  # no assignment of the greedy selection meets the rules: say so
            return BackendResult(None, None, Termination.CONVERGED)
        if options.lie == "infeasible":
            W = W.copy()
            W[0] = False
        bound = -1e9 if options.lie == "bound" else None
        return BackendResult(sel, W, Termination.CONVERGED, bound=bound,
                             proven_optimal=options.lie == "optimal")


class NeedsMissingModule(MiniBackend):
    name = "needs-missing"
    required_modules = ("qpmopt_no_such_module_xyz",)


@pytest.fixture
def plugins(monkeypatch):
    eps = {
        "mini": importlib.metadata.EntryPoint("mini", "test_registry:MiniBackend", registry.ENTRY_POINT_GROUP),
        "needs-missing": importlib.metadata.EntryPoint("needs-missing", "test_registry:NeedsMissingModule",
                                                       registry.ENTRY_POINT_GROUP),
        "broken": importlib.metadata.EntryPoint("broken", "qpmopt_no_such_pkg:Thing", registry.ENTRY_POINT_GROUP),
    }
    monkeypatch.setattr(registry, "_entry_points", lambda: eps)


def test_entry_point_backends_are_listed_and_usable(plugins):
    rows = {info.name: info for info in qpmopt.available_backends()}
    assert rows["mini"].available and rows["highs"].available
    assert rows["needs-missing"].available is base.Availability.MISSING_MODULE
    assert not rows["needs-missing"].available  # Availability is falsy when unusable
    assert rows["broken"].available is base.Availability.BROKEN
    inst = generate("tiny", seed=1)
    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="mini")
    assert sol.backend == "mini" and sol.status is qpmopt.Status.FEASIBLE
    with pytest.raises(qpmopt.BackendUnavailableError, match="qpmopt_no_such_module_xyz"):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="needs-missing")


def test_listing_backends_imports_no_solver_library():
    import subprocess
    import sys

    code = ("import sys, qpmopt; qpmopt.available_backends(); "
            "print(sorted(m for m in ('torch', 'highspy', 'ortools', 'pyomo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("lie, match", [("infeasible", "returned an infeasible answer"),
                                        ("bound", "reported bound .* below its verified objective")])
def test_lying_backends_never_reach_the_user(lie, match):
    inst = generate("tiny", seed=1)
    with pytest.raises(VerificationError, match=match):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend=MiniBackend(),
                                options={"lie": lie})


def test_conformance_catches_a_false_claim_to_have_met_the_gap_limit():
    class Hasty(MiniBackend):
        """Stops 'at the gap limit' with a bound far above its answer."""

        name = "hasty"

        def solve(self, problem, config, options):
            raw = super().solve(problem, config, options)
            if config.gap_limit > 0 and raw.selection is not None:
                raw.termination = Termination.GAP_LIMIT
                raw.bound = float(np.abs(problem.A).sum() + np.abs(problem.R).sum() + np.abs(problem.B).sum())
            return raw

    with pytest.raises(AssertionError, match="stopped at the gap limit"):
        assert_backend_conforms(Hasty(), seeds=range(2))


def test_conformance_catches_a_false_optimality_claim():
    class Liar(MiniBackend):
        name = "liar"

        def solve(self, problem, config, options):
            return super().solve(problem, config, _Opts(lie="optimal"))

    with pytest.raises(AssertionError, match="claims optimal|bound .* below the optimum"):
        assert_backend_conforms(Liar(), seeds=range(4))
    assert_backend_conforms(MiniBackend(), seeds=range(2))
