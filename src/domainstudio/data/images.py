"""Image folders in and out: validation before any compute, documented conversions.

Accepted: PNG, JPEG, WebP and BMP files, sorted by file name. Conversions (docs/workflow.md):
grayscale is replicated to RGB; transparency (RGBA, LA, palette with alpha) is composited onto white;
16-bit and 32-bit integer images are scaled to 8 bits; square images of another size are resized to the
model resolution with a Lanczos filter. Refused, with the file named: unreadable, corrupt or truncated
files, and non-square images (cropping would silently change the content).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class ImageDataError(ValueError):
    """Bad input data; the message names the file or folder."""


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageDataError(f"image folder {folder} does not exist (or is not a folder)")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ImageDataError(f"image folder {folder} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _to_rgb8(im: Image.Image, path: Path) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        scale = 65535.0 if arr.max() > 255 or im.mode.startswith("I;16") else 255.0
        im = Image.fromarray(np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif im.mode == "F":
        raise ImageDataError(f"{path}: floating-point images are not supported; save it as 8- or 16-bit PNG")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return im.convert("RGB")


def read_image(path: str | Path, resolution: int) -> np.ndarray:
    """One image as uint8 HxWx3 at ``resolution``, or a clear ImageDataError naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.width != im.height:
                raise ImageDataError(f"{path}: image is {im.width}x{im.height}; images must be square (crop them first)")
            im = _to_rgb8(im, path)
    except ImageDataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageDataError(f"{path}: cannot read image (corrupt or truncated?): {err}") from err
    if im.size != (resolution, resolution):
        im = im.resize((resolution, resolution), Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


def load_image_folder(folder: str | Path, resolution: int, count: int | None = None) -> np.ndarray:
    """The first ``count`` images of ``folder`` (all when None) as uint8 array N x H x W x 3.

    Every file is checked before the array is returned, so training never starts on bad data.
    """
    files = list_images(folder)
    if count is not None:
        if len(files) < count:
            raise ImageDataError(f"image folder {folder} has {len(files)} images but {count} are needed")
        files = files[:count]
    return np.stack([read_image(p, resolution) for p in files])


def save_images(images: np.ndarray, folder: str | Path, start: int = 0) -> list[Path]:
    """Save uint8 N x H x W x 3 images as numbered PNGs."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, arr in enumerate(images, start=start):
        p = folder / f"{i:06d}.png"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths


def image_grid(images: np.ndarray, columns: int = 8, scale: int = 1) -> Image.Image:
    """Tile uint8 N x H x W x 3 images into one picture (scaled up with nearest neighbour)."""
    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    grid = np.full((rows * h, columns * w, 3), 255, dtype=np.uint8)
    for i, arr in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = arr
    im = Image.fromarray(grid)
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def _thumbnails(images: np.ndarray, size: int) -> np.ndarray:
    """Images larger than ``size`` px shrunk (Lanczos) for a grid (64 images at 512 px would be 4096 px wide)."""
    if images.shape[1] <= size:
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.LANCZOS)) for im in images])


def write_sample_folder(images: np.ndarray, record: dict, out: str | Path, thumbnail: int = 128) -> None:
    """A sampling step's output, atomically: ``images/*.png``, ``grid.png`` (the first 64, at least 64 px each)
    and ``sampling.json`` (``record``). Every family (diffusion, GAN, text-to-image) writes this layout."""
    import json

    from domainstudio.atomic import atomic_dir

    with atomic_dir(out) as tmp:
        save_images(images, tmp / "images")
        grid = _thumbnails(images[:64], thumbnail)
        image_grid(grid, columns=8, scale=max(1, 64 // grid.shape[1])).save(tmp / "grid.png")
        (tmp / "sampling.json").write_text(json.dumps(record, indent=2))
