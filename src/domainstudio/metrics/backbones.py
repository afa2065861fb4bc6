"""The metric backbones, chosen here and nowhere else: ``evaluate.backbone`` (LPIPS: embedded, alex, vgg,
alex-random) and ``evaluate.fid_backbone`` (FID/KID: embedded, inception). Each constructor fails before any work
when a weight file is missing, naming the file to provide; none falls back to another backbone."""
from __future__ import annotations

import functools
from pathlib import Path

FID_BACKBONES = ("embedded", "inception")


class BackboneError(ValueError):
    """A backbone that cannot be built as asked; the message names the parameter."""


@functools.lru_cache(maxsize=4)
def _load_embedded(folder: str, resize: int | None):
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

    return EmbeddedBackbone.load(folder, resize)


def embedded_backbone(embedded_dir: str | Path | None, what: str = "diversity", resize: int | None = None):
    """The embedded metric backbone of ``embedded_dir``, loaded once per process for LPIPS, FID and the factor
    heads alike (an evaluate job uses all three)."""
    if not embedded_dir:
        raise BackboneError(f"{what} backbone 'embedded' needs the embedded metric backbone's folder (--embedded-backbone)")
    return _load_embedded(str(Path(embedded_dir).resolve()), resize)


def lpips_embedding(backbone: str, resize: int | None = None, embedded_dir: str | Path | None = None):
    """images (uint8 N x H x W x 3) -> LPIPS embeddings whose squared distances are LPIPS distances."""
    if backbone == "embedded":
        return embedded_backbone(embedded_dir, "LPIPS", resize)
    from domainstudio.metrics.lpips_embedding import LpipsEmbedding

    return LpipsEmbedding(backbone, resize=resize)


def fid_features(backbone: str, embedded_dir: str | Path | None = None):
    """images (uint8 N x H x W x 3) -> float64 N x D features for FID/KID."""
    if backbone == "inception":
        from domainstudio.metrics.fid import inception_features

        return inception_features()
    if backbone == "embedded":
        return embedded_backbone(embedded_dir, "FID").fid_features
    raise BackboneError(f"unknown FID backbone {backbone!r}; expected one of {FID_BACKBONES}")
