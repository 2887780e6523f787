"""The ``qpmopt`` command: parses, calls the public API, prints.  No logic of its own.

Exit codes: 0 success, 1 solver or runtime failure, 2 usage error (bad arguments, bad
input file, refusal to overwrite).  Errors are one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path
from typing import Any

import click

from qpmopt._version import __version__
from qpmopt.instances import PRESETS


class _Failure(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    """A usage error shown as one line (click.UsageError would print the usage first)."""

    exit_code = 2


def _handle_errors(func: Any) -> Any:
    """Map library errors to one-line messages and exit codes."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from qpmopt.backends import (
            BackendUnavailableError,
            OptionsError,
            ProblemTooLargeError,
            UnknownBackendError,
        )
        from qpmopt.io import InputFileError
        from qpmopt.problem import ProblemError

        ctx = click.get_current_context()
        debug = ctx.find_root().params.get("debug", False)
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (ProblemError, InputFileError, OptionsError, UnknownBackendError, FileExistsError) as exc:
            if debug:
                traceback.print_exc()
            raise _BadInput(str(exc)) from None
        except (BackendUnavailableError, ProblemTooLargeError, Exception) as exc:
            if debug:
                traceback.print_exc()
            raise _Failure(f"{type(exc).__name__}: {exc}") from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="qpmopt")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def main(debug: bool) -> None:
    """qpmopt: feature selection and assignment for QPM interpretable classifiers."""


@main.command()
@click.option("--pyomo", "pyomo_too", is_flag=True,
              help="Also list the Pyomo solvers that backend 'pyomo' can run here (options={'solver': NAME}).")
def solvers(pyomo_too: bool) -> None:
    """List backends with availability, version and capabilities."""
    from rich.console import Console
    from rich.table import Table

    from qpmopt import available_backends

    table = Table("backend", "available", "version", "exact", "bound", "gpu", "deterministic", "source")
    for info in available_backends():
        cap = info.capabilities
        yes = {True: "yes", False: "-"}
        table.add_row(info.name, info.available.value, info.version or "-", yes[cap.exact], yes[cap.proves_bound],
                      yes[cap.uses_gpu], yes[cap.deterministic], info.source)
    Console(width=120).print(table)
    if pyomo_too:
        from qpmopt.backends.pyomo_solver import pyomo_solvers

        pyomo_table = Table("pyomo solver", "available")
        for name, ok in pyomo_solvers().items():
            pyomo_table.add_row(name, "yes" if ok else "-")
        Console(width=120).print(pyomo_table)


