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

from domainstudio.adapt import losses as L
from domainstudio.adapt.losses import HAAR_CONVENTIONS
from domainstudio.models.source import eps_and_v
from domainstudio.registry import KL_DIRECTIONS, MIN_PAIRWISE_SAMPLES, PAIRWISE_REDUCTIONS, check_choices

HFMSE_WEIGHTINGS = ("abar", "none")  # L_hfmse per sample weighted by abar_t, or not


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
    """l1, l2, l3, l4 of L = L_simple + l1 L_vlb + l2 L_img + l3 L_hf + l4 L_hfmse (DomainStudio eq. 11). L_vlb
    exists only for a source that learns its variance (a guided-diffusion checkpoint); it trains that variance in
    every method, as in the checkpoint's own training (params.yaml: l1 = 0.001, Improved DDPM's L_hybrid). The
    defaults, all 0, are plain fine-tuning."""

    l_img: float = 0.0
    l_hf: float = 0.0
    l_hfmse: float = 0.0
    l_vlb: float = 0.0

    @property
    def pairwise(self) -> bool:
        """Whether a relative-distance term (L_img or L_hf) is on: those need the source model and a batch >= 2."""
        return self.l_img > 0 or self.l_hf > 0


@dataclass(frozen=True)
class DomainStudioOptions:
    """How the terms are formed; each choice, the official code's among them, and the evidence for the defaults are
    in docs/method.md.

    kl_direction:    "paper" = KL(p_ada || p_sou) as the paper writes it; "official" = KL(p_sou || p_ada).
    pairwise_min_t, pairwise_max_t: only samples with pairwise_min_t <= t < pairwise_max_t take part in L_img and
                     L_hf (max None: no upper bound). At large t, x0_hat = (x_t - ...)/sqrt(abar_t) amplifies
                     errors up to ~150x; at small t the terms fight the target's fine style.
    pairwise_samples: None = every sample in the window enters; an integer k >= 3 draws k of them at random (the
                     official code draws 3 per step).
    pairwise_reduction: "sum" over samples (the paper's sum over i) or "mean" over the n (n - 1) softmax entries
                     (the official code's KLDivLoss()); with n samples a "mean" weight w equals a "sum" weight
                     w / (n (n - 1)): 1/6 of it for the official 3 samples.
    hfmse_weighting: "abar" multiplies each sample's L_hfmse by abar_t, for the same reason; "none" does not.
    haar:            "pywavelets" (hf = 2 (top-left pixel - 2x2 block mean)) or "official" (the released code's
                     correlation: 2 (bottom-right pixel - block mean)); losses.py.
    pairwise_groups: None = the whole batch is one group; an integer G splits the batch into G consecutive equal
                     groups, applies the window and ``pairwise_samples`` within each group, and makes L_img and L_hf
                     the mean over the G groups of each group's term (a group with fewer than 3 samples in the window
                     adds 0). The released code's 8 GPUs of batch 3: each rank's loss has its own terms and DDP
                     averages the ranks' gradients (train_util.py, forward_backward). L_simple and L_hfmse, means
                     over samples, are the same either way.
    """

    kl_direction: str = "paper"
    pairwise_min_t: int = 500
    pairwise_max_t: int | None = None
    pairwise_samples: int | None = None
    pairwise_reduction: str = "sum"
    hfmse_weighting: str = "abar"
    haar: str = "pywavelets"
    pairwise_groups: int | None = None

    def __post_init__(self):
        check_choices(self, "adapt.options", {"kl_direction": KL_DIRECTIONS, "pairwise_reduction": PAIRWISE_REDUCTIONS,
                                              "hfmse_weighting": HFMSE_WEIGHTINGS, "haar": HAAR_CONVENTIONS})
        if self.pairwise_samples is not None and self.pairwise_samples < MIN_PAIRWISE_SAMPLES:
            raise ValueError(f"adapt.options.pairwise_samples: at least {MIN_PAIRWISE_SAMPLES} (or null: all), not {self.pairwise_samples}")
        if self.pairwise_groups is not None and self.pairwise_groups < 1:
            raise ValueError(f"adapt.options.pairwise_groups: at least 1 (or null: one group), not {self.pairwise_groups}")


def pairwise_summary(log_csv) -> dict:
    """From a training log with a ``pairwise_n`` column (samples that entered L_img / L_hf at a logged step): how
    often the pairwise terms were active (at least MIN_PAIRWISE_SAMPLES samples) and how many samples entered on
    average. Over every step when the log has a row per step (adapt.train.log_every: 1). Empty without pairwise terms."""
    import csv

    with open(log_csv, newline="") as fh:
        counts = [int(r["pairwise_n"]) for r in csv.DictReader(fh) if r.get("pairwise_n") not in (None, "")]
    if not counts:
        return {}
    summary = {"pairwise_steps_logged": len(counts),
               "pairwise_active_fraction": sum(n >= MIN_PAIRWISE_SAMPLES for n in counts) / len(counts),
               "pairwise_mean_samples": sum(counts) / len(counts)}
    with open(log_csv, newline="") as fh:  # with pairwise_groups: how many groups had their terms on
        groups = [int(r["pairwise_groups_on"]) for r in csv.DictReader(fh) if r.get("pairwise_groups_on") not in (None, "")]
    if groups:
        summary["pairwise_mean_groups_on"] = sum(groups) / len(groups)
    return summary


