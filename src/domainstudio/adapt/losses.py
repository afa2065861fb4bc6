"""DomainStudio's loss terms (Zhu et al. 2023), each in one place under the paper's name.

For a batch x_0, one t and eps per sample, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; the adapted and the
frozen source model both predict eps on the same (x_t, t), and each prediction gives a predicted clean image
(:func:`predicted_x0`). The terms added to L_simple are

* L_img   = sum_i KL(p_ada_i || p_sou_i): relative distances between the predicted x_0 of the batch (eq. 5-7;
            :mod:`domainstudio.relative_distance`, shared with CDC);
* L_hf    = the same on the high-frequency part hf(x_0) = LH + HL + HH of a one-level Haar transform (eq. 8-9);
* L_hfmse = mean ||hf(x0_ada) - hf(x_0)||^2 against the training images (eq. 10).

The terms are computed in float32 even inside a bf16/fp16 autocast region (:func:`domainstudio.devices.in_float32`): the softmax inputs
are cosine similarities that differ in the third decimal, and in bf16 (8-bit mantissa) matmul and conv rounding
is larger than the true KL, which then comes out negative and its gradient is noise (tests/test_losses.py).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from domainstudio.devices import in_float32
from domainstudio.relative_distance import relative_distance_loss

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


@in_float32
def predicted_x0(x_t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (DDPM eq. 15; diffusers' pred_original_sample)."""
    abar = alphas_cumprod.to(x_t.device, torch.float32)[t].view(-1, 1, 1, 1)
    return (x_t.float() - (1 - abar).sqrt() * eps.float()) / abar.sqrt()


@in_float32
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


@in_float32
def hf_reconstruction_loss(x0_ada: torch.Tensor, x0: torch.Tensor, weight: torch.Tensor | None = None, haar: str = "pywavelets") -> torch.Tensor:
    """L_hfmse = ||hf(x0_ada) - hf(x_0)||^2 (DomainStudio eq. 10), mean over pixels, per-sample ``weight`` optional."""
    per_sample = (haar_highpass(x0_ada, haar) - haar_highpass(x0.float(), haar)).pow(2).flatten(1).mean(1)
    if weight is not None:
        per_sample = per_sample * weight
    return per_sample.mean()


def add_domainstudio_terms(loss: torch.Tensor, terms: dict, weights, pair=None, reconstruction=None, direction: str = "paper",
                           reduction: str = "sum", haar: str = "pywavelets", detach_reference: bool = True,
                           groups: int | None = None) -> torch.Tensor:
    """``loss`` + l2 L_img + l3 L_hf + l4 L_hfmse (DomainStudio eq. 11 after L_simple), each term's value put in ``terms``.

    ``pair`` = (adapted, reference) images of the relative-distance terms L_img and L_hf (None: not this step), or a
    list of such pairs, one per group of the batch whose terms are on; then each term is (1/groups) sum over the pairs
    of the group's term, ``groups`` counting the groups without terms too (the mean over the release's GPUs, each of
    which forms its own terms: option pairwise_groups). ``reconstruction`` = (x0_ada, x0, per-sample weight or None) of
    L_hfmse (None: off). Terms with weight 0 are not computed. Both objectives (unconditional and text-to-image) form
    their terms here."""
    if pair is not None:
        pairs = pair if isinstance(pair, list) else [pair]
        n_groups = groups or len(pairs)

        def group_mean(transform):
            total = relative_distance_loss(transform(pairs[0][0]), transform(pairs[0][1]), direction, reduction, detach_reference)
            for ada, ref in pairs[1:]:
                total = total + relative_distance_loss(transform(ada), transform(ref), direction, reduction, detach_reference)
            return total if n_groups == 1 else total / n_groups

        if weights.l_img > 0:
            l_img = group_mean(lambda x: x)
            loss = loss + weights.l_img * l_img
            terms["l_img"] = l_img.item()
        if weights.l_hf > 0:
            l_hf = group_mean(lambda x: haar_highpass(x, haar))
            loss = loss + weights.l_hf * l_hf
            terms["l_hf"] = l_hf.item()
    if reconstruction is not None and weights.l_hfmse > 0:
        x0_ada, x0, weight = reconstruction
        l_hfmse = hf_reconstruction_loss(x0_ada, x0, weight, haar)
        loss = loss + weights.l_hfmse * l_hfmse
        terms["l_hfmse"] = l_hfmse.item()
    return loss



