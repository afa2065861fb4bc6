"""The GAN losses, each in one place under its paper's name.

* non-saturating logistic GAN loss and R1 gradient penalty (Goodfellow et al. 2014; Mescheder et al. 2018),
  as StyleGAN2 trains with them;
* EWC's Fisher information and penalty (Li et al. 2020, "Few-shot image generation with elastic weight
  consolidation", eq. 3-4);
* CDC's cross-domain distance consistency (Ojha et al. 2021, "Few-shot image generation via cross-domain
  correspondence", eq. 1-2), the same relative-distance KL that DomainStudio later applies to x0_hat, so it
  reuses :func:`domainstudio.relative_distance.relative_distance_kl`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from domainstudio.relative_distance import relative_distance_kl


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logits), averaged (patch logits average over patches too)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(discriminator, real: torch.Tensor, patch: bool = False) -> torch.Tensor:
    """R1 = E ||grad_x D(x)||^2 on real images (Mescheder et al. 2018, eq. 9, without the gamma / 2). With ``patch``
    D(x) is the mean of the image's patch-level logits, as CDC's official code forms it on patch steps
    (``real_pred.view(B, -1).mean(1)`` before its ``d_r1_loss``)."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real, patch=patch).reshape(len(real), -1).mean(1)  # one logit per image: a no-op without patch
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def ewc_fisher(generator, discriminator, batches: int, batch_size: int, rng: torch.Generator,
               estimate: str = "per_sample") -> dict[str, torch.Tensor]:
    """Diagonal Fisher information of the source generator's weights, F = E_z[(d l(z) / d theta)^2], with l(z) the
    generator's adversarial log-likelihood term -log D(G(z)) under the source discriminator (Li et al. 2020, eq. 3),
    from ``batches`` batches of ``batch_size`` z.

    ``per_sample`` is the definition: the mean over all z of the squared per-sample gradients (one vectorised
    backward pass per batch). ``batch_mean`` squares the gradient of each batch's mean loss instead, the cheaper
    estimate of many implementations; it is smaller wherever the samples' gradients disagree (down to 1 / batch_size
    of the definition for independent gradients), so a lambda tuned on one is not the lambda for the other."""
    if estimate not in ("per_sample", "batch_mean"):
        raise ValueError(f"gan.methods.ewc.fisher: 'per_sample' or 'batch_mean', not {estimate!r}")
    params = dict(generator.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    device = next(generator.parameters()).device
    for _ in range(batches):
        z = torch.randn(batch_size, generator.cfg.z_dim, generator=rng).to(device)
        per_sample = F.softplus(-discriminator(generator(z)))  # l(z_i); their mean is generator_loss
        if estimate == "per_sample":
            eye = torch.eye(batch_size, device=device)
            grads = torch.autograd.grad(per_sample, list(params.values()), grad_outputs=eye, is_grads_batched=True, allow_unused=True)
            squares = [None if g is None else g.detach().pow(2).mean(0) for g in grads]
        else:
            grads = torch.autograd.grad(per_sample.mean(), list(params.values()), allow_unused=True)
            squares = [None if g is None else g.detach().pow(2) for g in grads]
        for n, sq in zip(params, squares):
            if sq is not None:
                fisher[n] += sq / batches
    return fisher


def ewc_penalty(generator, source_params: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i F_i (theta_i - theta_S,i)^2 over the generator's weights (Li et al. 2020, eq. 4, without lambda)."""
    total = None
    for n, p in generator.named_parameters():
        term = (fisher[n] * (p - source_params[n]).pow(2)).sum()
        total = term if total is None else total + term
    return total


def cross_domain_consistency_loss(features_ada: list[torch.Tensor], features_src: list[torch.Tensor], direction: str = "paper",
                                  reduction: str = "sum", layer_of_sample: torch.Tensor | None = None) -> torch.Tensor:
    """CDC's L_dist: at a generator layer l, the softmax over j != i of the cosine similarities of the i-th
    sample's activations to the other samples', for the adapted (y^{s->t}) and the source generator (y^s) on the
    same batch of z; KL(y^{s->t}_i || y^s_i) summed over samples (eq. 1-2). Zero when the adapted generator equals
    the source; the source side carries no gradient.

    ``layer_of_sample=None`` sums the term over all compared layers. A tensor of n layer indices instead takes row
    i (anchor sample i) from layer ``layer_of_sample[i]`` only, as the official code does with one random layer per
    anchor. ``direction`` and ``reduction`` as in :func:`relative_distance_loss` (the official code: "official"
    and "mean", KLDivLoss(log p_ada, p_src) averaged over the n (n - 1) entries)."""
    if len(features_ada) != len(features_src) or not features_ada:
        raise ValueError("cross-domain consistency needs the same non-empty list of layers from both generators")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', not {reduction!r}")
    rows = torch.stack([relative_distance_kl(a, s, direction) for a, s in zip(features_ada, features_src)])  # layers x n
    n = rows.shape[1]
    if layer_of_sample is None:
        total = rows.sum()
    else:
        if layer_of_sample.shape != (n,):
            raise ValueError(f"layer_of_sample: one layer index per sample ({n}), got shape {tuple(layer_of_sample.shape)}")
        total = rows.gather(0, layer_of_sample.to(rows.device)[None]).sum()
    return total if reduction == "sum" else total / (n * (n - 1))
