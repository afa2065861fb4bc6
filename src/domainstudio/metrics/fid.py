"""FID (Heusel et al. 2017, eq. 6) and KID (Binkowski et al. 2018) of generated samples against a reference set.

The distances are clean-fid's own functions (``frechet_distance``, ``kernel_distance``); this module only
chooses the features and caches the reference side:

  ``inception``  clean-fid's "clean" mode: its PIL-bicubic resize to 299 px, then the Inception-v3 torchscript
                 (pool3, 2048-d). The weight file must already be on disk (``inception_weight_file``);
                 this run never downloads it, and stops with the path to provide when it is missing.
  ``embedded``   the pooled features of the benchmark's own metric backbone (metrics/embedded_backbone.py),
                 at its native resolution. Numbers are not comparable with Inception FIDs.

Reference statistics (mean, covariance, features for KID) are computed once per domain and backbone and stored
as a workflow output (``results/reference_stats/...``), not in site-packages.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FID_BACKBONES = ("embedded", "inception")
INCEPTION_FILE = "inception-2015-12-05.pt"
INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/" + INCEPTION_FILE


class InceptionWeightsMissing(FileNotFoundError):
    """clean-fid's Inception weight file is not on this machine."""


def inception_weight_file() -> Path:
    """Where the Inception torchscript is looked up: $DOMAINSTUDIO_INCEPTION_DIR, else clean-fid's own folder (/tmp)."""
    return Path(os.environ.get("DOMAINSTUDIO_INCEPTION_DIR", "/tmp")) / INCEPTION_FILE


class CleanFidFeatures:
    """clean-fid's feature pipeline for uint8 images: its "clean" resize to 299, then ``model`` on [0, 255] floats."""

    def __init__(self, model, batch_size: int = 100):
        from cleanfid.resize import build_resizer

        self.model, self.batch_size, self.resize = model, batch_size, build_resizer("clean")

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(images), self.batch_size):
            batch = np.stack([self.resize(im) for im in images[start:start + self.batch_size]])
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()  # as clean-fid's ResizeDataset + ToTensor
            with torch.no_grad():
                out.append(self.model(x).double().cpu().numpy())
        return np.concatenate(out)


def inception_features(batch_size: int = 100) -> CleanFidFeatures:
    """clean-fid's Inception in "clean" mode, or InceptionWeightsMissing naming the file and where to put it."""
    from cleanfid.inception_torchscript import InceptionV3W

    path = inception_weight_file()
    if not path.exists():
        raise InceptionWeightsMissing(
            f"FID backbone 'inception' needs clean-fid's Inception weights at {path} (not found; this run does not "
            f"download). Download {INCEPTION_URL} on a machine with network access and copy it there (or set "
            f"DOMAINSTUDIO_INCEPTION_DIR to its folder), or choose evaluate.fid_backbone: embedded.")
    model = InceptionV3W(str(path.parent), download=False, resize_inside=False).eval()
    return CleanFidFeatures(model, batch_size)


def feature_extractor(backbone: str, embedded_dir: str | Path | None = None):
    """images (uint8 N x H x W x 3) -> float64 N x D features for ``backbone``; fails before any work if unavailable."""
    if backbone == "inception":
        return inception_features()
    if backbone == "embedded":
        from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

        if embedded_dir is None:
            raise ValueError("FID backbone 'embedded' needs the trained backbone folder")
        return EmbeddedBackbone.load(embedded_dir).fid_features
    raise ValueError(f"unknown FID backbone {backbone!r}; expected one of {FID_BACKBONES}")


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as clean-fid) of N x D features."""
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def fid(features: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray) -> float:
    """FID = ||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^1/2), clean-fid's implementation."""
    from cleanfid.fid import frechet_distance

    mu, sigma = statistics(features)
    return float(frechet_distance(mu, sigma, ref_mu, ref_sigma))


def kid(features: np.ndarray, ref_features: np.ndarray, seed: int = 0) -> float:
    """KID (unbiased MMD^2, cubic polynomial kernel, 100 subsets), clean-fid's implementation with seeded subsets."""
    from cleanfid.fid import kernel_distance

    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return float(kernel_distance(features, ref_features))
    finally:
        np.random.set_state(state)
