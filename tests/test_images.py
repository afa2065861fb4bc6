"""Bad input to the data stage: a clear error naming the file, or a documented conversion."""
import numpy as np
import pytest
from PIL import Image

from domainstudio.data.images import ImageDataError, load_image_folder


def _save(folder, name, arr, mode=None):
    folder.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr) if mode is None else Image.fromarray(arr, mode)
    im.save(folder / name)
    return folder / name


def _rgb(rng, size=16):
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ImageDataError, match="does not exist"):
        load_image_folder(tmp_path / "nope", 16)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ImageDataError, match="contains no images"):
        load_image_folder(tmp_path / "empty", 16)


def test_fewer_images_than_shots(tmp_path, rng):
    for i in range(3):
        _save(tmp_path / "k", f"{i}.png", _rgb(rng))
    with pytest.raises(ImageDataError, match="has 3 images but 5 are needed"):
        load_image_folder(tmp_path / "k", 16, count=5)
    assert load_image_folder(tmp_path / "k", 16, count=2).shape == (2, 16, 16, 3)


def test_corrupt_and_truncated_files_are_named(tmp_path, rng):
    good = _save(tmp_path / "a", "good.png", _rgb(rng, 64))
    (tmp_path / "a" / "junk.png").write_bytes(b"this is not a png")
    with pytest.raises(ImageDataError, match="junk.png"):
        load_image_folder(tmp_path / "a", 16)
    data = good.read_bytes()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDataError, match="cut.png"):
        load_image_folder(tmp_path / "b", 16)


def test_documented_conversions(tmp_path, rng):
    folder = tmp_path / "mixed"
    gray = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    _save(folder, "0_gray.png", gray)
    rgba = np.dstack([_rgb(rng), np.zeros((16, 16), np.uint8)])  # fully transparent -> white
    _save(folder, "1_rgba.png", rgba)
    deep = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257)
    Image.fromarray(deep).save(folder / "2_16bit.png")
    _save(folder, "3_large.png", _rgb(rng, 48))  # other square size -> resized
    images = load_image_folder(folder, 16)
    assert images.shape == (4, 16, 16, 3) and images.dtype == np.uint8
    assert np.array_equal(images[0][..., 0], gray) and np.array_equal(images[0][..., 2], gray)
    assert (images[1] == 255).all()
    assert np.array_equal(images[2][..., 0], np.arange(256).reshape(16, 16).astype(np.uint8))


def test_non_square_images_are_refused_with_their_name(tmp_path, rng):
    _save(tmp_path / "c", "ok.png", _rgb(rng))
    _save(tmp_path / "c", "wide.png", rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    with pytest.raises(ImageDataError, match=r"wide.png: image is 24x16"):
        load_image_folder(tmp_path / "c", 16)
