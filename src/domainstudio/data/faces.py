"""The embedded benchmark world "faces": a procedural face renderer.

A source domain of adult portraits with independent factors of variation, and target domains that keep those
factors but change the style, mirroring the paper's FFHQ adaptations: ``babies``, ``sunglasses``, ``sketches`` and
``modigliani`` (an elongated-portrait painting style). A fifth, ``photos`` (grayscale photograph-like portraits:
shaded, soft-focus, grainy), is far from the source in colour and texture and is held out of every choice of
default (config/photos.yaml).
Every image is drawn from its factor record alone, so the records are ground truth for diversity.
Rendering is deterministic: image ``i`` of a split depends only on ``(seed, domain, split, i)``.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from domainstudio.data.drawing import PAPER, SUPERSAMPLE, box, darker, hsv, image_seed, mix

SOURCE = "source"
TARGET_DOMAINS = ("babies", "sunglasses", "sketches", "modigliani", "photos")
DOMAINS = (SOURCE, *TARGET_DOMAINS)
HELD_OUT_DOMAINS = ("photos",)  # out of the main job, of every tuned default and of the released metric backbone

SKIN_TONES = [(255, 224, 196), (241, 194, 155), (224, 172, 125), (198, 134, 90), (141, 85, 54), (92, 56, 38)]
HAIR_COLOURS = [(25, 20, 18), (90, 56, 30), (214, 178, 110), (170, 70, 30), (150, 150, 150), (120, 40, 30)]
EYE_COLOURS = [(70, 45, 25), (60, 110, 170), (60, 130, 80), (110, 110, 120)]
HAIR_STYLES = ("bald", "short", "long", "bun", "curly", "side")
MOUTHS = ("neutral", "smile", "open")
BEARDS = ("none", "stubble", "full")


def sample_factors(rng: np.random.Generator) -> dict:
    """Draw one face's factors of variation, independently of each other."""
    return {
        "head_width": float(rng.uniform(0.44, 0.58)),
        "head_aspect": float(rng.uniform(1.12, 1.38)),
        "skin_tone": int(rng.integers(len(SKIN_TONES))),
        "hair_style": HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        "hair_colour": int(rng.integers(len(HAIR_COLOURS))),
        "eye_size": float(rng.uniform(0.75, 1.3)),
        "eye_spacing": float(rng.uniform(0.30, 0.42)),
        "eye_colour": int(rng.integers(len(EYE_COLOURS))),
        "mouth": MOUTHS[rng.integers(len(MOUTHS))],
        "mouth_width": float(rng.uniform(0.22, 0.40)),
        "beard": BEARDS[rng.choice(3, p=[0.6, 0.2, 0.2])],
        "background_hue": float(rng.uniform(0.0, 1.0)),
        "clothes_hue": float(rng.uniform(0.0, 1.0)),
        "offset_x": float(rng.uniform(-0.08, 0.08)),
        "offset_y": float(rng.uniform(-0.05, 0.05)),
        "tilt_deg": float(rng.uniform(-14.0, 14.0)),
        "glasses_shape": int(rng.integers(3)),  # only drawn in the sunglasses domain
    }


FACTOR_NAMES = tuple(sample_factors(np.random.default_rng(0)))
# Each factor's levels (categorical factors) or None (continuous): what the metric backbone's heads predict.
FACTOR_LEVELS = {
    "skin_tone": tuple(range(len(SKIN_TONES))), "hair_style": HAIR_STYLES, "hair_colour": tuple(range(len(HAIR_COLOURS))),
    "eye_colour": tuple(range(len(EYE_COLOURS))), "mouth": MOUTHS, "beard": BEARDS, "glasses_shape": (0, 1, 2),
}
FACTOR_LEVELS = {name: FACTOR_LEVELS.get(name) for name in FACTOR_NAMES}


