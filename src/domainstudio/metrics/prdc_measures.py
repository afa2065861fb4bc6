"""Precision and recall (Kynkaanniemi et al., "Improved Precision and Recall Metric for Assessing Generative
Models", NeurIPS 2019) and density and coverage (Naeem et al., "Reliable Fidelity and Diversity Metrics for
Generative Models", ICML 2020), on the FID features.

Each real (reference) feature gets a ball reaching its k-th nearest other real feature, each fake (sample) feature
one reaching its k-th nearest other fake feature:

- precision: the fraction of fakes inside at least one real ball (fidelity);
- recall: the fraction of reals inside at least one fake ball (diversity);
- density: the mean over fakes of the number of real balls containing them, divided by k (Naeem et al. eq. 5);
- coverage: the fraction of reals whose own ball contains at least one fake (Naeem et al. eq. 6).

Computed by ``prdc``, the implementation of Naeem et al.'s authors. Computed from the same frozen features as FID and
KID, these four share that backbone's invariances: one family of evidence with FID, not independent of it.
"""
from __future__ import annotations

import contextlib
import io

import numpy as np


def precision_recall_density_coverage(real_features: np.ndarray, fake_features: np.ndarray, k: int) -> dict:
    """``precision``, ``recall``, ``density`` and ``coverage`` of ``fake_features`` (N x D) against
    ``real_features`` (M x D) with k-nearest-neighbour balls (both papers: k = 5)."""
    from joblib import parallel_config
    from prdc import compute_prdc

    if min(len(real_features), len(fake_features)) <= k:
        raise ValueError(f"prdc: k = {k} needs more than k features on each side, not {len(real_features)} and {len(fake_features)}")
    # prdc prints the set sizes and asks scikit-learn for 8 worker threads: keep the job's stdout, and its distances
    # in the calling thread (a job's thread count is set by the workflow).
    with contextlib.redirect_stdout(io.StringIO()), parallel_config(backend="sequential"):
        out = compute_prdc(np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64), nearest_k=k)
    return {name: float(out[name]) for name in ("precision", "recall", "density", "coverage")}
