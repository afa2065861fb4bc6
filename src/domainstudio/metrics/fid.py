"""FID (Heusel et al. 2017, eq. 6) and KID (Binkowski et al. 2018) of generated samples against a reference set.

The distances are written here from their definitions and tested to equal clean-fid's ``frechet_distance`` and
``kernel_distance`` (tests/test_metrics.py; KID with the same seeded subsets). They live here rather than being
imported because importing ``cleanfid.fid`` imports torchvision (~2 s in every evaluate job) and clean-fid's KID
recomputes the kernel on every subset (~2 s); here the Gram matrices are computed once. Features:

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


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, as clean-fid) of N x D features."""
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2) (Heusel et al. 2017, eq. 6). As clean-fid: eps on the diagonals
    when the product is singular; the numerical imaginary part of the square root is dropped, a large one is an error."""
    from scipy import linalg

    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: the square root of S1 S2 has an imaginary part of {np.abs(covmean.imag).max():.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(features: np.ndarray, ref_mu: np.ndarray, ref_sigma: np.ndarray) -> float:
    """FID of N x D features against the reference statistics (:func:`frechet_distance`)."""
    mu, sigma = statistics(features)
    return frechet_distance(mu, sigma, ref_mu, ref_sigma)


def kid(features: np.ndarray, ref_features: np.ndarray, seed: int = 0, subsets: int = 100, max_subset_size: int = 1000,
        gram_limit_bytes: float = 2**30) -> float:
    """KID (Binkowski et al. 2018): the unbiased MMD^2 between generated and reference features with the cubic
    kernel k(a, b) = (a.b / D + 1)^3, averaged over ``subsets`` random subsets of m = min(N_gen, N_ref, 1000) of each,
    drawn without replacement as clean-fid draws them after ``np.random.seed(seed)``.

    Each subset's kernel sums are 1^T K 1 over its rows, so the three Gram matrices are computed once and the subsets
    become indicator vectors; above ``gram_limit_bytes`` of Gram matrices the kernel is computed per subset instead.
    """
    gen, ref = np.asarray(features, np.float64), np.asarray(ref_features, np.float64)
    d, m = gen.shape[1], min(len(gen), len(ref), max_subset_size)
    rng = np.random.RandomState(seed)  # the legacy global generator's stream, as clean-fid uses it
    picks = [(rng.choice(len(ref), m, replace=False), rng.choice(len(gen), m, replace=False)) for _ in range(subsets)]
    kernel = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    if 8 * (len(ref) + len(gen)) ** 2 <= gram_limit_bytes:
        k_rr, k_gg, k_rg = kernel(ref, ref), kernel(gen, gen), kernel(ref, gen)
        u_r, u_g = np.zeros((subsets, len(ref))), np.zeros((subsets, len(gen)))
        for i, (r, g) in enumerate(picks):
            u_r[i, r], u_g[i, g] = 1.0, 1.0
        within = (((u_r @ k_rr) * u_r).sum(1) - u_r @ np.diagonal(k_rr)
                  + ((u_g @ k_gg) * u_g).sum(1) - u_g @ np.diagonal(k_gg))
        between = ((u_r @ k_rg) * u_g).sum(1)
    else:
        within, between = np.zeros(subsets), np.zeros(subsets)
        for i, (r, g) in enumerate(picks):
            k_r, k_g = kernel(ref[r], ref[r]), kernel(gen[g], gen[g])
            within[i] = k_r.sum() - np.trace(k_r) + k_g.sum() - np.trace(k_g)
            between[i] = kernel(ref[r], gen[g]).sum()
    return float(np.mean(within / (m * (m - 1)) - 2 * between / m**2))
