"""The text-to-image objective: DreamBooth with class-prior preservation plus DomainStudio's terms.

A batch holds an instance half (latents of the K target images, instance prompt "a sks face") and a class half
(latents of images the source pipeline generated for the class prompt "a face"). With eps and t drawn per sample,

    L = ||eps - eps_ada(z_t^ins, t, c_ins)||^2 + prior_weight ||eps - eps_ada(z_t^cls, t, c_cls)||^2   (DreamBooth)
        + l_img L_img + l_hf L_hf + l_hfmse L_hfmse                                                    (DomainStudio)

The DomainStudio terms are the unconditional ones (:mod:`domainstudio.adapt.losses`, imported, not rewritten),
applied in pixel space to VAE-decoded predicted x0 (``vae.decode(x0_hat / scaling_factor)``):

* ``pairwise_reference: source`` (default): on the class half, the adapted model's decoded x0 against the frozen
  source model's on the same noisy latents and prompt, so the terms are zero while the two models agree, as in
  the unconditional method;
* ``pairwise_reference: class-half``: what the official release computes (``train_domainstudio.py``): the
  adapted model's instance half against its own class half; the class half's relative distances are the
  reference (gradient-free unless ``reference_gradient: flow``).

L_hfmse compares hf of the decoded instance-half x0 with hf of the very instance images that were noised.

``kl_direction``, ``pairwise_reduction``, ``haar`` and ``hfmse_weighting`` are the unconditional options
(:class:`domainstudio.adapt.objectives.DomainStudioOptions`), passed to the same functions.

Two more choices of the official release are options. ``timesteps: shared`` is the release's two passes
(``train_domainstudio.py`` l. 862-890, 958-966): eps drawn once per sample; the DomainStudio terms from a UNet pass
at one t shared by the whole batch, the two MSEs from a second pass at a t per sample with the same eps (default
``per_sample``: one pass at a t per sample for everything, DreamBooth's). ``reference_gradient: flow`` lets the
pairwise terms' gradient reach the class half as well (default ``detach``: the reference side is a fixed target, as
in the unconditional method).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from domainstudio.adapt import losses
from domainstudio.adapt.losses import HAAR_CONVENTIONS
from domainstudio.adapt.objectives import HFMSE_WEIGHTINGS, DomainStudioWeights
from domainstudio.registry import KL_DIRECTIONS, MIN_PAIRWISE_SAMPLES, PAIRWISE_REDUCTIONS, check_choices

PAIRWISE_REFERENCES = ("source", "class-half")


@dataclass(frozen=True)
class T2IOptions:
    """How the terms are formed (module docstring). ``kl_direction``, ``pairwise_reduction``, ``haar`` and
    ``hfmse_weighting`` mean what they mean for the unconditional method (DomainStudioOptions); the release's values
    are official, mean (its ``KLDivLoss()``, l. 842, over the n (n - 1) entries of a half), official (its Conv2d
    ``get_wave``, l. 427) and none (``F.mse_loss`` mean, l. 956)."""

    prior_weight: float = 1.0
    pairwise_reference: str = "source"
    kl_direction: str = "paper"
    pairwise_reduction: str = "sum"     # sum | mean (the release: KLDivLoss() mean over entries)
    haar: str = "pywavelets"            # pywavelets | official (the release's Conv2d correlation)
    hfmse_weighting: str = "none"
    timesteps: str = "per_sample"       # per_sample | shared (the release: the terms at one t, the MSEs per sample)
    reference_gradient: str = "detach"  # detach | flow (class-half reference only: the official release's gradient)

    def __post_init__(self):
        check_choices(self, "t2i.options", {"pairwise_reference": PAIRWISE_REFERENCES, "kl_direction": KL_DIRECTIONS,
                                            "pairwise_reduction": PAIRWISE_REDUCTIONS, "haar": HAAR_CONVENTIONS,
                                            "hfmse_weighting": HFMSE_WEIGHTINGS, "timesteps": ("per_sample", "shared"),
                                            "reference_gradient": ("detach", "flow")})
        if self.reference_gradient == "flow" and self.pairwise_reference != "class-half":
            raise ValueError("t2i.options: reference_gradient 'flow' needs pairwise_reference 'class-half' (the frozen source takes no gradient)")
        if self.prior_weight < 0:
            raise ValueError(f"t2i.options.prior_weight: must be >= 0, not {self.prior_weight}")


@dataclass
class T2IBatch:
    """Clean latents (already scaled by the VAE's scaling factor), their pixel images in [-1, 1], prompt embeddings."""

    z_ins: torch.Tensor
    z_cls: torch.Tensor
    x_ins: torch.Tensor
    c_ins: torch.Tensor
    c_cls: torch.Tensor


class DreamBoothDomainStudio:
    """``objective(unet, batch, generator) -> (loss, {term: float})``; with all weights 0 this is DreamBooth."""

    def __init__(self, scheduler, vae, source_unet, weights: DomainStudioWeights, options: T2IOptions = T2IOptions(),
                 batch_size: int | None = None):
        if weights.pairwise and batch_size is not None and batch_size < MIN_PAIRWISE_SAMPLES:
            raise ValueError(f"batch_size {batch_size}: the relative-distance terms (l_img, l_hf) compare the samples of a "
                             f"batch half and need a batch size of at least {MIN_PAIRWISE_SAMPLES}")
        if weights.pairwise and options.pairwise_reference == "source" and source_unet is None:
            raise ValueError("pairwise_reference 'source' needs the frozen source UNet")
        self.scheduler, self.weights, self.options = scheduler, weights, options
        self.vae = vae.eval().requires_grad_(False)
        self.source = source_unet.eval().requires_grad_(False) if source_unet is not None else None

    def decode(self, z0: torch.Tensor) -> torch.Tensor:
        """Pixel images in about [-1, 1] from latent x0 (gradients flow through the frozen decoder)."""
        return self.vae.decode(z0 / self.vae.config.scaling_factor).sample.float()

    def __call__(self, unet, b: T2IBatch, generator: torch.Generator):
        w, o = self.weights, self.options
        n = b.z_ins.shape[0]
        z0 = torch.cat([b.z_ins, b.z_cls])
        steps = self.scheduler.config.num_train_timesteps
        if o.timesteps == "shared":  # drawn even for DreamBooth, so that both methods see the same t and eps
            t_terms = torch.randint(0, steps, (1,), generator=generator).expand(2 * n).to(z0.device)
        t = torch.randint(0, steps, (2 * n,), generator=generator).to(z0.device)
        noise = torch.randn(z0.shape, generator=generator).to(z0.device)
        z_t = self.scheduler.add_noise(z0, noise, t)
        cond = torch.cat([b.c_ins.expand(n, -1, -1), b.c_cls.expand(n, -1, -1)])
        eps = unet(z_t, t, cond).sample
        l_instance = F.mse_loss(eps[:n].float(), noise[:n])
        l_prior = F.mse_loss(eps[n:].float(), noise[n:])
        loss = l_instance + o.prior_weight * l_prior
        terms = {"l_instance": l_instance.item(), "l_prior": l_prior.item()}
        if not (w.pairwise or w.l_hfmse > 0):
            return loss, terms
        abar = self.scheduler.alphas_cumprod
        if o.timesteps == "shared":  # the release's pass for the terms: same eps, one t (l. 876-890)
            t = t_terms
            z_t = self.scheduler.add_noise(z0, noise, t)
            eps = unet(z_t, t, cond).sample
        x0_ada = losses.predicted_x0(z_t, eps, abar, t)
        img_ins = self.decode(x0_ada[:n]) if (w.l_hfmse > 0 or o.pairwise_reference == "class-half") else None
        pair = None
        if w.pairwise:
            img_cls = self.decode(x0_ada[n:])
            if o.pairwise_reference == "source":
                with torch.no_grad():
                    eps_sou = self.source(z_t[n:], t[n:], cond[n:]).sample
                    img_ref = self.decode(losses.predicted_x0(z_t[n:], eps_sou, abar, t[n:]))
                pair = (img_cls, img_ref)
            else:
                pair = (img_ins, img_cls)
        weight = abar.to(z0.device, torch.float32)[t[:n]] if o.hfmse_weighting == "abar" else None
        return losses.add_domainstudio_terms(loss, terms, w, pair, (img_ins, b.x_ins, weight), o.kl_direction,
                                             o.pairwise_reduction, o.haar,
                                             detach_reference=o.reference_gradient == "detach"), terms
