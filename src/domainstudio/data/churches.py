"""The embedded benchmark world "churches": a procedural church renderer.

A source domain of churches in colour with independent factors of variation (body, roof, towers, spire, windows,
door, colours, sky, ground, trees, position, scale), and two target domains that keep those factors but change the
style, mirroring the paper's LSUN Church adaptations: ``haunted`` (haunted houses: a dark, desaturated night with a
moon, crooked walls, broken windows and one glowing, bare trees, fog) and ``landscapes`` (landscape drawings: sepia
ink lines over soft watercolour washes on paper). Every image is drawn from its factor record alone, so the records
are ground truth for diversity. Rendering is deterministic: image ``i`` of a split depends only on
``(seed, domain, split, i)``. The building's shapes are laid out once (church_layout.py) and each domain draws
them in its own way (church_styles.py).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from domainstudio.data import church_styles
from domainstudio.data.church_layout import layout
from domainstudio.data.church_styles import GROUND_COLOURS, ROOF_COLOURS, SKY_GRADIENTS, WALL_COLOURS
from domainstudio.data.drawing import SUPERSAMPLE, image_seed

SOURCE = "source"
TARGET_DOMAINS = ("haunted", "landscapes")
DOMAINS = (SOURCE, *TARGET_DOMAINS)
HELD_OUT_DOMAINS = ()  # none: every target domain is in the default metric backbone (faces.py has one)

ROOFS = ("gable", "steep", "flat", "dome", "mansard")
WINDOW_SHAPES = ("square", "arched", "pointed", "round")
DOORS = ("square", "arched", "pointed")
SKIES = tuple(SKY_GRADIENTS)  # the time of day
TREES = ("none", "left", "right", "both")


def sample_factors(rng: np.random.Generator) -> dict:
    """Draw one church's factors of variation, independently of each other."""
    return {
        "body_width": float(rng.uniform(0.36, 0.54)),
        "body_height": float(rng.uniform(0.20, 0.32)),
        "roof": ROOFS[rng.integers(len(ROOFS))],
        "towers": int(rng.integers(3)),
        "tower_height": float(rng.uniform(0.10, 0.24)),  # tower top above the eaves (a bell-cote's, without towers)
        "spire": int(rng.integers(2)),  # towers end in a spire (1) or battlements (0)
        "windows": int(rng.integers(1, 5)),
        "window_shape": WINDOW_SHAPES[rng.integers(len(WINDOW_SHAPES))],
        "door": DOORS[rng.integers(len(DOORS))],
        "wall_colour": int(rng.integers(len(WALL_COLOURS))),
        "roof_colour": int(rng.integers(len(ROOF_COLOURS))),
        "sky": SKIES[rng.integers(len(SKIES))],
        "ground_colour": int(rng.integers(len(GROUND_COLOURS))),
        "trees": TREES[rng.integers(len(TREES))],
        "offset_x": float(rng.uniform(-0.10, 0.10)),
        "scale": float(rng.uniform(0.90, 1.20)),
    }


FACTOR_NAMES = tuple(sample_factors(np.random.default_rng(0)))
# Each factor's levels (categorical factors) or None (continuous): what the metric backbone's heads predict.
FACTOR_LEVELS = {
    "roof": ROOFS, "towers": (0, 1, 2), "spire": (0, 1), "windows": (1, 2, 3, 4), "window_shape": WINDOW_SHAPES,
    "door": DOORS, "wall_colour": tuple(range(len(WALL_COLOURS))), "roof_colour": tuple(range(len(ROOF_COLOURS))),
    "sky": SKIES, "ground_colour": tuple(range(len(GROUND_COLOURS))), "trees": TREES,
}
FACTOR_LEVELS = {name: FACTOR_LEVELS.get(name) for name in FACTOR_NAMES}


def render_church(f: dict, domain: str, size: int, rng: np.random.Generator) -> Image.Image:
    """Render one church with factors ``f`` in ``domain`` as a ``size`` x ``size`` RGB image."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown churches domain {domain!r}; expected one of {DOMAINS}")
    S = size * SUPERSAMPLE
    scene = layout(f)
    if domain == "haunted":
        canvas = church_styles.paint_haunted(f, scene, S, rng)
    elif domain == "landscapes":
        canvas = church_styles.paint_landscape(f, scene, S, rng)
    else:
        canvas = church_styles.paint_source(f, scene, S)
    return canvas.resize((size, size), Image.LANCZOS)


def render(domain: str, split: str, index: int, size: int, seed: int) -> tuple[Image.Image, dict]:
    """Image ``index`` of ``split`` in ``domain``, with its factor record."""
    rng = np.random.default_rng(image_seed(seed, domain, split, index))
    factors = sample_factors(rng)
    return render_church(factors, domain, size, rng), factors
