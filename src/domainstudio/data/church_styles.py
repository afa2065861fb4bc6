"""How each domain of the churches world draws a laid-out church: colours in the source domain, a haunted night, or
a landscape drawing (ink over watercolour washes on paper). Each painter returns the supersampled canvas."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

from domainstudio.data.church_layout import GROUND_Y, Part, Scene, arc
from domainstudio.data.drawing import PAPER, box, darker, mix

WALL_COLOURS = [(178, 176, 170), (218, 194, 144), (240, 236, 226), (170, 80, 60), (206, 154, 76), (150, 168, 188)]
ROOF_COLOURS = [(70, 74, 88), (176, 62, 42), (84, 156, 134), (112, 76, 46), (48, 60, 120)]
GROUND_COLOURS = [(88, 150, 68), (176, 164, 90), (134, 102, 70), (228, 232, 238)]
# Sky gradients (top, horizon) per time of day; the haunted night keeps the time of day as a tint.
SKY_GRADIENTS = {"day": ((80, 142, 222), (188, 218, 244)), "dusk": ((60, 56, 124), (248, 150, 88)),
                 "overcast": ((144, 150, 162), (208, 208, 212)), "dawn": ((148, 136, 202), (252, 206, 170))}
NIGHT_GRADIENTS = {"day": ((16, 18, 28), (44, 48, 60)), "dusk": ((24, 18, 24), (60, 46, 50)),
                   "overcast": ((18, 20, 20), (52, 54, 54)), "dawn": ((22, 20, 32), (56, 50, 64))}
INK = (70, 50, 38)  # the landscape drawings' sepia


def _gradient(size: int, top, bottom, y0: float, y1: float) -> np.ndarray:
    """A vertical colour gradient over the whole canvas, from ``top`` at y0 to ``bottom`` at y1 (unit heights)."""
    t = np.clip((np.arange(size) / size - y0) / (y1 - y0), 0, 1)[:, None, None]
    col = (1 - t) * np.array(top, float) + t * np.array(bottom, float)
    return np.broadcast_to(col, (size, size, 3)).copy()


def _px(points, S: int):
    """Unit coordinates -> canvas pixels."""
    return [(x * S, y * S) for x, y in points]


def _grey(c):
    """The grey of the same luma."""
    g = int(0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2])
    return (g, g, g)


class _Palette:
    """The colours of one church in one domain."""

    def __init__(self, domain: str, f: dict):
        wall, roof = WALL_COLOURS[f["wall_colour"]], ROOF_COLOURS[f["roof_colour"]]
        ground, sky = GROUND_COLOURS[f["ground_colour"]], SKY_GRADIENTS[f["sky"]]
        self.glass, self.door = (46, 56, 78), (84, 52, 32)
        self.crown, self.trunk = (48, 100, 50), (92, 64, 40)
        if domain == "haunted":  # desaturated and dark
            wall = mix(darker(mix(wall, _grey(wall), 0.75), 0.5), (96, 104, 120), 0.45)  # moonlit
            roof = darker(mix(roof, _grey(roof), 0.7), 0.32)
            ground = darker(mix(ground, _grey(ground), 0.7), 0.28)
            sky = NIGHT_GRADIENTS[f["sky"]]
            self.glass, self.door, self.trunk = (12, 10, 14), (14, 10, 10), (16, 14, 18)
        if domain == "landscapes":  # pale washes of the same colours
            wall, roof = mix(mix(wall, _grey(wall), 0.4), PAPER, 0.55), mix(mix(roof, _grey(roof), 0.4), PAPER, 0.45)
            ground = mix(mix(ground, _grey(ground), 0.35), PAPER, 0.55)
            sky = tuple(mix(mix(c, _grey(c), 0.4), PAPER, 0.7) for c in sky)
            self.glass, self.door = mix(INK, PAPER, 0.3), mix(INK, PAPER, 0.4)
            self.crown, self.trunk = mix((90, 130, 80), PAPER, 0.45), INK
        self.wall, self.roof, self.ground, self.sky = wall, roof, ground, sky

    def of(self, role: str):
        return {"roof": self.roof, "spire": self.roof, "wall": self.wall, "tower": darker(self.wall, 0.93),
                "window": self.glass, "door": self.door}[role]


def _blotches(rng: np.random.Generator, cells: int, S: int) -> np.ndarray:
    """Smooth random values in [0, 1] over the canvas: a ``cells`` x ``cells`` grid of noise, upsampled bicubically."""
    low = rng.normal(0, 1, (cells, cells))
    low = ((low - low.min()) / (np.ptp(low) + 1e-9) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(low).resize((S, S), Image.BICUBIC), float) / 255


def _background(p: _Palette, S: int) -> np.ndarray:
    """Sky gradient above the ground line, the ground darkening towards the bottom."""
    sky = _gradient(S, p.sky[0], p.sky[1], 0.0, GROUND_Y)
    ground = _gradient(S, p.ground, darker(p.ground, 0.8), GROUND_Y, 1.0)
    rows = (np.arange(S) / S >= GROUND_Y)[:, None, None]
    return np.where(rows, ground, sky)


def _leafy_tree(d: ImageDraw.ImageDraw, x: float, h: float, p: _Palette, S: int):
    """A trunk and a crown of three round clumps."""
    base = GROUND_Y * S
    d.rectangle(box((x - 0.012) * S, base - h * 0.45 * S, (x + 0.012) * S, base + 0.01 * S), fill=p.trunk)
    r = h * 0.3 * S
    for dx, dy in ((0, -0.62), (-0.45, -0.42), (0.45, -0.42)):
        cx, cy = x * S + dx * r, base + dy * h * S
        d.ellipse(box(cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8), fill=p.crown)


def _bare_tree(d: ImageDraw.ImageDraw, x: float, h: float, colour, S: int, rng: np.random.Generator):
    """A leafless tree: a trunk that forks into thinning, twisting branches."""
    def branch(x0, y0, angle, length, width, depth):
        x1, y1 = x0 + math.cos(angle) * length, y0 - math.sin(angle) * length
        d.line([x0, y0, x1, y1], fill=colour, width=max(1, int(width)))
        if depth:
            for turn in (-1, 1):
                branch(x1, y1, angle + turn * rng.uniform(0.35, 0.75), length * rng.uniform(0.6, 0.75), width * 0.62, depth - 1)

    branch(x * S, GROUND_Y * S + 0.01 * S, math.pi / 2 + rng.uniform(-0.12, 0.12), h * 0.5 * S, 0.04 * S, 4)


def _paint_building(d: ImageDraw.ImageDraw, parts, p: _Palette, S: int, outline: float):
    """Every part filled with its colour and outlined in a darker shade of it."""
    for part in parts:
        colour = p.of(part.role)
        d.polygon(_px(part.points, S), fill=colour, outline=darker(colour, outline), width=max(1, int(0.006 * S)))


def _crosses(d: ImageDraw.ImageDraw, parts, size: float, colour, S: int, lw: int):
    """A cross on the tip of every spire."""
    for x, y in (part.points[1] for part in parts if part.role == "spire"):
        c = 0.035 * size
        d.line([x * S, y * S, x * S, (y - c) * S], fill=colour, width=lw)
        d.line([(x - c * 0.35) * S, (y - c * 0.7) * S, (x + c * 0.35) * S, (y - c * 0.7) * S], fill=colour, width=lw)


def paint_source(f: dict, scene: Scene, S: int) -> Image.Image:
    """The source domain: a church in colour under the sky of its time of day."""
    p = _Palette("source", f)
    canvas = Image.fromarray(_background(p, S).astype(np.uint8))
    d = ImageDraw.Draw(canvas)
    for x, h in scene.trees:
        _leafy_tree(d, x, h, p, S)
    _paint_building(d, scene.parts, p, S, 0.62)
    _crosses(d, scene.parts, scene.scale, darker(p.roof, 0.6), S, max(1, int(0.012 * S)))
    return canvas


def _crooked(parts, rng: np.random.Generator):
    """Lean the body and each tower by its own shear about the ground line, and sag and jag the roofs."""
    leans = {g: rng.uniform(0.05, 0.12) * rng.choice([-1, 1]) for g in range(3)}
    out = []
    for part in parts:
        k = leans[part.group]
        pts = [(x + k * (GROUND_Y - y), y) for x, y in part.points]
        if part.role in ("roof", "spire"):
            pts = [(x + rng.normal(0, 0.006), y + abs(rng.normal(0, 0.01))) for x, y in pts]
        out.append(Part(part.role, pts, part.group))
    return out


def paint_haunted(f: dict, scene: Scene, S: int, rng: np.random.Generator) -> Image.Image:
    """A haunted house: moonlit grey walls leaning in a dark, desaturated night, broken panes and one glowing window,
    bare trees, fog over the ground and a vignette."""
    p = _Palette("haunted", f)
    arr = _background(p, S)
    # The moon, on the side away from the building, with a halo.
    mx, my, r = (0.8 if scene.centre < 0.5 else 0.2) * S, 0.16 * S, 0.075 * S
    yy, xx = np.mgrid[0:S, 0:S]
    dist = np.hypot(xx - mx, yy - my) / r
    halo = np.clip(1.6 - dist, 0, 1)[..., None] ** 2 * 0.35
    arr = arr * (1 - halo) + np.array([200, 204, 190]) * halo
    arr = np.where((dist <= 1)[..., None], np.array([236, 232, 206], float), arr)
    canvas = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(canvas)
    for x, h in scene.trees:
        _bare_tree(d, x, h, p.trunk, S, rng)
    parts = _crooked(scene.parts, rng)
    _paint_building(d, parts, p, S, 0.7)
    _crosses(d, parts, scene.scale, p.trunk, S, max(1, int(0.012 * S)))
    # Broken windows: jagged pale shards in the dark panes; one window glows.
    windows = [part for part in parts if part.role == "window"]
    for part in windows:
        xs, ys = [x for x, _ in part.points], [y for _, y in part.points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        shard = [(x0, y0 + (y1 - y0) * rng.uniform(0.1, 0.4)), (x0 + (x1 - x0) * rng.uniform(0.4, 0.9), y0),
                 (x0 + (x1 - x0) * 0.3, y0 + (y1 - y0) * 0.3)]
        d.polygon(_px(shard, S), fill=(70, 72, 78))
    lit = windows[int(rng.integers(len(windows)))]
    glow = Image.new("L", (S, S), 0)
    ImageDraw.Draw(glow).polygon(_px(lit.points, S), fill=255)
    d.polygon(_px(lit.points, S), fill=(255, 200, 92))
    halo = np.asarray(glow.filter(ImageFilter.GaussianBlur(0.03 * S)), float)[..., None] / 255 * 0.9
    arr = np.asarray(canvas, float)
    arr = arr + halo * (np.array([255, 170, 60]) - arr) * 0.8
    # Fog: a pale, uneven band over the ground and the building's foot, then a dark vignette.
    low = _blotches(rng, 6, S)
    band = np.exp(-((yy / S - (GROUND_Y + 0.02)) / 0.1) ** 2)
    fog = (band * (0.35 + 0.4 * low))[..., None] * 0.75
    arr = arr * (1 - fog) + np.array([150, 156, 164]) * fog
    vignette = 1 - 0.45 * np.clip(np.hypot(xx / S - 0.5, yy / S - 0.5) / 0.72, 0, 1) ** 2
    return Image.fromarray(np.clip(arr * vignette[..., None], 0, 255).astype(np.uint8))


def _wobble(points, rng: np.random.Generator, amp: float, closed: bool = True):
    """A hand-drawn version of a polyline: every edge subdivided and displaced by a smooth random offset."""
    pts = list(points) + ([points[0]] if closed else [])
    out = []
    for (x0, y0), (x1, y1) in zip(pts[:-1], pts[1:]):
        n = max(2, int(math.hypot(x1 - x0, y1 - y0) / 0.03))
        for t in np.linspace(0, 1, n, endpoint=False):
            out.append((x0 + t * (x1 - x0), y0 + t * (y1 - y0)))
    out.append(pts[-1])
    phase = rng.uniform(0, 2 * math.pi, 2)
    k = np.arange(len(out))
    dx = amp * np.sin(k * 0.9 + phase[0]) + rng.normal(0, amp * 0.3, len(out))
    dy = amp * np.sin(k * 0.7 + phase[1]) + rng.normal(0, amp * 0.3, len(out))
    return [(x + a, y + b) for (x, y), a, b in zip(out, dx, dy)]


def paint_landscape(f: dict, scene: Scene, S: int, rng: np.random.Generator) -> Image.Image:
    """A landscape drawing: soft, pale watercolour washes on paper under sepia ink lines, hatched roofs, hills."""
    p = _Palette("landscapes", f)
    # Watercolour washes, loosely registered and blurred, multiplied onto the paper: a graded sky, distant hills,
    # the ground, the trees and the building.
    wash = Image.new("RGB", (S, S), (255, 255, 255))
    w = ImageDraw.Draw(wash)
    phase = rng.uniform(0, 2 * math.pi, 2)
    hills = [(x, GROUND_Y - 0.1 - 0.05 * math.sin(x * 4 + phase[0]) - 0.03 * math.sin(x * 9 + phase[1]))
             for x in np.linspace(0, 1, 24)]
    w.polygon(_px([*hills, (1, GROUND_Y), (0, GROUND_Y)], S), fill=mix(p.ground, (255, 255, 255), 0.45))
    w.rectangle(box(0, (GROUND_Y - 0.01) * S, S, S), fill=p.ground)
    for x, h in scene.trees:
        _leafy_tree(w, x, h, p, S)
    shift = rng.uniform(-0.012, 0.012, 2)
    for part in scene.parts:
        w.polygon(_px([(x + shift[0], y + shift[1]) for x, y in part.points], S), fill=p.of(part.role))
    wash = np.asarray(wash.filter(ImageFilter.GaussianBlur(0.012 * S)), float) / 255
    fade = np.clip(1 - np.arange(S) / S / 0.5, 0, 1)[:, None, None] ** 0.8  # the sky wash thins out towards the hills
    sky = 1 - (1 - np.array(p.sky[0], float) / 255) * fade
    low = _blotches(rng, 8, S)
    pigment = 1 - (1 - wash * sky) * (0.75 + 0.5 * low[..., None])
    grain = np.asarray(Image.fromarray(rng.normal(128, 20, (S, S)).clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1)), float) - 128
    paper = np.array(PAPER, float) + grain[..., None] * 0.25
    canvas = Image.fromarray(np.clip(paper * pigment, 0, 255).astype(np.uint8))

    # Ink: the horizon, grass strokes, every outline, hatching on the roofs, the trees.
    d = ImageDraw.Draw(canvas)
    lw = max(2, int(0.018 * S))
    amp = 0.002
    d.line(_px(_wobble([(0, GROUND_Y), (1, GROUND_Y)], rng, amp, closed=False), S), fill=INK, width=max(1, lw - 1), joint="curve")
    d.line(_px(_wobble(hills, rng, amp, closed=False), S), fill=mix(INK, PAPER, 0.45), width=max(1, lw // 2), joint="curve")
    for x in rng.uniform(0.02, 0.98, 7):
        y = rng.uniform(GROUND_Y + 0.04, 0.97)
        d.line(_px([(x, y), (x + 0.02, y - 0.02), (x + 0.035, y)], S), fill=INK, width=max(1, lw - 1))
    for x, h in scene.trees:
        base, r = GROUND_Y, h * 0.3
        d.line(_px([(x, base), (x, base - h * 0.45)], S), fill=INK, width=lw)
        for dx, dy in ((0, -0.62), (-0.45, -0.42), (0.45, -0.42)):
            crown = arc(x + dx * r, base + dy * h, r * 0.8, r * 0.8, 0, 330, 12)
            d.line(_px(_wobble(crown, rng, amp, closed=False), S), fill=INK, width=max(1, lw - 1), joint="curve")
    hatch = Image.new("L", (S, S), 0)
    hd = ImageDraw.Draw(hatch)
    for c in np.arange(-1, 1, 0.05):
        hd.line([c * S, S, (c + 1) * S, 0], fill=255, width=max(1, lw // 2))
    washed = canvas.copy()
    for part in scene.parts:  # in drawing order: each shape hides the ink of those behind it
        inside = Image.new("L", (S, S), 0)
        ImageDraw.Draw(inside).polygon(_px(part.points, S), fill=255)
        canvas.paste(washed, mask=inside)
        if part.role in ("roof", "spire"):
            canvas.paste(INK, mask=ImageChops.multiply(hatch, inside))
        d.line(_px(_wobble(part.points, rng, amp), S), fill=INK, width=lw, joint="curve")
    _crosses(d, scene.parts, scene.scale, INK, S, max(1, lw - 1))
    return canvas.filter(ImageFilter.GaussianBlur(0.4))
