"""DomainStudio's loss terms (Zhu et al. 2023; DESIGN §1), each in one place under the paper's name.

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

_S = 2 ** -0.5
# One-level Haar analysis filters L = (1, 1)/sqrt2, H = (-1, 1)/sqrt2, applied as convolutions (so H correlates
# as (1, -1)/sqrt2), giving 2x2 kernels over (rows, columns) equal to PyWavelets' dwt2(x, "haar") bands:
# LH = cH (horizontal detail), HL = cV (vertical detail), HH = cD (diagonal detail).
_HAAR = {
    "LL": torch.tensor([[_S * _S, _S * _S], [_S * _S, _S * _S]]),
    "LH": torch.tensor([[_S * _S, _S * _S], [-_S * _S, -_S * _S]]),
    "HL": torch.tensor([[_S * _S, -_S * _S], [_S * _S, -_S * _S]]),
    "HH": torch.tensor([[_S * _S, -_S * _S], [-_S * _S, _S * _S]]),
}


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
def haar_subbands(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One-level 2-D Haar transform of N x C x H x W images (H, W even): sub-bands LL, LH, HL, HH at H/2 x W/2."""
    n, c, h, w = x.shape
    kernels = torch.stack(list(_HAAR.values()))[:, None].to(x)  # 4 x 1 x 2 x 2
    out = F.conv2d(x.reshape(n * c, 1, h, w), kernels, stride=2).reshape(n, c, 4, h // 2, w // 2)
    return {name: out[:, :, i] for i, name in enumerate(_HAAR)}


def haar_highpass(x: torch.Tensor) -> torch.Tensor:
    """hf(x) = LH + HL + HH, the sum of the three detail sub-bands (DomainStudio eq. 8)."""
    bands = haar_subbands(x)
    return bands["LH"] + bands["HL"] + bands["HH"]


@_float32
def relative_distance_loss(ada: torch.Tensor, sou: torch.Tensor, direction: str = "paper") -> torch.Tensor:
    """sum_i KL between the softmax over j != i of cosine similarities sim(x_i, x_j) of the adapted and the
    source model's images (DomainStudio eq. 5-7; DDPM-PA's pairwise similarity loss).

    ``direction="paper"`` is KL(p_ada || p_sou) as written in the paper; ``"official"`` is KL(p_sou || p_ada),
    what the released code computes with ``KLDivLoss(log p_ada, p_sou)``. The source side carries no gradient.
    """
    if ada.shape[0] < 2:
        raise ValueError("relative distances need a batch of at least 2 samples")
    if direction not in ("paper", "official"):
        raise ValueError(f"direction must be 'paper' or 'official', not {direction!r}")
    n = ada.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=ada.device)

    def log_p(x):
        z = F.normalize(x.flatten(1).float(), dim=1)
        sim = (z @ z.T)[off_diagonal].view(n, n - 1)
        return F.log_softmax(sim, dim=1)

    log_ada, log_sou = log_p(ada), log_p(sou).detach()
    if direction == "paper":
        kl = (log_ada.exp() * (log_ada - log_sou)).sum(1)
    else:
        kl = (log_sou.exp() * (log_sou - log_ada)).sum(1)
    return kl.sum()


@_float32
def hf_reconstruction_loss(x0_ada: torch.Tensor, x0: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L_hfmse = ||hf(x0_ada) - hf(x_0)||^2 (DomainStudio eq. 10), mean over pixels, per-sample ``weight`` optional."""
    per_sample = (haar_highpass(x0_ada) - haar_highpass(x0.float())).pow(2).flatten(1).mean(1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()
