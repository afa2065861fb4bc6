"""Relative distances between the samples of a batch, compared across two models: DDPM-PA's and DomainStudio's
pairwise similarity loss (DomainStudio eq. 5-7) and CDC's cross-domain distance consistency (Ojha et al. 2021, eq. 3)
are the same KL between softmaxes of cosine similarities; both import it from here."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from domainstudio.registry import KL_DIRECTIONS, MIN_PAIRWISE_SAMPLES, PAIRWISE_REDUCTIONS
from domainstudio.devices import in_float32


@in_float32
def relative_distance_loss(ada: torch.Tensor, sou: torch.Tensor, direction: str = "paper", reduction: str = "sum",
                           detach_reference: bool = True) -> torch.Tensor:
    """sum_i KL between the softmax over j != i of cosine similarities sim(x_i, x_j) of the adapted and the
    source model's images (DomainStudio eq. 5-7; DDPM-PA's pairwise similarity loss).

    ``direction="paper"`` is KL(p_ada || p_sou) as written in the paper; ``"official"`` is KL(p_sou || p_ada),
    what the released code computes with ``KLDivLoss(log p_ada, p_sou)``. ``reduction="sum"`` sums over the n
    samples (the paper's sum over i); ``"mean"`` is ``KLDivLoss()``'s default of the released code, the mean over
    the n (n - 1) entries, i.e. the sum divided by n (n - 1). The source side carries no gradient unless
    ``detach_reference`` is False (the official text-to-image code compares two halves of the adapted model's batch).
    """
    if reduction not in PAIRWISE_REDUCTIONS:
        raise ValueError(f"reduction must be one of {list(PAIRWISE_REDUCTIONS)}, not {reduction!r}")
    kl = relative_distance_kl(ada, sou, direction, detach_reference)
    n = ada.shape[0]
    return kl.sum() if reduction == "sum" else kl.sum() / (n * (n - 1))


def relative_distance_kl(ada: torch.Tensor, sou: torch.Tensor, direction: str = "paper", detach_reference: bool = True) -> torch.Tensor:
    """The n per-sample KL terms of :func:`relative_distance_loss` (row i: the softmax over j != i)."""
    if ada.shape[0] < MIN_PAIRWISE_SAMPLES:
        raise ValueError(f"relative distances need at least {MIN_PAIRWISE_SAMPLES} samples (with 2 the softmax over j != i has "
                         f"one entry, p = 1 for both models and the KL is 0), got {ada.shape[0]}")
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"direction must be one of {list(KL_DIRECTIONS)}, not {direction!r}")
    n = ada.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=ada.device)

    def log_p(x):
        z = F.normalize(x.flatten(1).float(), dim=1)
        sim = (z @ z.T)[off_diagonal].view(n, n - 1)
        return F.log_softmax(sim, dim=1)

    log_ada, log_sou = log_p(ada), log_p(sou)
    if detach_reference:
        log_sou = log_sou.detach()
    if direction == "paper":
        return (log_ada.exp() * (log_ada - log_sou)).sum(1)
    return (log_sou.exp() * (log_sou - log_ada)).sum(1)
