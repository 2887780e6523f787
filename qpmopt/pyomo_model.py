"""The complete problem as a Pyomo model with named parts, and its solution read back.

:func:`to_pyomo` writes the model a user can extend and hand to any solver Pyomo reaches;
:func:`from_pyomo` turns the values a solver loaded into a verified :class:`Solution`;
:func:`render` is the same model for a :class:`~qpmopt.formulation.Formulation`, which the
``pyomo`` backend solves.  Pyomo is imported only when a model is built.

Components (indices are 0-based array positions):

================  ==============================================================
``m.F``, ``m.C``  candidate features, classes
``m.s[f]``        binary: feature ``f`` is selected
``m.W[c, f]``     binary: class ``c`` uses feature ``f``
``m.y[i, j]``     ``s_i * s_j`` for the pairs ``m.P`` (``i < j``) that ``Z_R`` needs,
                  linearised by ``m.y_lower`` (``y >= s_i + s_j - 1``, pairs with
                  ``R_ij > 0``) and ``m.y_upper_i``/``m.y_upper_j`` (``y <= s_i``,
                  ``y <= s_j``, pairs with ``R_ij < 0``); with strengthening every pair
                  gets all three and ``m.rlt[i]``: ``sum_j y_ij = (n_features - 1) s_i``
``m.Z_A``         ``sum A[c, f] W[c, f]``
``m.Z_R``         ``sum_{i<j} R_ij y_ij``: the redundancy penalty, a positive number
                  when selected features are redundant
``m.Z_B``         ``sum B[f] s[f]``
``m.Z``           objective: maximise ``Z_A - Z_R + Z_B`` (qpmopt's ``terms["R"]`` is
                  ``-Z_R``)
``m.budget``      ``sum s = n_features``
``m.per_class[c]``  ``sum_f W[c, f] = k``
``m.link[c, f]``  ``W[c, f] <= s[f]``
================  ==============================================================

Uniqueness (``unique=True``), ``uniqueness=``:

- ``"full"``: variables ``m.u[c, d, f]`` for every class pair ``m.U`` and candidate, with
  ``m.unique_in[c, d, f]: u <= W[c, f]``, ``m.unique_out[c, d, f]: u <= 1 - W[d, f]`` and
  ``m.unique[c, d]: sum_f u >= 1``: some feature of ``c`` is not one of ``d``, so the rows
  differ (both hold ``k`` features).  Exact for any MILP solver given the model alone, but
  it has ``n_c (n_c - 1) / 2 * n_candidates`` extra variables: it suits small problems
  (up to :data:`FULL_UNIQUENESS_MAX_VARS` of them; the ``small`` preset has 11 400).
- ``"lazy"``: an empty ``ConstraintList`` ``m.uniqueness_cuts`` that a cut loop fills with
  ``sum_{f in T} W[c, f] + W[d, f] <= 2k - 1`` for each pair ``c, d`` found sharing the set
  ``T`` (the ``pyomo`` backend does this).  The model alone then relaxes uniqueness; this is
  what medium (50 classes) and larger problems need.
- ``"auto"``: ``"full"`` up to :data:`FULL_UNIQUENESS_MAX_VARS` extra variables, else
  ``"lazy"``.

Steering rules (:class:`qpmopt.Constraints`): ``m.include[f]`` (``s = 1``), ``m.exclude[f]``
(``s = 0``), ``m.require[c, f]`` (``W = 1``), ``m.forbid[c, f]`` (``W = 0``), and for the
shared class pairs ``m.S``: ``m.p[a, b, f]`` (``W[a, f] W[b, f]``) with ``m.shared_a``,
``m.shared_b`` (``p <= W``), in exact mode ``m.shared_both`` (``p >= W_a + W_b - 1``), and
``m.shared_count[a, b]``: ``sum_f p = m`` (or ``>= m`` in ``at_least`` mode).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np

from qpmopt.evaluate import VerificationError, verify
from qpmopt.formulation import Formulation
from qpmopt.problem import Problem, ProblemError
from qpmopt.solution import Solution, Status, Termination

__all__ = ["to_pyomo", "from_pyomo", "render", "FULL_UNIQUENESS_MAX_VARS", "uniqueness_mode"]

#: ``uniqueness="auto"`` writes the exact formulation up to this many extra variables.
FULL_UNIQUENESS_MAX_VARS = 50_000

Uniqueness = Literal["auto", "full", "lazy"]


def uniqueness_mode(problem: Problem, uniqueness: str) -> str:
    """``"none"`` (``unique=False``), ``"full"`` or ``"lazy"`` for ``problem`` under the
    ``uniqueness`` argument of :func:`to_pyomo`."""
    if uniqueness not in ("auto", "full", "lazy"):
        raise ProblemError(f"uniqueness: expected 'auto', 'full' or 'lazy', got {uniqueness!r}")
    if not problem.unique:
        return "none"
    if uniqueness != "auto":
        return uniqueness
    n_c = problem.n_classes
    extra = n_c * (n_c - 1) // 2 * problem.n_candidates
    return "full" if extra <= FULL_UNIQUENESS_MAX_VARS else "lazy"


def to_pyomo(
    A: Any,
    R: Any = None,
    B: Any = None,
    k: int = 5,
    *,
    n_features: int = 50,
    unique: bool = True,
    constraints: Any = None,
    uniqueness: Uniqueness = "auto",
    strengthen: bool | None = None,
) -> Any:
    """The complete problem as a ``pyomo.environ.ConcreteModel`` (see the module docstring
    for its components).

    Args:
        A: ``(n_c, n_f)`` class-feature similarity.
        R: ``(n_f, n_f)`` symmetric redundancy or ``None``.
        B: ``(n_f,)`` feature bias or ``None``.
        k: features per class.
        n_features: features selected in total.
        unique: classes must use pairwise different feature sets.
        constraints: steering rules (:class:`qpmopt.Constraints` or a dict), or ``None``.
        uniqueness: ``"full"``, ``"lazy"`` or ``"auto"`` (module docstring).
        strengthen: add the reformulation-linearisation rows ``m.rlt`` (a tighter LP);
            ``None``: when there are at most 100 candidates.

    Raises:
        ProblemError: malformed input, as :func:`qpmopt.solve_assignment` raises it.
    """
    problem = Problem.from_arrays(A, R, B, k=k, n_features=n_features, unique=unique, constraints=constraints)
    return render(Formulation.build(problem, strengthen=strengthen), uniqueness=uniqueness)


def render(form: Formulation, *, uniqueness: Uniqueness = "auto") -> Any:
    """The Pyomo model of an unrestricted :class:`Formulation` (its uniqueness cuts
    included in ``m.uniqueness_cuts`` when lazy).  Attributes ``m.qpm_uniqueness``
    (``"none"``, ``"full"``, ``"lazy"``) and ``m.qpm_shape`` (``(n_c, n_f, k, n_features)``)
    say what it was built for."""
    import pyomo.environ as pyo

    problem = form.problem
    if form.fixed.size or form.candidates.size != problem.n_candidates:
        raise ValueError("render: only formulations of the whole problem (no fixed or forbidden features) render")
    mode = uniqueness_mode(problem, uniqueness)
    A, R, B, k = problem.A, problem.R, problem.B, problem.k
    n_c, n_f = A.shape
    feats = range(n_f)
    m = pyo.ConcreteModel(name="qpmopt")
    m.qpm_uniqueness = mode
    m.qpm_shape = (n_c, n_f, k, problem.n_features)
    m.F = pyo.RangeSet(0, n_f - 1, doc="candidate features")
    m.C = pyo.RangeSet(0, n_c - 1, doc="classes")
    m.s = pyo.Var(m.F, domain=pyo.Binary, doc="feature selected")
    m.W = pyo.Var(m.C, m.F, domain=pyo.Binary, doc="class uses feature")
    pairs = [(int(i), int(j)) for i, j in form.free[form.pairs]] if form.n_y else []
    m.P = pyo.Set(initialize=pairs, dimen=2, ordered=True, doc="feature pairs of the redundancy term")
    m.y = pyo.Var(m.P, bounds=(0, 1), doc="s_i * s_j")

    s, W, y = m.s, m.W, m.y
    m.Z_A = pyo.Expression(expr=_linear(A)(W[c, f] for c in range(n_c) for f in feats))
    R_pair = np.array([R[i, j] for i, j in pairs]) if pairs else np.zeros(0)
    m.Z_R = pyo.Expression(expr=_linear(R_pair)(y[i, j] for i, j in pairs))
    m.Z_B = pyo.Expression(expr=_linear(B)(s[f] for f in feats))
    m.Z = pyo.Objective(expr=m.Z_A - m.Z_R + m.Z_B, sense=pyo.maximize)

    m.budget = pyo.Constraint(expr=pyo.quicksum(s[f] for f in feats) == problem.n_features)
    m.per_class = pyo.Constraint(m.C, rule=lambda m, c: pyo.quicksum(W[c, f] for f in feats) == k)
    m.link = pyo.Constraint(m.C, m.F, rule=lambda m, c, f: W[c, f] <= s[f])
    every = form.strengthen
    low = [p for p, r in zip(pairs, R_pair) if every or r > 0]
    up = [p for p, r in zip(pairs, R_pair) if every or r < 0]
    m.y_lower = pyo.Constraint(low, rule=lambda m, i, j: y[i, j] >= s[i] + s[j] - 1)
    m.y_upper_i = pyo.Constraint(up, rule=lambda m, i, j: y[i, j] <= s[i])
    m.y_upper_j = pyo.Constraint(up, rule=lambda m, i, j: y[i, j] <= s[j])
    if form.strengthen:
        partners: dict[int, list[tuple[int, int]]] = {f: [] for f in feats}
        for i, j in pairs:
            partners[i].append((i, j))
            partners[j].append((i, j))
        m.rlt = pyo.Constraint(m.F, rule=lambda m, f: pyo.quicksum(y[p] for p in partners[f])
                               == (problem.n_features - 1) * s[f])
    _add_rules(m, problem)
    if mode == "full":
        m.U = pyo.Set(initialize=[(c, d) for c in range(n_c) for d in range(c + 1, n_c)], dimen=2, ordered=True)
        m.u = pyo.Var(m.U, m.F, bounds=(0, 1), doc="feature f is in class c's set and not in class d's")
        m.unique_in = pyo.Constraint(m.U, m.F, rule=lambda m, c, d, f: m.u[c, d, f] <= W[c, f])
        m.unique_out = pyo.Constraint(m.U, m.F, rule=lambda m, c, d, f: m.u[c, d, f] <= 1 - W[d, f])
        m.unique = pyo.Constraint(m.U, rule=lambda m, c, d: pyo.quicksum(m.u[c, d, f] for f in feats) >= 1)
    elif mode == "lazy":
        m.uniqueness_cuts = pyo.ConstraintList(doc="sum_{f in T} W[c, f] + W[d, f] <= 2k - 1 per collision found")
        for cut in form.cuts:
            add_uniqueness_cut(m, *cut)
    return m


def add_uniqueness_cut(model: Any, c: int, d: int, features: tuple[int, ...]) -> Any:
    """Add to ``model.uniqueness_cuts`` the cut forbidding classes ``c`` and ``d`` to both use
    exactly ``features``; returns the new constraint."""
    import pyomo.environ as pyo

    k = model.qpm_shape[2]
    W = model.W
    return model.uniqueness_cuts.add(pyo.quicksum(W[c, f] + W[d, f] for f in features) <= 2 * k - 1)


def _linear(coefs: Any) -> Any:
    """``terms -> sum coef * term`` over the non-zero coefficients (``coefs`` flattened in
    the order of the terms; zeros add nothing but build time)."""
    import pyomo.environ as pyo

    values = np.asarray(coefs, dtype=np.float64).ravel()

    def combine(terms: Any) -> Any:
        return pyo.quicksum((float(v) * t for v, t in zip(values, terms) if v != 0.0))

    return combine


def _add_rules(m: Any, problem: Problem) -> None:
    import pyomo.environ as pyo

    rules, given = problem.rules, problem.constraints
    if rules is None or given is None:
        return
    s, W = m.s, m.W
    m.include = pyo.Constraint(sorted(set(given.include_features)), rule=lambda m, f: s[f] == 1)
    m.exclude = pyo.Constraint(sorted(set(given.exclude_features)), rule=lambda m, f: s[f] == 0)
    m.require = pyo.Constraint(sorted(set(map(tuple, given.require_pairs))),
                               rule=lambda m, c, f: W[c, f] == 1)
    m.forbid = pyo.Constraint(sorted(set(map(tuple, given.forbid_pairs))),
                              rule=lambda m, c, f: W[c, f] == 0)
    if not rules.shared.shape[0]:
        return
    m.S = pyo.Set(initialize=[(int(a), int(b)) for a, b in rules.shared], dimen=2, ordered=True)
    m.p = pyo.Var(m.S, m.F, bounds=(0, 1), doc="W[a, f] * W[b, f]")
    m.shared_a = pyo.Constraint(m.S, m.F, rule=lambda m, a, b, f: m.p[a, b, f] <= W[a, f])
    m.shared_b = pyo.Constraint(m.S, m.F, rule=lambda m, a, b, f: m.p[a, b, f] <= W[b, f])
    if rules.shared_exact:
        m.shared_both = pyo.Constraint(m.S, m.F, rule=lambda m, a, b, f: m.p[a, b, f] >= W[a, f] + W[b, f] - 1)
    count = rules.shared_count

    def shared_count(m: Any, a: int, b: int) -> Any:
        total = pyo.quicksum(m.p[a, b, f] for f in m.F)
        return total == count if rules.shared_exact else total >= count

    m.shared_count = pyo.Constraint(m.S, rule=shared_count)


def model_values(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(selection (n_f,) bool, assignment (n_c, n_f) bool)`` from the values loaded in a
    model of :func:`to_pyomo` (rounded at 0.5).

    Raises:
        ProblemError: a variable has no value (no solution was loaded).
    """
    n_c, n_f = model.qpm_shape[:2]
    s = np.array([model.s[f].value for f in range(n_f)], dtype=object)
    W = np.array([[model.W[c, f].value for f in range(n_f)] for c in range(n_c)], dtype=object)
    if any(v is None for v in s) or any(v is None for v in W.ravel()):
        raise ProblemError("model: some of s and W have no value; solve the model and load its solution first")
    return s.astype(np.float64) > 0.5, W.astype(np.float64) > 0.5


