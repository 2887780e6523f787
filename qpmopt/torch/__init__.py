"""The torch adapter: from a trained model to a QPM model, in the user's own loop.

``from qpmopt import torch as qt`` (inside this package ``import torch`` is the real torch).

- :func:`collect_features` streams a DataLoader into the statistics QPM needs;
- :func:`build_matrices` turns them into ``A, R, B`` exactly as QPM does;
- :class:`QPMHead`, :func:`install_head`, :func:`uninstall_head` swap the last layer;
- :class:`FeatureDiversityLoss`, :class:`FeatureMapHook`, :func:`fine_tune` for training;
- :func:`save_qpm_model`, :func:`load_qpm_model` to keep a QPM model and restore it into a
  freshly built one;
- :func:`interpretability_report` and the metric functions of :mod:`qpmopt.torch.metrics`;
- under ``torch.distributed``: statistics and reports combine the ranks' shards, and
  :func:`broadcast_solution` hands one rank's solve to the others.
"""

from qpmopt.torch.distributed import broadcast_solution
from qpmopt.torch.features import FeatureStats, collect_features, find_feature_modules
from qpmopt.torch.finetune import fine_tune, recalibrate_batch_norm, restandardise_head
from qpmopt.torch.head import QPMHead, install_head, uninstall_head
from qpmopt.torch.losses import FeatureDiversityLoss, FeatureMapHook
from qpmopt.torch.matrices import build_matrices
from qpmopt.torch.metrics import (
    class_independence,
    contrastiveness,
    feature_correlation,
    interpretability_report,
    sid_at_k,
    structural_grounding,
)
from qpmopt.torch.saving import load_qpm_model, save_qpm_model

__all__ = [
    "FeatureStats",
    "collect_features",
    "find_feature_modules",
    "build_matrices",
    "QPMHead",
    "install_head",
    "uninstall_head",
    "FeatureDiversityLoss",
    "FeatureMapHook",
    "fine_tune",
    "recalibrate_batch_norm",
    "restandardise_head",
    "save_qpm_model",
    "load_qpm_model",
    "broadcast_solution",
    "interpretability_report",
    "class_independence",
    "contrastiveness",
    "sid_at_k",
    "feature_correlation",
    "structural_grounding",
]