class _Style:
    """How a domain changes the look while keeping the factors."""

    def __init__(self, domain: str, f: dict):
        self.domain = domain
        self.outline_only = domain == "sketches"
        skin = SKIN_TONES[f["skin_tone"]]
        hair = HAIR_COLOURS[f["hair_colour"]]
        background = hsv(f["background_hue"], 0.35, 0.85)
        clothes = hsv(f["clothes_hue"], 0.6, 0.7)
        eye = EYE_COLOURS[f["eye_colour"]]
        if domain == "babies":
            skin = mix(skin, (255, 200, 200), 0.25)
            hair = mix(hair, (230, 200, 150), 0.3)
            clothes = hsv(f["clothes_hue"], 0.3, 0.95)  # pastel
        if domain == "modigliani":
            skin = mix(skin, (215, 140, 70), 0.55)
            hair = mix(hair, (30, 25, 35), 0.6)
            background = mix(hsv(f["background_hue"], 0.55, 0.55), (120, 60, 40), 0.35)
            clothes = mix(clothes, (40, 50, 80), 0.5)
            eye = mix(eye, (40, 90, 110), 0.6)
        self.skin, self.hair, self.background, self.clothes, self.eye = skin, hair, background, clothes, eye
        self.ink = (35, 35, 35)

    def fill(self, colour):
        """Sketches fill shapes with the paper colour, so hidden strokes stay hidden."""
        return PAPER if self.outline_only else colour

    def line(self, colour):
        return self.ink if self.outline_only else colour