class DomainStudio:
    """L_simple plus DomainStudio's relative-distance and high-frequency terms.

    The frozen source model and the adapted model predict eps on the same (x_t, t); the terms compare the
    predicted clean images. With all weights 0 this is exactly ``NoisePrediction`` (DDPM-FT).
    """

    def __init__(self, scheduler: DDPMScheduler, source: UNet2DModel | None, weights: DomainStudioWeights,
                 options: DomainStudioOptions = DomainStudioOptions(), batch_size: int | None = None):
        if weights.pairwise and batch_size is not None and batch_size < MIN_PAIRWISE_SAMPLES:
            raise ValueError(f"batch_size {batch_size}: the relative-distance terms (l_img, l_hf) compare each sample with the "
                             f"others of its batch and need a batch size of at least {MIN_PAIRWISE_SAMPLES}")
        if weights.pairwise and source is None:
            raise ValueError("the relative-distance terms (l_img, l_hf) need the frozen source model")
        groups = options.pairwise_groups or 1
        if batch_size is not None and (batch_size % groups or (weights.pairwise and batch_size // groups < MIN_PAIRWISE_SAMPLES)):
            raise ValueError(f"batch_size {batch_size}: pairwise_groups {groups} needs a batch of {groups} equal groups of at least "
                             f"{MIN_PAIRWISE_SAMPLES} samples")
        self.scheduler, self.weights, self.options = scheduler, weights, options
        self.source = source.eval().requires_grad_(False) if source is not None else None

    def __call__(self, unet: UNet2DModel, x0: torch.Tensor, generator: torch.Generator):
        w, o = self.weights, self.options
        b = noised_batch(self.scheduler, x0, generator)
        eps_ada, v = eps_and_v(unet, b.x_t, b.t)
        l_simple = F.mse_loss(eps_ada.float(), b.noise)
        terms = {"l_simple": l_simple.item()}
        loss = l_simple
        if v is not None and w.l_vlb > 0:
            # L_vlb = T E_t[L_t], the bound's sum over t estimated at the drawn t: l1 = 0.001 weights each L_t by
            # T / 1000, guided-diffusion's hybrid loss (its vb term times num_timesteps / 1000).
            l_vlb = self.scheduler.config.num_train_timesteps * L.vlb_term(b.x0, b.x_t, eps_ada, v, self.scheduler.betas, b.t).mean()
            loss = loss + w.l_vlb * l_vlb
            terms["l_vlb"] = l_vlb.item()
        if w.l_img == 0 and w.l_hf == 0 and w.l_hfmse == 0:
            return loss, terms
        abar = self.scheduler.alphas_cumprod
        x0_ada = L.predicted_x0(b.x_t, eps_ada, abar, b.t)
        pair = None
        if w.pairwise:
            kept = self._pairwise_samples(b.t, generator, terms)
            if kept:
                index = torch.cat(kept)
                with torch.no_grad():
                    eps_sou, _ = eps_and_v(self.source, b.x_t[index], b.t[index])
                x0_sou = L.predicted_x0(b.x_t[index], eps_sou, abar, b.t[index]).split([len(k) for k in kept])
                pair = [(x0_ada[k], s) for k, s in zip(kept, x0_sou)] if o.pairwise_groups else (x0_ada[kept[0]], x0_sou[0])
        weight = abar.to(x0.device, torch.float32)[b.t] if o.hfmse_weighting == "abar" else None
        return L.add_domainstudio_terms(loss, terms, w, pair, (x0_ada, b.x0, weight), o.kl_direction, o.pairwise_reduction, o.haar,
                                        groups=o.pairwise_groups), terms

    def _pairwise_samples(self, t: torch.Tensor, generator: torch.Generator, terms: dict) -> list[torch.Tensor]:
        """The indices of the samples that enter L_img and L_hf, one tensor per group whose terms are on: in each of
        the pairwise_groups consecutive groups (one without the option), the samples in the timestep window, of them
        pairwise_samples drawn at random; a group needs MIN_PAIRWISE_SAMPLES. Logs pairwise_n (samples that entered the
        window and the draw, over the groups) and, with groups, pairwise_groups_on."""
        o = self.options
        groups = o.pairwise_groups or 1
        if len(t) % groups:
            raise ValueError(f"a batch of {len(t)} does not split into pairwise_groups = {groups} equal groups")
        size, kept, entered = len(t) // groups, [], 0
        for start in range(0, len(t), size):
            group_t = t[start:start + size]
            in_window = group_t >= o.pairwise_min_t
            if o.pairwise_max_t is not None:
                in_window &= group_t < o.pairwise_max_t
            keep = in_window.nonzero().flatten() + start
            if o.pairwise_samples is not None and len(keep) > o.pairwise_samples:
                keep = keep[torch.randperm(len(keep), generator=generator)[: o.pairwise_samples].to(keep.device)]
            entered += len(keep)
            if len(keep) >= MIN_PAIRWISE_SAMPLES:
                kept.append(keep)
        terms["pairwise_n"] = entered  # samples that enter the terms; each group needs MIN_PAIRWISE_SAMPLES
        if o.pairwise_groups:
            terms["pairwise_groups_on"] = len(kept)
        return kept
