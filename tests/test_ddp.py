"""fine_tune under DistributedDataParallel: 2 CPU processes (gloo) end with identical weights."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import qpmopt
    from qpmopt import torch as qt
    from qpmopt.torch.demo import DigitsNet

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # same initial weights on both ranks
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(64, 1, 16, 16, generator=g), torch.arange(64) % 4
    data = TensorDataset(x, y)
    model = DigitsNet(n_features=12, n_classes=4)
    stats = qt.collect_features(model, DataLoader(data, batch_size=32), progress=False)
    A, R, B = qt.build_matrices(stats, k=2, n_features=6)
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=6, backend="localsearch")
    qt.install_head(model, sol, stats)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    # each rank sees a different half of the data: only gradient averaging keeps them equal
    loader = DataLoader(data, batch_size=8, sampler=DistributedSampler(data, world, rank, shuffle=False))
    qt.fine_tune(ddp, loader, epochs=2, lr=0.05, progress=False)
    # Parameters (the weights) and the head's buffers; BatchNorm running statistics are
    # updated by each rank's own last forward pass and legitimately differ (no SyncBN).
    keep = {name: p.detach().cpu() for name, p in model.named_parameters()}
    keep.update({f"fc.{n}": b.cpu() for n, b in model.fc.named_buffers()})
    torch.save(keep, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_end_identical(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    torch.manual_seed(0)
    from qpmopt.torch.demo import DigitsNet

    init = DigitsNet(n_features=12, n_classes=4).state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and training did change the backbone
    assert not torch.equal(a["features.0.0.weight"], init["features.0.0.weight"])


def _shard_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import qpmopt
    from qpmopt import torch as qt
    from qpmopt.torch.demo import DigitsNet

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = DigitsNet(n_features=12, n_classes=4)
    x, y = _data()
    half = slice(rank * 40, (rank + 1) * 40)  # each rank holds its own half of the data
    stats = qt.collect_features(model, DataLoader(TensorDataset(x[half], y[half]), batch_size=16), progress=False)
    sol = None
    if rank == 0:
        A, R, B = qt.build_matrices(stats, k=2, n_features=6)
        sol = qpmopt.solve_assignment(A, R, B, 2, n_features=6, backend="localsearch")
    sol = qt.broadcast_solution(sol)
    qt.install_head(model, sol, stats)
    report = qt.interpretability_report(model, DataLoader(TensorDataset(x[half], y[half]), batch_size=16))
    torch.save({"stats": stats, "report": report, "features": sol.features}, os.path.join(out_dir, f"shard{rank}.pt"))
    dist.destroy_process_group()


def _data():
    g = torch.Generator().manual_seed(2)
    return torch.rand(80, 1, 16, 16, generator=g), torch.arange(80) % 4


@pytest.mark.slow
def test_sharded_statistics_and_report_equal_one_process_over_all(tmp_path):
    import numpy as np

    import qpmopt
    from qpmopt import torch as qt
    from qpmopt.torch.demo import DigitsNet

    mp.spawn(_shard_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    torch.manual_seed(0)
    model = DigitsNet(n_features=12, n_classes=4)
    x, y = _data()
    whole = qt.collect_features(model, DataLoader(TensorDataset(x, y), batch_size=16), progress=False)
    A, R, B = qt.build_matrices(whole, k=2, n_features=6)
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=6, backend="localsearch")
    qt.install_head(model, sol, whole)
    report = qt.interpretability_report(model, DataLoader(TensorDataset(x, y), batch_size=16))
    for rank in range(2):
        got = torch.load(tmp_path / f"shard{rank}.pt", weights_only=False)
        for field in ("class_sums", "class_counts", "total_sumsq", "locality", "border"):
            assert np.allclose(getattr(got["stats"], field), getattr(whole, field), rtol=1e-10, atol=1e-12), field
        assert np.array_equal(got["features"], sol.features)
        for key, value in report.items():
            assert got["report"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
