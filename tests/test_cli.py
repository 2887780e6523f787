import json

import numpy as np
import pytest
from click.testing import CliRunner

from qpmopt.cli import main
from qpmopt.instances import generate, save_npz


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "p.npz"
    save_npz(str(path), generate("tiny", seed=2))
    return path


def test_version_and_solvers(runner):
    assert runner.invoke(main, ["--version"]).output.startswith("qpmopt, version")
    out = runner.invoke(main, ["solvers"])
    assert out.exit_code == 0
    for name in ("bruteforce", "localsearch", "anneal", "highs", "cpsat", "pyomo", "bnb", "auto"):
        assert name in out.output
    out = runner.invoke(main, ["solvers", "--pyomo"])
    assert out.exit_code == 0 and "appsi_highs" in out.output


def test_demo_on_cuda_without_a_gpu_is_a_usage_error(runner, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = runner.invoke(main, ["demo", "--device", "cuda", "--output-dir", str(tmp_path / "d")])
    assert res.exit_code == 2 and "torch sees no GPU" in res.output and "--device" in res.output
    assert not (tmp_path / "d").exists()


def test_solve_writes_json_and_refuses_to_overwrite(runner, small_file, tmp_path):
    out_file = tmp_path / "sol.json"
    res = runner.invoke(main, ["solve", str(small_file), "--backend", "bruteforce", "-o", str(out_file)])
    assert res.exit_code == 0, res.output
    data = json.loads(out_file.read_text())
    assert data["status"] == "optimal" and len(data["features"]) == 4 and len(data["class_features"][0]) == 2
    assert data["seed"] == 0 and data["backend"] == "bruteforce" and "qpmopt_version" in data
    again = runner.invoke(main, ["solve", str(small_file), "-o", str(out_file)])
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(main, ["solve", str(small_file), "--backend", "localsearch", "-o", str(out_file), "--force"])
    assert forced.exit_code == 0 and json.loads(out_file.read_text())["backend"] == "localsearch"


def test_solve_reads_pt_files(runner, tmp_path):
    import torch

    inst = generate("tiny", seed=3)
    path = tmp_path / "p.pt"
    torch.save({"A": torch.tensor(inst.A), "R": torch.tensor(inst.R), "B": torch.tensor(inst.B)}, path)
    res = runner.invoke(main, ["solve", str(path), "-k", "2", "-n", "4", "--backend", "bruteforce"])
    assert res.exit_code == 0 and "status=optimal" in res.output


def test_solve_stops_at_the_gap_limit(runner, tmp_path):
    path = tmp_path / "small.npz"
    save_npz(str(path), generate("small", seed=0))
    res = runner.invoke(main, ["solve", str(path), "--backend", "bnb", "--gap-limit", "0.5",
                               "-o", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "s.json").read_text())
    # the root's bound is within 50% of the start: the tree closes at once, with no claim of optimality
    assert data["termination"] == "gap_limit" and data["status"] == "feasible" and data["info"]["nodes"] == 1
    assert 0 < data["gap"] <= 0.5 and "termination=gap_limit" in res.output


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["solve", "missing.npz"], "no such file"),
        ("noA", ["solve", "{f}"], "missing array 'A'"),
        ("bad", ["solve", "{f}"], "cannot read"),
        ("transposed", ["solve", "{f}", "-k", "2", "-n", "4"], "looks transposed"),
        ("ok", ["solve", "{f}", "--backend", "nope"], "unknown backend 'nope'; known backends:"),
        ("ok", ["solve", "{f}", "-k", "0"], "k: expected an integer >= 1"),
        ("ok", ["solve", "{f}", "--time-limit", "-1"], "time_limit: expected a positive"),
        ("ok", ["solve", "{f}", "--gap-limit", "2"], "gap_limit: expected a relative gap in [0, 1)"),
    ],
)
def test_usage_errors_are_one_line_with_exit_code_2(runner, tmp_path, make, args, message):
    f = tmp_path / "in.npz"
    inst = generate("tiny", seed=1)
    if make == "noA":
        np.savez(f, R=inst.R)
    elif make == "bad":
        f.write_bytes(b"not a zip file")
    elif make == "transposed":
        np.savez(f, A=inst.A.T, R=inst.R, B=inst.B)
    elif make == "ok":
        save_npz(str(f), inst)
    res = runner.invoke(main, [a.format(f=f) for a in args])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1