def _posterior(betas: torch.Tensor, t: torch.Tensor) -> dict[str, torch.Tensor]:
    """q(x_{t-1} | x_t, x_0) = N(c0 x_0 + ct x_t, var) (DDPM eq. 6-7) and the bounds of Improved DDPM's variance
    (eq. 15): log beta_t and log beta~_t (beta~ at t = 0 replaced by beta~_1, which is not 0), per sample, computed in
    float64 from the schedule and returned in float32 as N x 1 x 1 x 1."""
    betas = betas.double()
    abar = torch.cumprod(1 - betas, 0)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    var = betas * (1 - abar_prev) / (1 - abar)
    log_var = torch.log(torch.cat([var[1:2], var[1:]]))
    out = {"c0": betas * abar_prev.sqrt() / (1 - abar), "ct": (1 - abar_prev) * (1 - betas).sqrt() / (1 - abar),
           "log_var": log_var, "log_beta": torch.log(betas), "abar": abar}
    return {k: v.to(t.device)[t].float().view(-1, 1, 1, 1) for k, v in out.items()}


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The standard normal CDF by its tanh approximation (as DDPM's decoder likelihood uses)."""
    return 0.5 * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _decoder_nll(x0: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """-log p(x_0 | x_1) of 8-bit images under N(mean, exp(log_var)) integrated over each pixel's bin of width 2/255
    (DDPM eq. 13); the edge bins extend to infinity."""
    inv_std = torch.exp(-0.5 * log_var)
    upper, lower = _normal_cdf(inv_std * (x0 - mean + 1 / 255)), _normal_cdf(inv_std * (x0 - mean - 1 / 255))
    log_p = torch.where(x0 < -0.999, torch.log(upper.clamp(min=1e-12)),
                        torch.where(x0 > 0.999, torch.log((1 - lower).clamp(min=1e-12)), torch.log((upper - lower).clamp(min=1e-12))))
    return -log_p


@in_float32
def vlb_term(x0: torch.Tensor, x_t: torch.Tensor, eps: torch.Tensor, v: torch.Tensor, betas: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Each sample's term L_t of the variational bound, in bits per dimension (DDPM eq. 5): KL(q(x_{t-1} | x_t, x_0)
    || p(x_{t-1} | x_t)) for t > 0 and the decoder NLL -log p(x_0 | x_1) at t = 0. The model's variance is Improved
    DDPM's interpolation exp(u log beta_t + (1 - u) log beta~_t), u = (v + 1) / 2 (eq. 15); its mean comes from the
    predicted noise with the gradient stopped, so that L_vlb trains the variance only (Improved DDPM, L_hybrid)."""
    q = _posterior(betas, t)
    x0_hat = (x_t - (1 - q["abar"]).sqrt() * eps.detach()) / q["abar"].sqrt()
    mean, true_mean = q["c0"] * x0_hat + q["ct"] * x_t, q["c0"] * x0 + q["ct"] * x_t
    u = (v + 1) / 2
    log_var = u * q["log_beta"] + (1 - u) * q["log_var"]
    kl = 0.5 * (-1 + log_var - q["log_var"] + torch.exp(q["log_var"] - log_var) + (true_mean - mean) ** 2 * torch.exp(-log_var))
    nll = _decoder_nll(x0, mean, log_var)
    per_sample = torch.where(t.view(-1, 1, 1, 1) == 0, nll, kl).flatten(1).mean(1)
    return per_sample / math.log(2)
