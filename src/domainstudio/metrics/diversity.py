"""Ground-truth diversity and fidelity from the embedded world's recorded factors (embedded worlds only).

The metric backbone's heads read each generated sample's domain and factors of variation. Per target domain:

- ``factor_entropy_ratio[f] = H(predicted f over samples) / H(predicted f over the reference set)`` for each factor
  readable in that domain (both sides are predictions, so head errors affect them alike). 1 means the samples
  vary that factor as much as real target images; a model that copies its K training images is capped at
  ``log K / H_ref``. ``factor_diversity`` is the mean over readable factors.
- ``in_domain`` is the fraction of samples the domain head assigns to the target domain (style fidelity).

The near-copy fraction (memorisation) needs only LPIPS distances, so it works on real data too:
``near_copy_fraction`` counts samples closer to their nearest training image than ``quantile`` of fresh reference
images are to theirs; a generator that draws new target images scores about ``quantile``.
"""
from __future__ import annotations

import numpy as np
import torch

from domainstudio.metrics.lpips_embedding import squared_distances


def entropy(labels: np.ndarray, n_classes: int) -> float:
    p = np.bincount(labels, minlength=n_classes) / max(len(labels), 1)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def factor_diversity(backbone, samples: np.ndarray, reference: np.ndarray, domain: str) -> dict:
    """Entropy ratios of every readable factor, their mean, and the in-domain fraction (module docstring)."""
    pred_s, pred_r = backbone.predict(samples), backbone.predict(reference)
    ratios = {}
    for name in backbone.readable_factors(domain):
        n = backbone.coder.n_classes(name)
        h_ref = entropy(pred_r[name], n)
        if h_ref > 0:
            ratios[name] = entropy(pred_s[name], n) / h_ref
    return {
        "factor_diversity": float(np.mean(list(ratios.values()))) if ratios else None,
        "factor_entropy_ratio": ratios,
        "in_domain": float((pred_s["domain"] == backbone.domain_index(domain)).mean()),
        "in_domain_reference": float((pred_r["domain"] == backbone.domain_index(domain)).mean()),
    }


def near_copy_fraction(samples: torch.Tensor, train: torch.Tensor, reference: torch.Tensor, quantile: float = 0.05) -> dict:
    """Fraction of samples nearer to a training image than the ``quantile`` of reference images' nearest distances.

    Arguments are LPIPS embeddings (``squared_distances`` are LPIPS distances).
    """
    tau = float(np.quantile(squared_distances(reference, train).min(1).values.numpy(), quantile))
    nearest = squared_distances(samples, train).min(1).values.numpy()
    return {"near_copy_fraction": float((nearest < tau).mean()), "near_copy_threshold": tau, "near_copy_quantile": quantile}
