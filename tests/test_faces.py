"""The embedded benchmark world: deterministic, factor-driven, nested K-shot sets, distinct domains."""
import csv

import numpy as np
import pytest

from domainstudio.data import faces
from domainstudio.data.world import render_source, render_target
from tests.conftest import assert_nested_shot_sets_and_disjoint_reference


def test_rendering_is_deterministic_and_seed_dependent():
    a, fa = faces.render("babies", "train", 3, 32, seed=0)
    b, fb = faces.render("babies", "train", 3, 32, seed=0)
    c, _ = faces.render("babies", "train", 3, 32, seed=1)
    assert fa == fb
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_source_has_at_least_eight_independent_factors():
    rng = np.random.default_rng(0)
    records = [faces.sample_factors(rng) for _ in range(400)]
    varying = [name for name in faces.FACTOR_NAMES if len({r[name] for r in records}) > 1]
    assert len(varying) >= 8
    # Independence: numeric factors are drawn separately, so their correlations are near zero.
    numeric = [n for n in varying if isinstance(records[0][n], float)]
    matrix = np.corrcoef(np.array([[r[n] for n in numeric] for r in records]).T)
    off_diagonal = matrix[~np.eye(len(numeric), dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.2


@pytest.mark.parametrize("size", [32, 64])
def test_every_domain_renders_at_both_sizes_and_differs_from_source(size):
    source, factors = faces.render("source", "train", 0, size, 0)
    assert source.size == (size, size) and source.mode == "RGB"
    for domain in faces.TARGET_DOMAINS:
        img = faces.render_face(factors, domain, size, np.random.default_rng(0))
        assert img.size == (size, size)
        diff = np.abs(np.asarray(img, float) - np.asarray(source, float)).mean()
        assert diff > 2, f"{domain} looks like the source domain"  # sunglasses change only the eyes: ~3


def test_sketches_are_grayscale():
    img, _ = faces.render("sketches", "train", 0, 32, 0)
    arr = np.asarray(img).astype(int)
    assert np.abs(arr[..., 0] - arr[..., 1]).max() == 0 and np.abs(arr[..., 1] - arr[..., 2]).max() == 0


def test_unknown_domain_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown faces domain"):
        faces.render("cats", "train", 0, 32, 0)


def test_target_sets_are_nested_and_reference_is_disjoint(tmp_path):
    out = tmp_path / "sunglasses"
    render_target("faces", "sunglasses", out, [1, 5, 10], reference=12, size=32, seed=0)
    assert_nested_shot_sets_and_disjoint_reference(out)
    rows = list(csv.DictReader(open(out / "10shot" / "factors.csv")))
    assert len(rows) == 10 and set(faces.FACTOR_NAMES) <= set(rows[0])


def test_render_source_leaves_nothing_on_failure(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faces, "render", boom)
    with pytest.raises(RuntimeError):
        render_source("faces", tmp_path / "source", 5, 32, 0)
    assert list(tmp_path.iterdir()) == []


def test_photos_are_grayscale_shaded_and_keep_the_face():
    """The held-out domain: no colour, grain and shading the flat source lacks, and the same factor record's face
    (its luminance follows the source rendering of the record far more than another record's)."""
    def lum(img):
        return np.asarray(img.convert("L"), dtype=float)

    def roughness(x):  # mean absolute Laplacian: the source's flat fills have little, grain adds much
        return np.abs(4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]).mean()

    same, other, rough_source, rough_photo = [], [], [], []
    for i in range(20):
        source, f = faces.render("source", "train", i, 32, 0)
        photo = faces.render_face(f, "photos", 32, np.random.default_rng(i))
        unrelated = faces.render_face(faces.render("source", "train", 100 + i, 32, 0)[1], "photos", 32, np.random.default_rng(i))
        arr = np.asarray(photo).astype(int)
        assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
        same.append(np.corrcoef(lum(source).ravel(), lum(photo).ravel())[0, 1])
        other.append(np.corrcoef(lum(source).ravel(), lum(unrelated).ravel())[0, 1])
        rough_source.append(roughness(lum(source)))
        rough_photo.append(roughness(lum(photo)))
    assert np.mean(same) > 0.5 and np.mean(same) > np.mean(other) + 0.4
    assert np.mean(rough_photo) > 1.2 * np.mean(rough_source)


def test_rendered_faces_are_pinned():
    """The released models were trained on these images: a change to the renderer (or to data/drawing.py, which it
    shares with the other worlds) that moves a single pixel fails here."""
    import hashlib

    digest = hashlib.sha256()
    for domain in ("source", "babies", "sunglasses", "sketches", "modigliani"):
        for i in range(3):
            digest.update(np.asarray(faces.render(domain, "train", i, 32, 0)[0]).tobytes())
        digest.update(np.asarray(faces.render(domain, "reference", 0, 64, 0)[0]).tobytes())
    assert digest.hexdigest() == "0baf8036f4c902b069aa2ed717e5c8dcee2c30e13b139352217e5c93c1af18f7"
