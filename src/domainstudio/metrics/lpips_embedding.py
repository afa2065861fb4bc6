"""LPIPS (Zhang et al. 2018) as a squared Euclidean distance in a fixed embedding, exact to float precision.

LPIPS(x, y) = sum_l mean_hw sum_c w_lc (f_l(x) - f_l(y))_chw^2 with unit-normalised features f_l and
non-negative linear weights w_l. Setting e_l(x) = sqrt(w_l) * f_l(x) / sqrt(H_l W_l) and concatenating the
layers gives LPIPS(x, y) = ||e(x) - e(y)||^2, so features are extracted once per image and all pairwise
distances come from one matrix product, instead of one network pass per pair.

Backbones (named in every table row):
  ``alex``, ``vgg``    lpips' calibrated weights on torchvision's ImageNet trunk (paper scale; the trunk weight file
                       must be in torch's hub cache, otherwise LpipsWeightsMissing names the file to provide);
  ``alex-random``      lpips' alex linear weights on a randomly initialised (seeded) AlexNet trunk: needs no download,
                       a stand-in until the embedded backbone exists; its numbers are not comparable to the paper's.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

BACKBONES = ("alex", "vgg", "alex-random")
_TRUNK_WEIGHTS = {"alex": "AlexNet_Weights", "vgg": "VGG16_Weights"}


class LpipsWeightsMissing(FileNotFoundError):
    """A paper-scale backbone's weight file is not on this machine."""


def trunk_weight_file(net: str) -> Path:
    """Where torchvision looks for the ImageNet trunk of lpips' ``net`` (alex or vgg)."""
    import torchvision.models as tvm

    url = getattr(tvm, _TRUNK_WEIGHTS[net]).IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def build_lpips(backbone: str, seed: int = 0):
    """An ``lpips.LPIPS`` module for ``backbone``, never silently substituting another trunk."""
    import lpips

    if backbone not in BACKBONES:
        raise ValueError(f"unknown LPIPS backbone {backbone!r}; expected one of {BACKBONES}")
    net = backbone.split("-")[0]
    random_trunk = backbone.endswith("-random")
    if not random_trunk:
        path = trunk_weight_file(net)
        if not path.exists():
            raise LpipsWeightsMissing(
                f"LPIPS backbone {backbone!r} needs torchvision's ImageNet weights at {path} (not found, and this run does "
                f"not download). Copy the file there (or set TORCH_HOME), or choose another evaluate.backbone.")
    with torch.random.fork_rng(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation, inside lpips
        torch.manual_seed(seed)
        model = lpips.LPIPS(net=net, pnet_rand=random_trunk, verbose=False)
    return model.eval()


class LpipsEmbedding:
    """Maps images to vectors whose squared distances are LPIPS distances (see module docstring)."""

    def __init__(self, backbone: str, resize: int | None = None, batch_size: int = 100, device: str = "cpu"):
        self.backbone = backbone
        self.resize = resize
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.model = build_lpips(backbone).to(self.device)
        self.sqrt_w = []
        for lin in self.model.lins:
            w = lin.model[-1].weight.detach().flatten()
            if (w < 0).any():
                raise ValueError(f"LPIPS linear weights of {backbone!r} have negative entries; the embedding needs w >= 0")
            self.sqrt_w.append(w.sqrt().to(self.device))

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 N x H x W x 3 -> float N x 3 x S x S in [-1, 1] (bilinear resize to ``resize`` if set)."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if self.resize and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return x

    @torch.no_grad()
    def __call__(self, images: np.ndarray) -> torch.Tensor:
        """float64 N x D embedding."""
        import lpips

        out = []
        for start in range(0, len(images), self.batch_size):
            x = self.preprocess(images[start:start + self.batch_size]).to(self.device)
            feats = self.model.net.forward(self.model.scaling_layer(x))
            parts = []
            for f, sw in zip(feats, self.sqrt_w):
                f = lpips.normalize_tensor(f) * sw[None, :, None, None] / (f.shape[2] * f.shape[3]) ** 0.5
                parts.append(f.flatten(1))
            out.append(torch.cat(parts, 1).double().cpu())
        return torch.cat(out)


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise ||a_i - b_j||^2 in float64 (the LPIPS distances of the embedded images)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return d.clamp_min(0.0)