def render_face(f: dict, domain: str, size: int, rng: np.random.Generator) -> Image.Image:
    """Render one face with factors ``f`` in ``domain`` as a ``size`` x ``size`` RGB image."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown faces domain {domain!r}; expected one of {DOMAINS}")
    S = size * SUPERSAMPLE
    st = _Style(domain, f)
    lw = max(1, int(S * 0.018))  # stroke width for sketches and features
    canvas = Image.new("RGB", (S, S), PAPER if st.outline_only else st.background)
    layer = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)

    # Geometry in canvas units, head centred before pose is applied.
    hw, aspect = f["head_width"], f["head_aspect"]
    eye_scale, eye_y_frac, mouth_scale, neck = f["eye_size"], 0.45, 1.0, 0.20
    if domain == "babies":
        hw, aspect, eye_scale, eye_y_frac, mouth_scale, neck = hw * 1.12, 1.0 + (aspect - 1.12) * 0.35, eye_scale * 1.45, 0.56, 0.6, 0.08
    if domain == "modigliani":
        hw, aspect, eye_scale, neck = hw * 0.82, aspect * 1.32, eye_scale * 1.1, 0.34
    W, H = hw * S, hw * aspect * S
    cx, cy = S / 2, S * 0.47
    top, bottom = cy - H / 2, cy + H / 2

    # Shoulders and neck.
    d.ellipse(box(cx - 0.55 * S, bottom + 0.02 * S, cx + 0.55 * S, bottom + 0.75 * S), fill=st.fill(st.clothes), outline=st.line(None), width=lw)
    d.rectangle(box(cx - 0.12 * W * 1.6, cy, cx + 0.12 * W * 1.6, bottom + neck * S), fill=st.fill(darker(st.skin, 0.9)), outline=st.line(None), width=lw)
    # Hair behind the head.
    style = f["hair_style"]
    if domain == "babies" and style in ("long", "bun", "side"):
        style = "short"  # babies have short hair whatever the adult hair style factor says
    if style == "long":
        d.rounded_rectangle(box(cx - W * 0.62, top - 0.04 * S, cx + W * 0.62, cy + H * 0.55), radius=int(W * 0.5), fill=st.fill(st.hair), outline=st.line(None), width=lw)
    if style == "bun":
        d.ellipse(box(cx - W * 0.25, top - W * 0.38, cx + W * 0.25, top + W * 0.1), fill=st.fill(st.hair), outline=st.line(None), width=lw)
    # Head.
    d.ellipse(box(cx - W / 2, top, cx + W / 2, bottom), fill=st.fill(st.skin), outline=st.line(None), width=lw)
    # Ears.
    for sx in (-1, 1):
        ex = cx + sx * W / 2
        d.ellipse(box(ex - W * 0.08, cy - H * 0.08, ex + W * 0.08, cy + H * 0.12), fill=st.fill(darker(st.skin, 0.92)), outline=st.line(None), width=lw)
    # Hair on top.
    if style == "short" and domain != "babies":
        d.chord(box(cx - W * 0.53, top - H * 0.06, cx + W * 0.53, top + H * 0.55), 180, 360, fill=st.fill(st.hair), outline=st.line(None), width=lw)
    elif style == "short":  # a baby's wisp
        d.chord(box(cx - W * 0.3, top - H * 0.02, cx + W * 0.3, top + H * 0.22), 180, 360, fill=st.fill(st.hair), outline=st.line(None), width=lw)
    elif style in ("long", "bun"):
        d.chord(box(cx - W * 0.52, top - H * 0.03, cx + W * 0.52, top + H * 0.45), 180, 360, fill=st.fill(st.hair), outline=st.line(None), width=lw)
    elif style == "curly":
        for k in range(7):
            a = math.pi * (1 + k / 6)
            px, py = cx + math.cos(a) * W * 0.45, top + H * 0.2 + math.sin(a) * H * 0.22
            r = W * (0.12 if domain != "babies" else 0.07)
            d.ellipse(box(px - r, py - r, px + r, py + r), fill=st.fill(st.hair), outline=st.line(None), width=lw)
    elif style == "side":
        d.pieslice(box(cx - W * 0.55, top - H * 0.05, cx + W * 0.55, top + H * 0.6), 180, 300, fill=st.fill(st.hair), outline=st.line(None), width=lw)
        d.chord(box(cx - W * 0.5, top - H * 0.04, cx + W * 0.5, top + H * 0.3), 180, 360, fill=st.fill(st.hair), outline=st.line(None), width=lw)

    # Eyes.
    ey = top + H * eye_y_frac
    er = W * 0.085 * eye_scale
    spacing = W * f["eye_spacing"]
    for sx in (-1, 1):
        ex = cx + sx * spacing
        if domain == "modigliani":  # almond eyes filled with one flat colour, no pupils
            d.ellipse(box(ex - er * 1.3, ey - er * 0.55, ex + er * 1.3, ey + er * 0.55), fill=st.eye)
            continue
        d.ellipse(box(ex - er * 1.2, ey - er * 0.8, ex + er * 1.2, ey + er * 0.8), fill=st.fill((250, 250, 250)), outline=st.line(None), width=lw)
        d.ellipse(box(ex - er * 0.6, ey - er * 0.6, ex + er * 0.6, ey + er * 0.6), fill=st.eye if not st.outline_only else st.ink)
        if domain != "babies":  # eyebrows
            d.line([ex - er * 1.3, ey - er * 1.7, ex + er * 1.3, ey - er * 1.9 + sx * 0], fill=darker(st.hair, 0.8) if not st.outline_only else st.ink, width=lw)
    if domain == "babies" and not st.outline_only:  # rosy cheeks
        for sx in (-1, 1):
            bx, by, r = cx + sx * W * 0.3, ey + H * 0.17, W * 0.09
            d.ellipse(box(bx - r, by - r, bx + r, by + r), fill=mix(st.skin, (240, 120, 130), 0.45))
    if domain == "sunglasses":
        shape = f["glasses_shape"]
        lens = (20, 20, 25)
        gr = er * 1.85
        for sx in (-1, 1):
            ex = cx + sx * spacing
            b = box(ex - gr * 1.1, ey - gr * 0.75, ex + gr * 1.1, ey + gr * 0.75)
            if shape == 0:
                d.ellipse(b, fill=lens, outline=(60, 60, 60), width=lw)
            elif shape == 1:
                d.rounded_rectangle(b, radius=int(gr * 0.3), fill=lens, outline=(60, 60, 60), width=lw)
            else:
                d.polygon([(b[0], b[1]), (b[2], b[1]), (b[2] - gr * 0.3, b[3]), (b[0] + gr * 0.3, b[3])], fill=lens)
        d.line([cx - spacing + gr, ey - gr * 0.2, cx + spacing - gr, ey - gr * 0.2], fill=(40, 40, 40), width=lw)
        for sx in (-1, 1):
            d.line([cx + sx * (spacing + gr * 1.1), ey - gr * 0.3, cx + sx * W * 0.5, ey - gr * 0.5], fill=(40, 40, 40), width=lw)

    # Nose.
    ny = top + H * (0.62 if domain != "babies" else 0.68)
    nl = H * (0.10 if domain != "modigliani" else 0.16) * (0.6 if domain == "babies" else 1.0)
    d.line([cx, ny - nl, cx + W * 0.04, ny, cx - W * 0.03, ny + W * 0.02], fill=darker(st.skin, 0.7) if not st.outline_only else st.ink, width=lw)
    # Mouth.
    my = top + H * (0.78 if domain != "babies" else 0.8)
    mw = W * f["mouth_width"] * mouth_scale * (0.7 if domain == "modigliani" else 1.0)
    lip = (170, 60, 60) if not st.outline_only else st.ink
    if f["mouth"] == "smile":
        d.arc(box(cx - mw / 2, my - mw * 0.35, cx + mw / 2, my + mw * 0.3), 15, 165, fill=lip, width=lw * 2)
    elif f["mouth"] == "open":
        d.ellipse(box(cx - mw * 0.32, my - mw * 0.18, cx + mw * 0.32, my + mw * 0.22), fill=st.fill((110, 30, 40)), outline=st.line(None), width=lw)
    else:
        d.line([cx - mw / 2, my, cx + mw / 2, my], fill=lip, width=lw * 2)
    # Beard (adults only).
    if f["beard"] != "none" and domain != "babies":
        beard_colour = mix(st.hair, st.skin, 0.55 if f["beard"] == "stubble" else 0.0)
        if f["beard"] == "full":
            d.chord(box(cx - W * 0.5, cy - H * 0.1, cx + W * 0.5, bottom + H * 0.02), 15, 165, fill=st.fill(beard_colour), outline=st.line(None), width=lw)
            d.line([cx - mw / 2, my, cx + mw / 2, my], fill=lip, width=lw * 2)
        else:
            d.chord(box(cx - W * 0.45, cy, cx + W * 0.45, bottom), 20, 160, fill=st.fill(beard_colour) if not st.outline_only else None,
                    outline=None if not st.outline_only else st.ink, width=max(1, lw // 2))

    # Pose: tilt about the chin, then shift.
    layer = layer.rotate(f["tilt_deg"] * (1.6 if domain == "modigliani" else 1.0), resample=Image.BICUBIC, center=(cx, bottom))
    canvas.paste(layer, (int(f["offset_x"] * S), int(f["offset_y"] * S)), layer)

    if st.outline_only:
        canvas = canvas.convert("L")
        noise = rng.normal(0, 10, (S, S))
        arr = np.clip(np.asarray(canvas, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
        canvas = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.6)).convert("RGB")
    elif domain == "modigliani":  # brush-like texture: low-frequency colour noise
        low = rng.normal(0, 9, (S // 16, S // 16, 3))
        low = np.asarray(Image.fromarray(np.clip(low + 128, 0, 255).astype(np.uint8)).resize((S, S), Image.BICUBIC), dtype=np.float64) - 128
        arr = np.clip(np.asarray(canvas, dtype=np.float64) + low, 0, 255).astype(np.uint8)
        canvas = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(1.2))
    elif domain == "photos":
        return _photograph(canvas, size, rng)
    return canvas.resize((size, size), Image.LANCZOS)


def _photograph(canvas: Image.Image, size: int, rng: np.random.Generator) -> Image.Image:
    """A grayscale studio photograph of the drawn face: luminance, shading from a light at a random angle (relief of
    the blurred luminance plus a gradient across the frame), a vignette, soft focus, and film grain at the output's
    pixels."""
    S = canvas.size[0]
    lum = np.asarray(canvas.convert("L"), dtype=np.float64) / 255.0
    soft = np.asarray(canvas.convert("L").filter(ImageFilter.GaussianBlur(S * 0.04)), dtype=np.float64) / 255.0
    gy, gx = np.gradient(soft)
    angle = rng.uniform(0.0, 2 * math.pi)
    lx, ly = math.cos(angle), math.sin(angle)
    yy, xx = (np.mgrid[0:S, 0:S] + 0.5) / S - 0.5
    shaded = (lum + 0.07 * S * (lx * gx + ly * gy)) * (1.0 + 0.5 * (lx * xx + ly * yy)) * (1.0 - 0.9 * (xx ** 2 + yy ** 2))
    tone = np.clip(shaded, 0.0, 1.0) ** 1.15
    image = Image.fromarray((tone * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(S * 0.006))
    grain = np.asarray(image.resize((size, size), Image.LANCZOS), dtype=np.float64) + rng.normal(0.0, 5.0, (size, size))
    return Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).convert("RGB")


def render(domain: str, split: str, index: int, size: int, seed: int) -> tuple[Image.Image, dict]:
    """Image ``index`` of ``split`` in ``domain``, with its factor record."""
    rng = np.random.default_rng(image_seed(seed, domain, split, index))
    factors = sample_factors(rng)
    return render_face(factors, domain, size, rng), factors
