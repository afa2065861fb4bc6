"""The churches world's geometry: one building and its trees laid out from a factor record, the same in every domain.

Shapes are polygons in unit coordinates (x right, y down, the ground line at ``GROUND_Y``) so that a domain can
redraw them (outline them, lean them) without changing where they are.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

GROUND_Y = 0.86  # the horizon, in units of the image height


class Part(NamedTuple):
    """One shape of the building in unit coordinates (x right, y down). ``group``: what it leans with (0: the body,
    i: tower i) when a domain makes the building crooked."""
    role: str  # roof, wall, tower, spire, window, door
    points: list[tuple[float, float]]
    group: int = 0


class Scene(NamedTuple):
    """Everything a domain draws of one church."""
    parts: list[Part]  # in drawing order
    trees: list[tuple[float, float]]  # (x, height) of each tree, standing on the ground line
    centre: float  # the building's centre line
    scale: float  # the scale factor (sizes the crosses on the spires)


def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def arc(cx, cy, rx, ry, a0, a1, n=10):
    """Points of an ellipse arc from angle a0 to a1 (degrees, 0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in np.linspace(a0, a1, n)]


def _opening(shape: str, cx: float, top: float, bottom: float, width: float):
    """A window or door outline: square, arched (round top), pointed (gothic) or round (a rose window)."""
    x0, x1 = cx - width / 2, cx + width / 2
    if shape == "round":
        r = min(width * 0.65, (bottom - top) / 2)
        return arc(cx, (top + bottom) / 2, r, r, 0, 360, 16)[:-1]
    if shape == "arched":
        return [(x0, bottom), *arc(cx, top + width / 2, width / 2, width / 2, 180, 360), (x1, bottom)]
    if shape == "pointed":
        return [(x0, bottom), (x0, top + width * 0.6), (cx, top), (x1, top + width * 0.6), (x1, bottom)]
    return _rect(x0, top, x1, bottom)


def _roof(kind: str, x0: float, x1: float, top: float, eave: float):
    """The main roof over a body from x0 to x1 whose walls end at ``top``; returns (polygon, apex height)."""
    w, cx = x1 - x0, (x0 + x1) / 2
    a, b = x0 - eave, x1 + eave
    if kind in ("gable", "steep"):
        rise = w * (0.32 if kind == "gable" else 0.58)
        return [(a, top), (cx, top - rise), (b, top)], top - rise
    if kind == "flat":
        return _rect(a, top - w * 0.08, b, top), top - w * 0.08
    if kind == "dome":
        r = w * 0.36
        return [(a, top), (a, top - w * 0.06), *arc(cx, top - w * 0.06, r, r * 1.05, 180, 360, 14),
                (b, top - w * 0.06), (b, top)], top - w * 0.06 - r * 1.05
    # mansard: a steep lower slope and a shallow top
    return [(a, top), (x0 + w * 0.05, top - w * 0.24), (x0 + w * 0.2, top - w * 0.3), (x1 - w * 0.2, top - w * 0.3),
            (x1 - w * 0.05, top - w * 0.24), (b, top)], top - w * 0.3


def _tower(x0: float, x1: float, bottom: float, top: float, spire: bool, s: float, group: int):
    """A tower's wall, its spire or battlements, and a belfry opening."""
    w, cx = x1 - x0, (x0 + x1) / 2
    if spire:
        wall = _rect(x0, top, x1, bottom)
        cap = [Part("spire", [(x0 - 0.012 * s, top), (cx, top - w * 1.35), (x1 + 0.012 * s, top)], group)]
    else:  # three merlons on a parapet a little wider than the tower
        m, p = 0.035 * s, 0.01 * s
        xs = np.linspace(x0 - p, x1 + p, 6)
        merlons = [pt for i in range(0, 6, 2) for pt in ((xs[i], top), (xs[i], top - m), (xs[i + 1], top - m), (xs[i + 1], top))]
        wall = [(x0, bottom), (x0, top + 0.02 * s), (x0 - p, top + 0.02 * s), *merlons, (x1 + p, top + 0.02 * s),
                (x1, top + 0.02 * s), (x1, bottom)]
        cap = []
    belfry = Part("window", _opening("arched", cx, top + 0.03 * s, top + 0.03 * s + w * 0.9, w * 0.42), group)
    return [Part("tower", wall, group), *cap, belfry]


def layout(f: dict) -> Scene:
    """The building's shapes and the trees from the factors alone (the same in every domain)."""
    s = f["scale"]
    cx = 0.5 + f["offset_x"]
    w, h = f["body_width"] * s, f["body_height"] * s
    x0, x1, bottom = cx - w / 2, cx + w / 2, GROUND_Y
    top = bottom - h
    roof, apex = _roof(f["roof"], x0, x1, top, 0.015 * s)
    parts = [Part("roof", roof), Part("wall", _rect(x0, top, x1, bottom))]
    tw = 0.11 * s
    tower_top = top - f["tower_height"] * s
    spans = [(x0, x1)]  # where the body's windows go
    if f["towers"] == 1:  # a front tower on the centre line, over the door, above the roof
        t0, t1 = cx - tw / 2, cx + tw / 2
        tower_top = min(tower_top, apex - 0.05 * s)
        parts += _tower(t0, t1, bottom, tower_top, f["spire"], s, 1)
        spans = [(x0, t0), (t1, x1)]
    elif f["towers"] == 2:  # a twin-towered front
        for i, (t0, t1) in enumerate([(x0 - 0.3 * tw, x0 + 0.7 * tw), (x1 - 0.7 * tw, x1 + 0.3 * tw)]):
            parts += _tower(t0, t1, bottom, tower_top, f["spire"], s, i + 1)
        spans = [(x0 + 0.7 * tw, x1 - 0.7 * tw)]
    elif f["spire"]:  # no tower: a bell-cote with its spire on the roof
        bw = 0.06 * s
        cote_top = apex - f["tower_height"] * s * 0.35
        parts += [Part("tower", _rect(cx - bw / 2, cote_top, cx + bw / 2, apex + 0.03 * s)),
                  Part("spire", [(cx - bw / 2 - 0.008 * s, cote_top), (cx, cote_top - bw * 1.8), (cx + bw / 2 + 0.008 * s, cote_top)])]

    # Windows in a row across the front between the towers (with a front tower: one over its door when their number
    # is odd, the others shared by its two sides), then the door.
    n = f["windows"]
    if f["towers"] == 1:
        side = n // 2
        centres = ([(cx, 1)] if n % 2 else []) + [(a + (i + 0.5) * (b - a) / side, 0) for a, b in spans for i in range(side)]
        bay = (spans[0][1] - spans[0][0]) / max(side, 1)
    else:
        (a, b), = spans
        centres, bay = [(a + (i + 0.5) * (b - a) / n, 0) for i in range(n)], (b - a) / n
    for c, group in centres:
        parts.append(Part("window", _opening(f["window_shape"], c, top + 0.16 * h, top + 0.5 * h, min(0.06 * s, 0.5 * bay)), group))
    dw = 0.09 * s if f["towers"] != 1 else 0.7 * tw
    parts.append(Part("door", _opening(f["door"], cx, bottom - 0.45 * h, bottom, dw), 1 if f["towers"] == 1 else 0))

    trees = []
    reach = (w / 2 + (0.3 * tw if f["towers"] == 2 else 0)) + 0.09 * s
    for side in {"none": (), "left": (-1,), "right": (1,), "both": (-1, 1)}[f["trees"]]:
        trees.append((float(np.clip(cx + side * reach, 0.07, 0.93)), 0.26 * s))
    return Scene(parts, trees, cx, s)
