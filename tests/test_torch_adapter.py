import json

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import qpmopt
from qpmopt import torch as qt
from qpmopt.matrices import locality_bias, pearson_similarity, redundancy_from_similarity, threshold_redundancy
from qpmopt.torch.demo import DigitsNet


def tiny_data(n=120, n_classes=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 16, 16, generator=g)
    y = torch.arange(n) % n_classes
    return DataLoader(TensorDataset(x, y), batch_size=32)


def test_pearson_matches_numpy_corrcoef_on_samples():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = np.repeat(np.arange(3), 30)
    X[y == 1, 2] += 2.0
    sums = np.stack([X[y == c].sum(axis=0) for c in range(3)])
    A = pearson_similarity(sums, np.bincount(y), (X**2).sum(axis=0))
    direct = np.array([[np.corrcoef(X[:, f], (y == c).astype(float))[0, 1] for f in range(5)] for c in range(3)])
    assert np.allclose(A, direct / np.abs(direct).max())
    assert np.argmax(A[1]) == 2 and np.isclose(np.abs(A).max(), 1.0)


def test_redundancy_by_hand():
    A = np.array([[1.0, 1.0, 0.0, -1.0], [0.0, 0.0, 1.0, 0.0]])
    R = redundancy_from_similarity(A)
    assert R[0, 1] == pytest.approx(1.0)  # identical profiles
    assert R[0, 2] == 0.0  # orthogonal
    assert R[0, 3] == 0.0  # negative cosine clipped
    assert np.all(np.diag(R) == 0) and np.allclose(R, R.T)


def test_threshold_leaves_an_independent_set_and_rescales():
    rng = np.random.default_rng(1)
    R = redundancy_from_similarity(rng.normal(size=(10, 30)))
    Rt, t = threshold_redundancy(R, 8)
    assert Rt.max() == pytest.approx(1.0) and Rt.min() == 0.0
    kept = R > t
    assert np.all((Rt > 0) == kept)
    # a set of 8 features with no penalised pair exists (greedy certificate)
    chosen = []
    for f in np.argsort(R.max(axis=1)):
        if all(Rt[f, c] == 0 for c in chosen):
            chosen.append(f)
    assert len(chosen) >= 8


def test_robust_locality_bias_clips_centres_and_scales():
    loc = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 50.0])  # one outlier
    B = locality_bias(loc, np.zeros(6), max_abs=0.32, method="robust")
    assert np.abs(B).max() == pytest.approx(0.32)
    assert np.median(B) == pytest.approx(0.0, abs=1e-12)
    assert B[5] < 10 * B[4]  # the outlier was clipped to the main cluster


def test_collect_features_equals_direct_computation():
    torch.manual_seed(0)
    model = DigitsNet(n_features=12, n_classes=4).eval()
    loader = tiny_data()
    stats = qt.collect_features(model, loader, progress=False)
    x, y = loader.dataset.tensors
    with torch.no_grad():
        maps = model.features(x)
    pooled = maps.mean(dim=(2, 3)).double().numpy()
    assert np.allclose(stats.class_sums, np.stack([pooled[y.numpy() == c].sum(0) for c in range(4)]), atol=1e-5)
    assert np.allclose(stats.total_sumsq, (pooled**2).sum(0), rtol=1e-5)
    share = pooled / pooled.sum(axis=1, keepdims=True)
    peak = (torch.softmax(maps.flatten(2), 2).amax(2).double().numpy() * share).mean(0)
    assert np.allclose(stats.locality, peak, atol=1e-6)
    A, R, B = qt.build_matrices(stats, k=2, n_features=6)
    assert A.shape == (4, 12) and R.shape == (12, 12) and B.shape == (12,)


def _reference_clip(values, scale=0.31622776601683794):  # sqrt(10) * 0.1
    """QPM's outlier handling, from its description: mean-shift clusters in 1-D, values
    outside the biggest cluster's range take that end's magnitude with their own sign, then
    centre on the mean and scale the largest magnitude to ``scale``."""
    from sklearn.cluster import MeanShift

    out = np.array(values, dtype=np.float64)
    labels = MeanShift().fit(out[:, None]).labels_
    biggest = max(set(labels.tolist()), key=lambda lab: (np.sum(labels == lab), -lab))
    members = out[labels == biggest]
    lo, hi = members.min(), members.max()
    for i, v in enumerate(out):
        if v < lo:
            out[i] = abs(lo) * np.sign(v)
        elif v > hi:
            out[i] = abs(hi) * np.sign(v)
    out = out - out.mean()
    return out / np.abs(out).max() * scale


