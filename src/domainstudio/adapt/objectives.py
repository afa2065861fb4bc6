"""Training objectives of the diffusion trainer.

``NoisePrediction`` is the DDPM loss L_simple = E ||eps - eps_theta(x_t, t)||^2 (Ho et al. 2020, eq. 14):
source pre-training and the DDPM-FT baseline use it alone. The DomainStudio terms are added on top of it
(``domainstudio.adapt.losses``), so every method goes through this one interface:
``objective(unet, x0, generator) -> (loss, {name: float})``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel


@dataclass
class NoisedBatch:
    x0: torch.Tensor
    noise: torch.Tensor
    t: torch.Tensor
    x_t: torch.Tensor


def noised_batch(scheduler: DDPMScheduler, x0: torch.Tensor, generator: torch.Generator) -> NoisedBatch:
    """Draw t ~ U{0..T-1} and eps ~ N(0, I) per sample and form x_t (DDPM eq. 4, via ``add_noise``)."""
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    return NoisedBatch(x0=x0, noise=noise, t=t, x_t=scheduler.add_noise(x0, noise, t))


class NoisePrediction:
    """L_simple (DDPM eq. 14): mean squared error between the drawn and the predicted noise."""

    def __init__(self, scheduler: DDPMScheduler):
        self.scheduler = scheduler

    def __call__(self, unet: UNet2DModel, x0: torch.Tensor, generator: torch.Generator):
        b = noised_batch(self.scheduler, x0, generator)
        eps_hat = unet(b.x_t, b.t).sample
        loss = F.mse_loss(eps_hat.float(), b.noise)
        return loss, {"l_simple": loss.item()}


@dataclass(frozen=True)
class DomainStudioWeights:
    """l2, l3, l4 of L = L_simple + l2 L_img + l3 L_hf + l4 L_hfmse (DomainStudio eq. 11; l1 L_vlb needs a
    learned variance, which diffusers' epsilon UNets do not have)."""

    l_img: float = 0.0
    l_hf: float = 0.0
    l_hfmse: float = 0.0

    @property
    def pairwise(self) -> bool:
        """Whether a relative-distance term (L_img or L_hf) is on: those need the source model and a batch >= 2."""
        return self.l_img > 0 or self.l_hf > 0


@dataclass(frozen=True)
class DomainStudioOptions:
    """How the terms are formed; the defaults and the evidence for them are in the README (issue 3).

    kl_direction:    "paper" = KL(p_ada || p_sou) as the paper writes it; "official" = KL(p_sou || p_ada).
    pairwise_min_t, pairwise_max_t: only samples with pairwise_min_t <= t < pairwise_max_t take part in L_img and
                     L_hf (max None: no upper bound). At large t, x0_hat = (x_t - ...)/sqrt(abar_t) amplifies
                     errors up to ~150x; at small t the terms fight the target's fine style (README: evidence).
    hfmse_weighting: "abar" multiplies each sample's L_hfmse by abar_t, for the same reason; "none" does not.
    """

    kl_direction: str = "paper"
    pairwise_min_t: int = 0
    pairwise_max_t: int | None = None
    hfmse_weighting: str = "abar"


class DomainStudio:
    """L_simple plus DomainStudio's relative-distance and high-frequency terms (DESIGN §1).

    The frozen source model and the adapted model predict eps on the same (x_t, t); the terms compare the
    predicted clean images. With all weights 0 this is exactly ``NoisePrediction`` (DDPM-FT).
    """

    def __init__(self, scheduler: DDPMScheduler, source: UNet2DModel | None, weights: DomainStudioWeights,
                 options: DomainStudioOptions = DomainStudioOptions(), batch_size: int | None = None):
        from domainstudio.adapt import losses

        if options.kl_direction not in ("paper", "official"):
            raise ValueError(f"kl_direction must be 'paper' or 'official', not {options.kl_direction!r}")
        if options.hfmse_weighting not in ("abar", "none"):
            raise ValueError(f"hfmse_weighting must be 'abar' or 'none', not {options.hfmse_weighting!r}")
        if weights.pairwise and batch_size is not None and batch_size < 2:
            raise ValueError(f"batch_size {batch_size}: the relative-distance terms (l_img, l_hf) compare samples of a "
                             "batch and need a batch size of at least 2")
        if weights.pairwise and source is None:
            raise ValueError("the relative-distance terms (l_img, l_hf) need the frozen source model")
        self.losses = losses
        self.scheduler, self.weights, self.options = scheduler, weights, options
        self.source = source.eval().requires_grad_(False) if source is not None else None

    def __call__(self, unet: UNet2DModel, x0: torch.Tensor, generator: torch.Generator):
        L, w, o = self.losses, self.weights, self.options
        b = noised_batch(self.scheduler, x0, generator)
        eps_ada = unet(b.x_t, b.t).sample
        l_simple = F.mse_loss(eps_ada.float(), b.noise)
        terms = {"l_simple": l_simple.item()}
        loss = l_simple
        if w.l_img == 0 and w.l_hf == 0 and w.l_hfmse == 0:
            return loss, terms
        abar = self.scheduler.alphas_cumprod
        x0_ada = L.predicted_x0(b.x_t, eps_ada, abar, b.t)
        if w.pairwise:
            keep = b.t >= o.pairwise_min_t
            if o.pairwise_max_t is not None:
                keep &= b.t < o.pairwise_max_t
            if int(keep.sum()) >= 2:
                with torch.no_grad():
                    eps_sou = self.source(b.x_t[keep], b.t[keep]).sample
                x0_sou = L.predicted_x0(b.x_t[keep], eps_sou, abar, b.t[keep])
                if w.l_img > 0:
                    l_img = L.relative_distance_loss(x0_ada[keep], x0_sou, o.kl_direction)
                    loss = loss + w.l_img * l_img
                    terms["l_img"] = l_img.item()
                if w.l_hf > 0:
                    l_hf = L.relative_distance_loss(L.haar_highpass(x0_ada[keep]), L.haar_highpass(x0_sou), o.kl_direction)
                    loss = loss + w.l_hf * l_hf
                    terms["l_hf"] = l_hf.item()
        if w.l_hfmse > 0:
            weight = abar.to(x0.device, torch.float32)[b.t] if o.hfmse_weighting == "abar" else None
            l_hfmse = L.hf_reconstruction_loss(x0_ada, b.x0, weight)
            loss = loss + w.l_hfmse * l_hfmse
            terms["l_hfmse"] = l_hfmse.item()
        return loss, terms