def from_pyomo(
    model: Any,
    A: Any,
    R: Any = None,
    B: Any = None,
    k: int = 5,
    *,
    n_features: int = 50,
    unique: bool = True,
    constraints: Any = None,
    backend: str = "pyomo",
    seed: int = 0,
) -> Solution:
    """A verified :class:`Solution` from the ``s`` and ``W`` values loaded in ``model`` (a
    model of :func:`to_pyomo` for the same arguments).

    Its status is ``feasible``: a solver's proof is for the model it solved, which may carry
    the user's own rules, not for the problem the arguments describe.

    Raises:
        ProblemError: the model was built for other sizes, has no solution loaded, or its
            solution breaks a constraint of the problem (for instance uniqueness, when the
            model was built with ``uniqueness="lazy"`` and solved without a cut loop).
    """
    start = time.perf_counter()
    problem = Problem.from_arrays(A, R, B, k=k, n_features=n_features, unique=unique, constraints=constraints)
    shape = (problem.n_classes, problem.n_candidates, problem.k, problem.n_features)
    if getattr(model, "qpm_shape", None) != shape:
        raise ProblemError(f"model: built for (n_c, n_f, k, n_features) = {getattr(model, 'qpm_shape', None)}, "
                           f"the arguments give {shape}")
    selection, assignment = model_values(model)
    try:
        terms = verify(problem, selection, assignment)
    except VerificationError as exc:
        hint = " (the model's uniqueness is lazy: add cuts, or build it with uniqueness='full')" \
            if getattr(model, "qpm_uniqueness", None) == "lazy" else ""
        raise ProblemError(f"model: its solution breaks a constraint: {exc}{hint}") from None
    return Solution(
        features=np.flatnonzero(selection).astype(np.int64), assignment=assignment, objective=terms.total,
        terms=terms.as_dict(), bound=None, gap=None, status=Status.FEASIBLE, termination=Termination.CONVERGED,
        backend=backend, wall_time=time.perf_counter() - start, seed=seed, info={"source": "from_pyomo"},
        history=[], constraints=None if problem.constraints is None else problem.constraints.model_dump(),
    )