def test_matrices_match_an_independent_reference_construction():
    torch.manual_seed(3)
    model = DigitsNet(n_features=16, n_classes=4).eval()
    loader = tiny_data()
    stats = qt.collect_features(model, loader, progress=False)
    _, R, B = qt.build_matrices(stats, k=2, n_features=6, threshold=False)
    x, y = loader.dataset.tensors
    loc, edge = np.zeros(16), np.zeros(16)
    with torch.no_grad():
        for image in x:  # one sample at a time, as written in the description
            fmap = model.features(image[None])[0].double()  # (16, H, W)
            pooled = fmap.mean(dim=(1, 2)).numpy()
            weight = pooled / pooled.sum()
            h, w = fmap.shape[1:]
            for f in range(16):
                soft = torch.softmax(fmap[f].flatten(), 0)
                r, c = divmod(int(torch.argmax(fmap[f].flatten())), w)
                loc[f] += float(soft.max()) * weight[f]
                edge[f] += float(r in (0, h - 1) or c in (0, w - 1)) * weight[f]
    loc_n = _reference_clip(loc / len(x))
    edge_n = _reference_clip(-edge)
    expected_B = _reference_clip(np.where(edge_n >= 0, loc_n, loc_n.min()))
    assert np.abs(B).max() == pytest.approx(np.sqrt(10) * 0.1)
    assert np.allclose(B, expected_B, atol=1e-6)
    # R: plain cosine similarity of the columns of A (unscaled), diagonal zero, negatives zero
    A0 = pearson_similarity(stats.class_sums, stats.class_counts, stats.total_sumsq)
    cos = np.array([[A0[:, i] @ A0[:, j] / np.linalg.norm(A0[:, i]) / np.linalg.norm(A0[:, j])
                     for j in range(16)] for i in range(16)])
    np.fill_diagonal(cos, 0.0)
    assert np.allclose(R, np.maximum(cos, 0.0), atol=1e-12)


def _solution_and_stats():
    torch.manual_seed(0)
    model = DigitsNet(n_features=12, n_classes=4)
    stats = qt.collect_features(model, tiny_data(), progress=False)
    A, R, B = qt.build_matrices(stats, k=2, n_features=6)
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=6, backend="localsearch")
    return model, stats, sol


def test_head_forward_install_uninstall_and_state_dict():
    model, stats, sol = _solution_and_stats()
    old_fc = model.fc
    head = qt.install_head(model, sol, stats)
    # only the standardisation is trainable (as in QPM's reference); the assignment is not
    assert model.fc is head and [n for n, _ in head.named_parameters()] == ["mean", "std"]
    assert not head.weight.requires_grad and not head.feature_idx.requires_grad
    assert not list(qt.QPMHead.from_solution(sol, stats, trainable_normalisation=False).parameters())
    assert all(p is not old_fc.weight for p in model.parameters())
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        pooled = model.pool(model.features(x)).flatten(1)
        mean, std = stats.mean[sol.features], stats.std[sol.features]
        floored = np.maximum(std, 0.05 * np.sqrt(mean**2 + std**2))  # the documented floor
        assert (floored > std).any()  # this random-init net has a feature that needs it
        expected = ((pooled[:, sol.features] - torch.tensor(mean, dtype=torch.float32))
                    / torch.tensor(floored, dtype=torch.float32)) @ torch.tensor(
            sol.assignment[:, sol.features], dtype=torch.float32).T
        assert torch.allclose(model(x), expected, rtol=1e-5, atol=1e-4)
    # explanation
    for c in range(4):
        assert head.class_features(c) == np.flatnonzero(sol.assignment[c]).tolist()
    cmp = head.compare_classes(0, 1)
    assert set(cmp["shared"]) | set(cmp["only_0"]) == set(head.class_features(0))
    # state dict round trip
    again = qt.QPMHead.from_state_dict(head.state_dict())
    assert torch.allclose(again(pooled), head(pooled))
    with pytest.raises(RuntimeError, match="already installed"):
        qt.install_head(model, sol, stats)
    assert qt.uninstall_head(model) is old_fc and model.fc is old_fc


