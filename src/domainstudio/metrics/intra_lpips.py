"""Intra-cluster LPIPS, CDC's diversity protocol (Ojha et al. 2021).

Each generated sample joins the cluster of its nearest training image (by LPIPS); within each cluster the
mean LPIPS over all pairs of (at most ``cluster_cap``, seeded subsample) members is taken; the score is the
mean over clusters with at least two members, the "+-" is the standard deviation over those clusters, unbiased
(divided by k - 1) as CDC's ``feat_cluster.py`` takes it with torch's ``std``; NaN when only one cluster is scored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from domainstudio.metrics.lpips_embedding import LpipsEmbedding, squared_distances


@dataclass
class IntraLpipsResult:
    intra_lpips: float
    std: float
    n_samples: int
    n_clusters: int
    n_clusters_scored: int
    cluster_sizes: list[int] = field(default_factory=list)
    cluster_scores: list[float | None] = field(default_factory=list)


def intra_lpips_from_embeddings(samples: torch.Tensor, train: torch.Tensor, cluster_cap: int = 50, seed: int = 0) -> IntraLpipsResult:
    """The protocol on precomputed LPIPS embeddings (``LpipsEmbedding``)."""
    nearest = squared_distances(samples, train).argmin(1).numpy()
    rng = np.random.default_rng(seed)
    sizes, scores = [], []
    for k in range(train.shape[0]):
        members = np.flatnonzero(nearest == k)
        sizes.append(int(members.size))
        if members.size > cluster_cap:
            members = np.sort(rng.choice(members, cluster_cap, replace=False))
        if members.size < 2:
            scores.append(None)
            continue
        e = samples[members]
        d = squared_distances(e, e)
        iu = torch.triu_indices(len(members), len(members), 1)
        scores.append(float(d[iu[0], iu[1]].mean()))
    valid = [s for s in scores if s is not None]
    if not valid:
        raise ValueError("Intra-LPIPS is undefined: no cluster has two or more samples")
    std = float(np.std(valid, ddof=1)) if len(valid) > 1 else float("nan")
    return IntraLpipsResult(intra_lpips=float(np.mean(valid)), std=std, n_samples=int(samples.shape[0]),
                            n_clusters=int(train.shape[0]), n_clusters_scored=len(valid), cluster_sizes=sizes, cluster_scores=scores)


def intra_lpips(samples: np.ndarray, train: np.ndarray, embedding: LpipsEmbedding, cluster_cap: int = 50, seed: int = 0) -> IntraLpipsResult:
    """Intra-LPIPS of uint8 samples given the uint8 training images."""
    return intra_lpips_from_embeddings(embedding(samples), embedding(train), cluster_cap, seed)