def test_runtime_failure_exit_code_1_and_debug_traceback(runner, tmp_path):
    f = tmp_path / "big.npz"
    save_npz(str(f), generate("small", seed=1))
    res = runner.invoke(main, ["solve", str(f), "--backend", "bruteforce"])
    assert res.exit_code == 1 and "ProblemTooLargeError" in res.output
    dbg = runner.invoke(main, ["--debug", "solve", str(f), "--backend", "bruteforce"])
    assert dbg.exit_code == 1


def test_generate_is_deterministic_and_safe(runner, tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert runner.invoke(main, ["generate", "--preset", "small", "--seed", "4", "-o", str(a)]).exit_code == 0
    assert runner.invoke(main, ["generate", "--preset", "small", "--seed", "4", "-o", str(b)]).exit_code == 0
    with np.load(a) as x, np.load(b) as y:
        assert all(np.array_equal(x[k], y[k]) for k in ("A", "R", "B"))
        assert int(x["k"]) == 3 and int(x["n_features"]) == 15
    assert runner.invoke(main, ["generate", "--preset", "small", "-o", str(a)]).exit_code == 2
    assert runner.invoke(main, ["generate", "--preset", "small", "-o", str(tmp_path / "x.txt")]).exit_code == 2


@pytest.mark.slow
def test_bench_run_show_compare(runner, tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(main, ["bench", "--preset", "tiny", "--backends", "bruteforce,localsearch", "--time-limit", "5",
                               "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    rows = {r["backend"]: r for r in data["results"]}
    assert rows["bruteforce"]["status"] == "optimal"
    assert rows["localsearch"]["objective"] <= rows["bruteforce"]["objective"] + 1e-9
    assert rows["bruteforce"]["peak_memory_mb"] > 10 and "cpu_count" in data["machine"]
    shown = runner.invoke(main, ["bench", "show", str(out)])
    assert shown.exit_code == 0 and "bruteforce" in shown.output
    cmp = runner.invoke(main, ["bench", "compare", str(out), str(out)])
    assert cmp.exit_code == 0 and "1.000" in cmp.output
    bad = runner.invoke(main, ["bench", "--preset", "nope"])
    assert bad.exit_code == 2


def test_bench_spec_options_reach_every_run():
    # A spec's backend options are passed to the solve in the child process: a cap of one
    # swap shows in the run's info, and an unknown option is reported as that run's error.
    from qpmopt.bench import BenchSpec, run_benchmark

    capped = BenchSpec(name="capped", preset="small", options={"max_iterations": 1})
    wrong = BenchSpec(name="wrong", preset="small", options={"no_such_option": 1})
    plain = BenchSpec(name="plain", preset="small")
    rows = {r["instance"]: r for r in run_benchmark([capped, wrong, plain], ["localsearch"], time_limit=20)["results"]}
    assert rows["capped"]["info"]["iterations"] == 1
    assert rows["plain"]["info"]["iterations"] > 1
    assert rows["wrong"]["status"] == "error" and "no_such_option" in rows["wrong"]["error"]


def test_bench_passes_the_gap_limit_to_every_run(runner, tmp_path):
    out = tmp_path / "r.json"
    res = runner.invoke(main, ["bench", "--preset", "small", "--backends", "bnb", "--time-limit", "30",
                               "--gap-limit", "0.5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["gap_limit"] == 0.5
    (row,) = data["results"]
    assert row["termination"] == "gap_limit" and 0 < row["gap"] <= 0.5
    bad = runner.invoke(main, ["bench", "--preset", "small", "--gap-limit", "1"])
    assert bad.exit_code == 2 and "--gap-limit" in bad.output


def test_save_npz_refuses_to_overwrite(tmp_path):
    path = tmp_path / "x.npz"
    save_npz(str(path), generate("tiny", seed=1))
    with pytest.raises(FileExistsError, match="--force"):
        save_npz(str(path), generate("tiny", seed=2))
    save_npz(str(path), generate("tiny", seed=2), force=True)
    with np.load(path) as d:
        assert np.array_equal(d["A"], generate("tiny", seed=2).A)


def test_solve_and_bench_take_constraints_from_json(runner, small_file, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"include_features": [1], "forbid_pairs": [[0, 1]], "shared_pairs": [[0, 1]]}))
    out_file = tmp_path / "sol.json"
    res = runner.invoke(main, ["solve", str(small_file), "--backend", "bruteforce", "--constraints", str(rules),
                               "-o", str(out_file)])
    assert res.exit_code == 0, res.output
    data = json.loads(out_file.read_text())
    assert 1 in data["features"] and 1 not in data["class_features"][0]
    assert len(set(data["class_features"][0]) & set(data["class_features"][1])) == 1  # k - 1 = 1 shared
    assert data["constraints"]["include_features"] == [1]
    bench_out = tmp_path / "bench.json"
    res = runner.invoke(main, ["bench", "--instance", str(small_file), "--backends", "bruteforce", "--time-limit", "10",
                               "--constraints", str(rules), "-o", str(bench_out)])
    assert res.exit_code == 0, res.output
    row = json.loads(bench_out.read_text())["results"][0]
    assert row["status"] == "optimal" and row["objective"] == pytest.approx(data["objective"])
    rules.write_text(json.dumps({"include_features": [99]}))
    bad = runner.invoke(main, ["solve", str(small_file), "--constraints", str(rules)])
    assert bad.exit_code == 2 and "include_features: entry 99" in bad.output


def test_write_marked_block_replaces_only_between_its_markers(tmp_path):
    from qpmopt.bench import write_marked_block

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- t:start -->\nold\n<!-- t:end -->\n<!-- u:start -->\nkeep\n<!-- u:end -->\n")
    write_marked_block(readme, "t", "new | table")
    assert readme.read_text() == ("intro\n<!-- t:start -->\nnew | table\n<!-- t:end -->\n"
                                  "<!-- u:start -->\nkeep\n<!-- u:end -->\n")
    with pytest.raises(ValueError, match="no <!-- v:start -->"):
        write_marked_block(readme, "v", "x")


def test_provenance_ignores_result_files_from_any_folder_and_sees_other_changes(tmp_path, monkeypatch):
    import subprocess

    from qpmopt.bench import provenance

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "r.json").write_text("{}")
    (tmp_path / "README.md").write_text("table")
    (tmp_path / "code.py").write_text("x = 1")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.delenv("QPMOPT_SOURCE_COMMIT", raising=False)
    (tmp_path / "benchmarks" / "results" / "r.json").write_text('{"new": 1}')  # written by a benchmark
    (tmp_path / "README.md").write_text("new table")
    for folder in (tmp_path, tmp_path / "benchmarks"):  # the scripts run from benchmarks/
        monkeypatch.chdir(folder)
        assert provenance()["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2")
    assert provenance()["dirty"] is True


def test_verbose_solve_prints_progress_on_stderr_only(runner, small_file, tmp_path):
    out_file = tmp_path / "s.json"
    loud = runner.invoke(main, ["solve", str(small_file), "--backend", "localsearch", "--verbose", "-o", str(out_file)])
    assert loud.exit_code == 0, loud.output
    assert "[localsearch" in loud.stderr and "[localsearch" not in loud.stdout
    quiet = runner.invoke(main, ["solve", str(small_file), "--backend", "localsearch", "-o", str(out_file), "--force"])
    assert quiet.exit_code == 0 and "[localsearch" not in quiet.stderr