def test_diversity_loss_prefers_distinct_peaks():
    same = torch.zeros(1, 3, 4, 4)
    same[0, :, 1, 1] = 10.0
    apart = torch.zeros(1, 3, 4, 4)
    apart[0, 0, 0, 0] = apart[0, 1, 2, 2] = apart[0, 2, 3, 0] = 10.0
    assert qt.sid_at_k(apart) > 0.99
    assert qt.sid_at_k(same) == pytest.approx(1 / 3, abs=0.01)


def test_fine_tune_changes_backbone_not_head():
    model, stats, sol = _solution_and_stats()
    head = qt.install_head(model, sol, stats)
    before = [p.detach().clone() for p in model.features.parameters()]
    w = head.weight.clone()
    losses = qt.fine_tune(model, tiny_data(), epochs=2, lr=0.05, progress=False)
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.features.parameters()))
    assert torch.equal(head.weight, w)


def test_recalibrated_batch_norm_statistics_are_the_data_statistics():
    torch.manual_seed(0)
    model = DigitsNet(n_features=8, n_classes=4)
    loader = tiny_data(n=96)
    bn = model.features[0][1]  # the first block's BatchNorm2d
    conv = model.features[0][0]
    with torch.no_grad():
        bn.running_mean.fill_(5.0)  # stale statistics
        bn.running_var.fill_(9.0)
    model.eval()
    assert qt.recalibrate_batch_norm(model, loader)
    assert not model.training and bn.momentum == 0.1  # mode and momentum as they were
    # the statistics of the three equal batches, computed here from the conv outputs
    with torch.no_grad():
        per_batch = [conv(x) for x, _ in loader]
    mean = torch.stack([b.mean(dim=(0, 2, 3)) for b in per_batch]).mean(0)
    var = torch.stack([b.var(dim=(0, 2, 3), unbiased=True) for b in per_batch]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, atol=1e-4)
    assert not qt.recalibrate_batch_norm(nn.Sequential(nn.Linear(2, 2)), loader)


def test_class_independence_known_values():
    labels = np.repeat(np.arange(4), 10)
    one_class = (labels == 2).astype(float)[:, None]  # fires for class 2 only
    assert qt.class_independence(one_class, labels, 4) == pytest.approx(0.0)
    spread = np.ones((40, 1))
    spread[0] = 0.0  # the min-shift leaves every sample but this one at 1, spread over classes
    val = qt.class_independence(np.concatenate([spread, spread + 5]), np.concatenate([labels, labels]), 4)
    assert 0.7 < val <= 0.75  # near 1 - 1/4


def test_contrastiveness_and_correlation_known_values():
    rng = np.random.default_rng(0)
    bimodal = np.concatenate([rng.normal(0, 0.1, 200), rng.normal(10, 0.1, 200)])
    unimodal = rng.normal(0, 1, 400)
    assert qt.contrastiveness(bimodal[:, None]) > 0.99
    assert qt.contrastiveness(unimodal[:, None]) < 0.6
    x = rng.normal(size=(50, 1))
    assert qt.feature_correlation(np.hstack([x, x])) == pytest.approx(1.0)
    ortho = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert qt.feature_correlation(ortho) == pytest.approx(0.0)


def test_structural_grounding_perfect_and_wrong():
    W = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1]], dtype=float)
    unit = W / np.linalg.norm(W, axis=1, keepdims=True)
    S = unit @ unit.T
    assert qt.structural_grounding(W, S) == pytest.approx(1.0)
    assert qt.structural_grounding(W, np.ones((3, 3))) < 0.7
    with pytest.raises(ValueError, match="similarity: expected shape"):
        qt.structural_grounding(W, np.ones((2, 2)))


def test_report_covers_dense_and_qpm_models():
    model, stats, sol = _solution_and_stats()
    dense = qt.interpretability_report(model, tiny_data(), k=2)
    qt.install_head(model, sol, stats)
    qpm = qt.interpretability_report(model, tiny_data())
    for rep in (dense, qpm):
        assert set(rep) >= {"accuracy", "class_independence", "contrastiveness", "correlation", "sid_at_k"}
        assert 0 <= rep["accuracy"] <= 1 and 0.5 - 1e-9 <= rep["sid_at_k"] <= 1


