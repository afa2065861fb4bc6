"""The GAN losses, each in one place under its paper's name.

* non-saturating logistic GAN loss and R1 gradient penalty (Goodfellow et al. 2014; Mescheder et al. 2018),
  as StyleGAN2 trains with them;
* EWC's Fisher information and penalty (Li et al. 2020, "Few-shot image generation with elastic weight
  consolidation", eq. 3-4);
* CDC's cross-domain distance consistency (Ojha et al. 2021, "Few-shot image generation via cross-domain
  correspondence", eq. 1-2), the same relative-distance KL that DomainStudio later applies to x0_hat, so it
  reuses :func:`domainstudio.adapt.losses.relative_distance_loss`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from domainstudio.adapt.losses import relative_distance_loss


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logits), averaged (patch logits average over patches too)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss -log D(G(z))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(discriminator, real: torch.Tensor) -> torch.Tensor:
    """R1 = E ||grad_x D(x)||^2 on real images (Mescheder et al. 2018, eq. 9, without the gamma / 2)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(real).sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def ewc_fisher(generator, discriminator, batches: int, batch_size: int, rng: torch.Generator) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information of the source generator's weights, F = E[(d L / d theta)^2], with L the
    generator's adversarial log-likelihood term -log D(G(z)) under the source discriminator (Li et al. 2020,
    eq. 3), estimated from ``batches`` batches of z."""
    params = {n: p for n, p in generator.named_parameters()}
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    for _ in range(batches):
        z = torch.randn(batch_size, generator.cfg.z_dim, generator=rng)
        loss = generator_loss(discriminator(generator(z)))
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        for (n, _), g in zip(params.items(), grads):
            if g is not None:
                fisher[n] += g.detach().pow(2) / batches
    return fisher


def ewc_penalty(generator, source_params: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i F_i (theta_i - theta_S,i)^2 over the generator's weights (Li et al. 2020, eq. 4, without lambda)."""
    total = None
    for n, p in generator.named_parameters():
        term = (fisher[n] * (p - source_params[n]).pow(2)).sum()
        total = term if total is None else total + term
    return total


def cross_domain_consistency_loss(features_ada: list[torch.Tensor], features_src: list[torch.Tensor]) -> torch.Tensor:
    """CDC's L_dist: at every compared generator layer l, the softmax over j != i of the cosine similarities of
    the i-th sample's activations to the other samples', for the adapted (y^{s->t}) and the source generator
    (y^s) on the same batch of z; the sum over layers and samples of KL(y^{s->t}_i || y^s_i) (eq. 1-2).
    Zero when the adapted generator equals the source; the source side carries no gradient."""
    if len(features_ada) != len(features_src) or not features_ada:
        raise ValueError("cross-domain consistency needs the same non-empty list of layers from both generators")
    return sum(relative_distance_loss(a, s, direction="paper") for a, s in zip(features_ada, features_src))
