"""What the embedded worlds' renderers share: per-image seeds, colours and the supersampled canvas.

Every renderer draws at ``SUPERSAMPLE`` times the output size and downsamples (anti-aliasing), and seeds each
image from ``(seed, domain, split, index)`` alone, so an image never depends on how many others are rendered.
"""
from __future__ import annotations

import colorsys
import hashlib

PAPER = (246, 242, 232)  # the background of drawn domains
SUPERSAMPLE = 4  # draw at 4x the output size, then downsample (anti-aliasing)


def image_seed(seed: int, domain: str, split: str, index: int) -> int:
    """A stable 64-bit seed for one image, independent of how many images are rendered."""
    digest = hashlib.sha256(f"{seed}/{domain}/{split}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    """An 8-bit RGB colour from hue (wrapped to [0, 1)), saturation and value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


def mix(a, b, w: float) -> tuple[int, int, int]:
    """The colour ``w`` of the way from ``a`` to ``b``."""
    return tuple(int(round((1 - w) * x + w * y)) for x, y in zip(a, b))


def darker(c, f: float = 0.7) -> tuple[int, int, int]:
    """``c`` with every channel scaled by ``f``."""
    return tuple(int(x * f) for x in c)


def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    """A PIL bounding box from two corners in any order."""
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