@main.command()
@click.argument("problem_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "k", type=int, default=None, help="Features per class (default: from the file, else 5).")
@click.option("-n", "--n-features", type=int, default=None, help="Features selected (default: from the file, else 50).")
@click.option("--backend", default="auto", show_default=True, help="Backend name (see 'qpmopt solvers').")
@click.option("--time-limit", type=float, default=None, help="Seconds for the whole solve.")
@click.option("--gap-limit", type=float, default=0.0, show_default=True,
              help="Stop once the proven relative gap is at most this (0.01: 1%); 0 asks for a proof of optimality.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None)
@click.option("--no-unique", is_flag=True, help="Allow classes to share the same feature set.")
@click.option("--constraints", "constraints_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Steering rules: a JSON object with the keys of qpmopt.Constraints.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JSON here.")
@click.option("--force", is_flag=True, help="Overwrite the output file.")
@click.option("--verbose", is_flag=True)
@_handle_errors
def solve(problem_file: Path, k: int | None, n_features: int | None, backend: str, time_limit: float | None,
          gap_limit: float, seed: int, threads: int | None, no_unique: bool, constraints_file: Path | None,
          output: Path | None, force: bool, verbose: bool) -> None:
    """Solve the problem stored in PROBLEM_FILE (.npz or .pt with arrays A, R, B)."""
    import qpmopt
    from qpmopt.io import load_arrays, load_constraints, write_json

    if output is not None and output.exists() and not force:
        raise click.UsageError(f"{output}: exists; pass --force to overwrite")
    arrays = load_arrays(problem_file)
    constraints = None if constraints_file is None else load_constraints(constraints_file)
    k = k if k is not None else arrays.get("k", 5)
    n_features = n_features if n_features is not None else arrays.get("n_features", 50)
    sol = qpmopt.solve_assignment(arrays["A"], arrays["R"], arrays["B"], k, n_features=n_features, unique=not no_unique,
                                  constraints=constraints, backend=backend, time_limit=time_limit, gap_limit=gap_limit,
                                  seed=seed, threads=threads, verbose=verbose)
    gap = "-" if sol.gap is None else f"{100 * sol.gap:.3f}%"
    bound = "-" if sol.bound is None else f"{sol.bound:.6f}"
    obj = "-" if sol.objective is None else f"{sol.objective:.6f}"
    click.echo(f"status={sol.status.value} termination={sol.termination.value} objective={obj} bound={bound} "
               f"gap={gap} backend={sol.backend} time={sol.wall_time:.2f}s seed={sol.seed}")
    if sol.terms:
        click.echo("terms: " + " ".join(f"Z_{key}={val:.6f}" for key, val in sol.terms.items()))
    if output is not None:
        write_json(output, sol.to_dict(), force=force)
        click.echo(f"wrote {output}")
    if sol.objective is None:
        raise _Failure(f"no solution ({sol.status.value}, {sol.termination.value})")


@main.command()
@click.option("--preset", type=click.Choice(list(PRESETS)), default="cub", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--force", is_flag=True)
@_handle_errors
def generate(preset: str, seed: int, output: Path, force: bool) -> None:
    """Generate an instance built the way QPM builds its matrices (see qpmopt.instances)."""
    from qpmopt.instances import generate as make
    from qpmopt.instances import save_npz

    if output.suffix != ".npz":
        raise click.BadParameter("expected a path ending in .npz", param_hint="--output")
    inst = make(preset, seed=seed)
    save_npz(str(output), inst, force=force)
    click.echo(f"wrote {output}: {inst.A.shape[0]} classes, {inst.A.shape[1]} features, "
               f"k={inst.k}, n_features={inst.n_features}")


@main.group(invoke_without_command=True)
@click.option("--preset", "presets", multiple=True, help="Preset(s) to run; repeatable or comma-separated.")
@click.option("--instance", "instances", multiple=True, type=click.Path(dir_okay=False),
              help=".npz instance file(s) (give -k and -n unless the file holds them).")
@click.option("-k", "k", type=int, default=None)
@click.option("-n", "--n-features", type=int, default=None)
@click.option("--backends", default="localsearch,anneal,highs,cpsat", show_default=True)
@click.option("--time-limit", type=float, default=60.0, show_default=True)
# checked here, not by solve_assignment as in 'solve': the runs happen in child processes,
# where a bad value would fail every run one by one
@click.option("--gap-limit", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Let every run stop once its proven relative gap is at most this.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--constraints", "constraints_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Steering rules for every instance: a JSON object with the keys of qpmopt.Constraints.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--force", is_flag=True)
@click.pass_context
@_handle_errors
def bench(ctx: click.Context, presets: tuple[str, ...], instances: tuple[str, ...], k: int | None, n_features: int | None,
          backends: str, time_limit: float, gap_limit: float, seed: int, constraints_file: Path | None,
          output: Path | None, force: bool) -> None:
    """Run backends side by side (one process per run); or 'bench show' / 'bench compare'."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.progress import Progress

    from qpmopt.backends import backend_names
    from qpmopt.bench import BenchSpec, result_rows, run_benchmark
    from qpmopt.io import load_constraints, write_json

    constraints = None if constraints_file is None else load_constraints(constraints_file)
    names = [b.strip() for b in backends.split(",") if b.strip()]
    known = backend_names()
    for name in names:
        if name not in known:
            raise click.BadParameter(f"unknown backend {name!r}; known: {', '.join(known)}", param_hint="--backends")
    specs = []
    for p in (x.strip() for group in presets for x in group.split(",") if x.strip()):
        if p not in PRESETS:
            raise click.BadParameter(f"unknown preset {p!r}; known: {', '.join(PRESETS)}", param_hint="--preset")
        specs.append(BenchSpec(name=p, preset=p, constraints=constraints))
    for path in instances:
        if not Path(path).exists():
            raise click.BadParameter(f"{path}: no such file", param_hint="--instance")
        specs.append(BenchSpec(name=Path(path).stem, path=path, k=k, n_features=n_features, constraints=constraints))
    if not specs:
        raise click.UsageError("give at least one --preset or --instance")
    if output is not None and output.exists() and not force:
        raise click.UsageError(f"{output}: exists; pass --force to overwrite")
    console = Console(width=140)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmark", total=len(specs) * len(names))
        data = run_benchmark(specs, names, time_limit=time_limit, seed=seed, gap_limit=gap_limit,
                             on_result=lambda row: progress.advance(task))
    _print_table(console, data, result_rows)
    if output is not None:
        write_json(output, data, force=force)
        console.print(f"wrote {output}")


def _print_table(console: Any, data: dict[str, Any], rows_of: Any) -> None:
    from rich.table import Table

    from qpmopt.bench import RESULT_COLUMNS

    table = Table(*RESULT_COLUMNS, title=f"time limit {data.get('time_limit')} s on {data['machine'].get('cpu', '?')}")
    for row in rows_of(data):
        table.add_row(*row)
    console.print(table)


@bench.command("show")
@click.argument("result_file", type=click.Path(dir_okay=False, exists=True))
@_handle_errors
def bench_show(result_file: str) -> None:
    """Print a result file as a table."""
    from rich.console import Console

    from qpmopt.bench import load_results, result_rows

    _print_table(Console(width=140), load_results(result_file), result_rows)


@bench.command("compare")
@click.argument("old_file", type=click.Path(dir_okay=False, exists=True))
@click.argument("new_file", type=click.Path(dir_okay=False, exists=True))
@_handle_errors
def bench_compare(old_file: str, new_file: str) -> None:
    """Compare two result files side by side, with new/old ratios."""
    from rich.console import Console
    from rich.table import Table

    from qpmopt.bench import compare_rows, load_results

    table = Table("instance", "backend", "objective old", "objective new", "ratio", "time old", "time new", "ratio",
                  "memory ratio")
    for row in compare_rows(load_results(old_file), load_results(new_file)):
        table.add_row(*row)
    Console(width=140).print(table)


@main.command()
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("qpmopt-demo"),
              show_default=True, help="Where the pictures and the report go.")
@click.option("--epochs", type=int, default=None, help="Dense training epochs (default: the demo's own).")
@click.option("--quick", is_flag=True, help="Tiny settings (seconds), for smoke tests.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train: auto takes the GPU when one is present.")
@_handle_errors
def demo(output_dir: Path, epochs: int | None, quick: bool, seed: int, device: str) -> None:
    """End to end on scikit-learn's digits: train, build A/R/B, solve, install the QPM head,
    fine-tune, and report accuracy and interpretability next to the dense model."""
    from qpmopt.torch.demo import resolve_device, run_demo

    try:
        resolve_device(device)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    run_demo(output_dir=output_dir, epochs=epochs, quick=quick, seed=seed, echo=click.echo, device=device)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
