"""qpmopt: fast, solver-agnostic feature selection and assignment for QPM.

Public API: :func:`solve_assignment`, :class:`Problem`, :class:`Solution`,
:func:`available_backends`, :func:`to_pyomo` and :func:`from_pyomo` (the model in Pyomo); for plug-ins :class:`Formulation`, :class:`BackendResult` and
:mod:`qpmopt.backends`.  The torch adapter lives in :mod:`qpmopt.torch`.
"""

from qpmopt import instances, matrices
from qpmopt._version import __version__
from qpmopt.backends import (
    Backend,
    BackendUnavailableError,
    Capabilities,
    OptionsError,
    ProblemTooLargeError,
    SolverConfig,
    UnknownBackendError,
    available_backends,
)
from qpmopt.constraints import Constraints
from qpmopt.evaluate import VerificationError
from qpmopt.formulation import Formulation
from qpmopt.problem import InfeasibleProblemError, Problem, ProblemError
from qpmopt.pyomo_model import from_pyomo, to_pyomo
from qpmopt.solution import BackendResult, Solution, Status, Termination
from qpmopt.solve import solve_assignment, solve_problem

__all__ = [
    "__version__",
    "instances",
    "matrices",
    "solve_assignment",
    "solve_problem",
    "to_pyomo",
    "from_pyomo",
    "Problem",
    "Constraints",
    "Solution",
    "BackendResult",
    "Formulation",
    "Status",
    "Termination",
    "available_backends",
    "Backend",
    "Capabilities",
    "SolverConfig",
    "ProblemError",
    "InfeasibleProblemError",
    "OptionsError",
    "UnknownBackendError",
    "BackendUnavailableError",
    "ProblemTooLargeError",
    "VerificationError",
]
