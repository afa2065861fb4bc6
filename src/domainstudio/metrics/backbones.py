"""The metric backbones, chosen here and nowhere else: ``evaluate.backbone`` (LPIPS: embedded, alex, vgg,
alex-random) and ``evaluate.fid_backbone`` (FID/KID: embedded, inception). Each constructor fails before any work
when a weight file is missing, naming the file to provide; none falls back to another backbone."""
from __future__ import annotations

from pathlib import Path

FID_BACKBONES = ("embedded", "inception")


class BackboneError(ValueError):
    """A backbone that cannot be built as asked; the message names the parameter."""


def _embedded(embedded_dir: str | Path | None, what: str, resize: int | None = None):
    from domainstudio.metrics.embedded_backbone import EmbeddedBackbone

    if not embedded_dir:
        raise BackboneError(f"{what} backbone 'embedded' needs the embedded metric backbone's folder (--embedded-backbone)")
    return EmbeddedBackbone.load(embedded_dir, resize)


def lpips_embedding(backbone: str, resize: int | None = None, embedded_dir: str | Path | None = None):
    """images (uint8 N x H x W x 3) -> LPIPS embeddings whose squared distances are LPIPS distances."""
    if backbone == "embedded":
        return _embedded(embedded_dir, "LPIPS", resize)
    from domainstudio.metrics.lpips_embedding import LpipsEmbedding

    return LpipsEmbedding(backbone, resize=resize)


def fid_features(backbone: str, embedded_dir: str | Path | None = None):
    """images (uint8 N x H x W x 3) -> float64 N x D features for FID/KID."""
    if backbone == "inception":
        from domainstudio.metrics.fid import inception_features

        return inception_features()
    if backbone == "embedded":
        return _embedded(embedded_dir, "FID").fid_features
    raise BackboneError(f"unknown FID backbone {backbone!r}; expected one of {FID_BACKBONES}")