def test_timm_style_model_is_found():
    class Timmish(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(1, 6, 3)
            self.global_pool = nn.AdaptiveAvgPool2d(1)
            self.head = nn.Linear(6, 3)
            self.aux = nn.Linear(3, 3)  # a later linear that is not the classifier

        def get_classifier(self):
            return self.head

        def forward(self, x):
            return self.head(self.global_pool(self.body(x)).flatten(1))

    name, clf, pool = qt.find_feature_modules(Timmish())
    assert name == "head" and isinstance(pool, nn.AdaptiveAvgPool2d)


def test_save_and_load_into_a_fresh_model_gives_equal_logits(tmp_path):
    model, stats, sol = _solution_and_stats()
    qt.install_head(model, sol, stats)
    qt.fine_tune(model, tiny_data(), epochs=1, lr=0.05, progress=False)  # weights differ from init now
    qt.save_qpm_model(model, tmp_path / "qpm.pt")
    torch.manual_seed(123)  # a fresh model with other random weights
    fresh = DigitsNet(n_features=12, n_classes=4)
    head, loaded_sol = qt.load_qpm_model(fresh, tmp_path / "qpm.pt")
    x = torch.rand(5, 1, 16, 16)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))
    assert fresh.fc is head and head.explanation() == model.fc.explanation()
    assert np.array_equal(loaded_sol.features, sol.features) and np.array_equal(loaded_sol.assignment, sol.assignment)
    assert loaded_sol.objective == sol.objective and loaded_sol.status is sol.status
    assert isinstance(qt.uninstall_head(fresh), nn.Linear)
    # another architecture, and a file that is not a QPM model, are refused with a reason
    with pytest.raises(ValueError, match="architecture differs|takes 8 features"):
        qt.load_qpm_model(DigitsNet(n_features=8, n_classes=4), tmp_path / "qpm.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a qpmopt QPM model"):
        qt.load_qpm_model(DigitsNet(n_features=12, n_classes=4), tmp_path / "other.pt")
    with pytest.raises(RuntimeError, match="no QPM head installed"):
        qt.save_qpm_model(DigitsNet(n_features=12, n_classes=4), tmp_path / "none.pt")


def test_solution_json_round_trip_is_verified():
    A, R, B = np.random.default_rng(0).uniform(size=(5, 8)), None, None
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=4, backend="bruteforce")
    problem = qpmopt.Problem.from_arrays(A, k=2, n_features=4)
    back = qpmopt.Solution.from_json(sol.to_json(), problem)
    assert np.array_equal(back.assignment, sol.assignment) and back.objective == sol.objective
    assert back.status is sol.status and back.bound == sol.bound
    data = json.loads(sol.to_json())
    data["objective"] += 0.5  # a tampered file
    with pytest.raises(qpmopt.VerificationError, match="recorded objective"):
        qpmopt.Solution.from_dict(data, problem)
    data = json.loads(sol.to_json())
    data["class_features"][1] = data["class_features"][0]  # breaks uniqueness
    qpmopt.Solution.from_dict(data)  # the structure alone is fine
    with pytest.raises(qpmopt.VerificationError, match="uniqueness"):
        qpmopt.Solution.from_dict(data, problem)
    data = json.loads(sol.to_json())
    data["class_features"][0] = [f for f in range(8) if f not in sol.features][:2]
    with pytest.raises(ValueError, match="class 0 uses features that are not selected"):
        qpmopt.Solution.from_dict(data)
    del data["n_candidates"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['n_candidates'\]"):
        qpmopt.Solution.from_dict(data)


@pytest.mark.parametrize("kind", ["normal", "clusters_and_outliers", "rounded_with_ties"])
def test_one_dimensional_mean_shift_equals_scikit_learns(kind):
    from sklearn.cluster import MeanShift, estimate_bandwidth

    from qpmopt.matrices import mean_shift_labels_1d

    rng = np.random.default_rng(["normal", "clusters_and_outliers", "rounded_with_ties"].index(kind))
    for _ in range(6):
        n = int(rng.integers(20, 200))
        if kind == "normal":
            v = rng.normal(size=n)
        elif kind == "clusters_and_outliers":
            v = np.concatenate([rng.normal(0, 1, n // 2), rng.normal(5, 0.5, n - n // 2), [30.0, -20.0]])
        else:
            v = np.round(rng.uniform(size=n), 2)
        bandwidth = estimate_bandwidth(v.reshape(-1, 1))
        expected = MeanShift(bandwidth=bandwidth).fit(v.reshape(-1, 1)).labels_
        assert np.array_equal(mean_shift_labels_1d(v, bandwidth), expected)
