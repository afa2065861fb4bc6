"""DomainStudio's loss terms (Zhu et al. 2023), each in one place under the paper's name.

For a batch x_0, one t and eps per sample, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; the adapted and the
frozen source model both predict eps on the same (x_t, t), and each prediction gives a predicted clean image
(:func:`predicted_x0`). The terms added to L_simple are

* L_img   = sum_i KL(p_ada_i || p_sou_i): relative distances between the predicted x_0 of the batch (eq. 5-7);
* L_hf    = the same on the high-frequency part hf(x_0) = LH + HL + HH of a one-level Haar transform (eq. 8-9);
* L_hfmse = mean ||hf(x0_ada) - hf(x_0)||^2 against the training images (eq. 10).

The terms are computed in float32 even inside a bf16/fp16 autocast region (:func:`_float32`): the softmax inputs
are cosine similarities that differ in the third decimal, and in bf16 (8-bit mantissa) matmul and conv rounding
is larger than the true KL, which then comes out negative and its gradient is noise (tests/test_losses.py).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from domainstudio.config import MIN_PAIRWISE_SAMPLES

# One-level Haar analysis filters L = (1, 1)/sqrt2, H = (-1, 1)/sqrt2, as 2x2 kernels over (rows, columns) of a
# block [[a, b], [c, d]]. Two conventions (option ``haar``):
#   pywavelets: the filters applied as convolutions (H correlates as (1, -1)/sqrt2), equal to PyWavelets'
#               dwt2(x, "haar") bands LH = cH, HL = cV, HH = cD; LH + HL + HH = 2 (a - block mean);
#   official:   the filters applied with Conv2d, a correlation, as DomainStudio's released code does;
#               LH + HL + HH = 2 (d - block mean). The same kind of high-pass, read at the other corner of each block.
HAAR_CONVENTIONS = ("pywavelets", "official")
_HAAR = {
    "pywavelets": {"LL": [[1, 1], [1, 1]], "LH": [[1, 1], [-1, -1]], "HL": [[1, -1], [1, -1]], "HH": [[1, -1], [-1, 1]]},
    "official": {"LL": [[1, 1], [1, 1]], "LH": [[-1, -1], [1, 1]], "HL": [[-1, 1], [-1, 1]], "HH": [[1, -1], [-1, 1]]},
}
PAIRWISE_REDUCTIONS = ("sum", "mean")


def _float32(fn):
    """Run ``fn`` with autocast off and its tensor arguments in float32 (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        device = next(a.device.type for a in args if isinstance(a, torch.Tensor))
        with torch.autocast(device_type=device, enabled=False):
            args = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
            return fn(*args, **kwargs)

    return wrapper


@_float32
def predicted_x0(x_t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (DDPM eq. 15; diffusers' pred_original_sample)."""
    abar = alphas_cumprod.to(x_t.device, torch.float32)[t].view(-1, 1, 1, 1)
    return (x_t.float() - (1 - abar).sqrt() * eps.float()) / abar.sqrt()


@_float32
def haar_subbands(x: torch.Tensor, convention: str = "pywavelets") -> dict[str, torch.Tensor]:
    """One-level 2-D Haar transform of N x C x H x W images (H, W even): sub-bands LL, LH, HL, HH at H/2 x W/2."""
    if convention not in HAAR_CONVENTIONS:
        raise ValueError(f"haar must be one of {HAAR_CONVENTIONS}, not {convention!r}")
    n, c, h, w = x.shape
    bank = _HAAR[convention]
    kernels = 0.5 * torch.tensor(list(bank.values()), dtype=x.dtype, device=x.device)[:, None]  # 4 x 1 x 2 x 2, (1/sqrt2)^2
    out = F.conv2d(x.reshape(n * c, 1, h, w), kernels, stride=2).reshape(n, c, 4, h // 2, w // 2)
    return {name: out[:, :, i] for i, name in enumerate(bank)}


def haar_highpass(x: torch.Tensor, convention: str = "pywavelets") -> torch.Tensor:
    """hf(x) = LH + HL + HH, the sum of the three detail sub-bands (DomainStudio eq. 8)."""
    bands = haar_subbands(x, convention)
    return bands["LH"] + bands["HL"] + bands["HH"]


@_float32
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
        raise ValueError(f"reduction must be one of {PAIRWISE_REDUCTIONS}, not {reduction!r}")
    kl = relative_distance_kl(ada, sou, direction, detach_reference)
    n = ada.shape[0]
    return kl.sum() if reduction == "sum" else kl.sum() / (n * (n - 1))


def relative_distance_kl(ada: torch.Tensor, sou: torch.Tensor, direction: str = "paper", detach_reference: bool = True) -> torch.Tensor:
    """The n per-sample KL terms of :func:`relative_distance_loss` (row i: the softmax over j != i)."""
    if ada.shape[0] < MIN_PAIRWISE_SAMPLES:
        raise ValueError(f"relative distances need at least {MIN_PAIRWISE_SAMPLES} samples (with 2 the softmax over j != i has "
                         f"one entry, p = 1 for both models and the KL is 0), got {ada.shape[0]}")
    if direction not in ("paper", "official"):
        raise ValueError(f"direction must be 'paper' or 'official', not {direction!r}")
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


@_float32
def hf_reconstruction_loss(x0_ada: torch.Tensor, x0: torch.Tensor, weight: torch.Tensor | None = None, haar: str = "pywavelets") -> torch.Tensor:
    """L_hfmse = ||hf(x0_ada) - hf(x_0)||^2 (DomainStudio eq. 10), mean over pixels, per-sample ``weight`` optional."""
    per_sample = (haar_highpass(x0_ada, haar) - haar_highpass(x0.float(), haar)).pow(2).flatten(1).mean(1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()
