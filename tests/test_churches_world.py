"""The embedded churches world: deterministic, every factor recorded and drawn, nested K-shot sets, the building kept
in place across domains, and target domains that differ in colour as haunted houses and landscape drawings do."""
import csv

import numpy as np
import pytest

from domainstudio.data import churches
from domainstudio.data.world import WORLDS, backbone_domains, backbone_release_name, domain_overview, render_target, world_module
from domainstudio.metrics.embedded_backbone import FactorCoder, read_factors
from tests.conftest import assert_nested_shot_sets_and_disjoint_reference

# A church with every part that a factor changes: two towers with spires, two windows, trees on both sides.
FULL = {"body_width": 0.45, "body_height": 0.26, "roof": "gable", "towers": 2, "tower_height": 0.16, "spire": 1,
        "windows": 2, "window_shape": "arched", "door": "arched", "wall_colour": 0, "roof_colour": 0, "sky": "day",
        "ground_colour": 0, "trees": "both", "offset_x": 0.0, "scale": 1.0}


def test_the_world_is_registered_and_named_in_errors():
    assert world_module("churches") is churches and set(WORLDS) == {"faces", "churches"}
    with pytest.raises(ValueError, match=r"unknown embedded world 'atlantis'; available: \['churches', 'faces'\]"):
        world_module("atlantis")


def test_a_backbone_trains_on_every_domain_but_the_held_out_ones_unless_named():
    assert backbone_domains("churches") == ("haunted", "landscapes")
    assert backbone_domains("faces") == ("babies", "sunglasses", "sketches", "modigliani")   # photos is held out
    assert backbone_domains("faces", ["photos", "babies"]) == ("babies", "photos")           # the world's order
    assert backbone_domains("churches", ["landscapes"]) == ("landscapes",)
    with pytest.raises(ValueError, match=r"\['babies'\] are not target domains of 'churches'"):
        backbone_domains("churches", ["haunted", "babies"])


def test_a_backbone_release_is_named_after_the_held_out_domains_it_knows():
    assert backbone_release_name("faces") == "metric_backbone"
    assert backbone_release_name("faces", ["babies", "sketches"]) == "metric_backbone"
    assert backbone_release_name("faces", ["babies", "sunglasses", "sketches", "modigliani", "photos"]) == "metric_backbone_with_photos"
    assert backbone_release_name("churches", ["haunted", "landscapes"]) == "metric_backbone"      # no held-out domain


def test_rendering_is_deterministic_and_seed_dependent():
    a, fa = churches.render("haunted", "train", 3, 32, seed=0)
    b, fb = churches.render("haunted", "train", 3, 32, seed=0)
    c, fc = churches.render("haunted", "train", 3, 32, seed=1)
    assert fa == fb and fa != fc
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    # image i depends on (seed, domain, split, i) only: the source domain draws other records than haunted
    assert churches.render("source", "train", 3, 32, 0)[1] != fa


def test_factor_records_are_complete_and_within_their_levels():
    rng = np.random.default_rng(0)
    records = [churches.sample_factors(rng) for _ in range(600)]
    assert len(churches.FACTOR_NAMES) == 16 and all(tuple(r) == churches.FACTOR_NAMES for r in records)
    for name, levels in churches.FACTOR_LEVELS.items():
        values = [r[name] for r in records]
        if levels is None:  # continuous: spread over a range, not a handful of values
            assert all(isinstance(v, float) for v in values) and len(set(values)) == len(values)
        else:  # categorical: every value is a level and every level occurs
            assert set(values) == set(levels), name
    # Independence: the continuous factors are drawn separately, so their correlations are near zero.
    continuous = [n for n, lv in churches.FACTOR_LEVELS.items() if lv is None]
    matrix = np.corrcoef(np.array([[r[n] for n in continuous] for r in records]).T)
    assert np.abs(matrix[~np.eye(len(continuous), dtype=bool)]).max() < 0.15


@pytest.mark.parametrize("domain", churches.DOMAINS)
def test_every_factor_changes_the_picture_in_every_domain(domain):
    """Each factor is drawn: changing it alone (one level on, or +0.04) changes the image."""
    assert set(FULL) == set(churches.FACTOR_NAMES)
    base = np.asarray(churches.render_church(FULL, domain, 64, np.random.default_rng(0)), float)
    for name, levels in churches.FACTOR_LEVELS.items():
        value = FULL[name] + 0.04 if levels is None else levels[(levels.index(FULL[name]) + 1) % len(levels)]
        changed = np.asarray(churches.render_church({**FULL, name: value}, domain, 64, np.random.default_rng(0)), float)
        assert np.abs(changed - base).mean() > 0.1, f"{name} is not visible in {domain}"


@pytest.mark.parametrize("size", [32, 64])
def test_every_domain_renders_at_both_sizes(size):
    for domain in churches.DOMAINS:
        image, _ = churches.render(domain, "train", 0, size, 0)
        assert image.size == (size, size) and image.mode == "RGB"
    overview = domain_overview("churches", size, 0, per_domain=2)
    assert overview.shape == (len(churches.DOMAINS) * 2, size, size, 3) and overview.dtype == np.uint8


def test_target_sets_are_nested_and_reference_is_disjoint(tmp_path):
    out = tmp_path / "haunted"
    render_target("churches", "haunted", out, [1, 5, 10], reference=12, size=32, seed=0)
    assert_nested_shot_sets_and_disjoint_reference(out)
    # factors.csv: one row per image, every factor, and the metric backbone's coder reads every row back
    rows = read_factors(out / "10shot") + read_factors(out / "reference")
    assert len(rows) == 22 and all(set(churches.FACTOR_NAMES) <= set(r) for r in rows)
    coder = FactorCoder.fit(churches.FACTOR_LEVELS, rows)
    codes = [[coder.encode(n, r[n]) for n in churches.FACTOR_NAMES] for r in rows]
    assert all(0 <= c < coder.n_classes(n) for row in codes for n, c in zip(churches.FACTOR_NAMES, row))
    with open(out / "10shot" / "factors.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert first["file"] == "000000.png" and first["index"] == "0"
    assert {k: first[k] for k in churches.FACTOR_NAMES} == {k: str(v) for k, v in churches.render("haunted", "train", 0, 32, 0)[1].items()}


def _building_extent(image) -> tuple[float, float]:
    """Median leftmost and rightmost column of the pixels that stand out from their row's background (estimated
    from the image's side columns), over rows through the building's body above the hills of the drawings."""
    a = np.asarray(image, float)
    background = np.median(np.concatenate([a[:, :3], a[:, -3:]], 1), axis=1, keepdims=True)
    mask = np.abs(a - background).max(-1) > 25
    rows = [np.flatnonzero(r) for r in mask[int(0.52 * len(a)):int(0.64 * len(a))]]
    assert all(len(r) for r in rows), "no building in the body's rows"
    return float(np.median([r[0] for r in rows])), float(np.median([r[-1] for r in rows]))


@pytest.mark.parametrize("towers", [0, 1, 2])
def test_one_factor_record_keeps_its_building_in_place_in_every_domain(towers):
    """A tall, large church (its body reaches above the drawings' hills) without trees, at three positions: in every
    domain the building spans the same columns as in the source domain (haunted houses lean by up to 3 px of 64),
    and moves with offset_x."""
    extents = {}
    for offset in (-0.08, 0.0, 0.08):
        f = {**FULL, "towers": towers, "trees": "none", "body_height": 0.32, "scale": 1.2, "offset_x": offset}
        for domain in churches.DOMAINS:
            extents[domain, offset] = _building_extent(churches.render_church(f, domain, 64, np.random.default_rng(1)))
        left, right = extents["source", offset]
        assert right - left > 25
        for domain in churches.TARGET_DOMAINS:
            assert np.abs(np.subtract(extents[domain, offset], (left, right))).max() <= 3, (domain, offset, extents)
    for domain in churches.DOMAINS:  # 0.16 of 64 px between the two outer positions
        moved = np.subtract(extents[domain, 0.08], extents[domain, -0.08])
        assert np.all(np.abs(moved - 0.16 * 64) <= 3), (domain, moved)


def _colour_statistics(domain: str, n: int = 24) -> dict:
    images = [churches.render(domain, "reference", i, 32, 0)[0] for i in range(n)]
    hsv = np.stack([np.asarray(im.convert("HSV"), float) / 255 for im in images])
    rgb = np.stack([np.asarray(im, float) for im in images])
    return {"value": hsv[..., 2].mean(), "median_value": np.median(hsv[..., 2].reshape(n, -1), 1).mean(),
            "saturation": hsv[..., 1].mean(), "chroma": (rgb.max(-1) - rgb.min(-1)).mean(), "rgb": rgb}


def test_domains_differ_in_colour_as_their_styles_say():
    source, haunted, landscapes = (_colour_statistics(d) for d in churches.DOMAINS)
    # haunted houses: a dark, desaturated night ...
    assert haunted["value"] < 0.4 * source["value"] and haunted["value"] < 0.3
    assert haunted["saturation"] < 0.7 * source["saturation"] and haunted["chroma"] < 0.3 * source["chroma"]
    # ... in which every house has a glowing window (a warm, bright pixel even at 32 px)
    r, b = haunted["rgb"][..., 0], haunted["rgb"][..., 2]
    assert ((r >= 150) & (r - b >= 60)).any(axis=(1, 2)).all()
    # landscape drawings: mostly paper-white, pale and low in saturation, but washed with colour (unlike grayscale sketches)
    assert landscapes["median_value"] > 0.75 and landscapes["value"] > source["value"]
    assert landscapes["saturation"] < 0.15 and landscapes["saturation"] < 0.5 * source["saturation"]
    assert landscapes["chroma"] > 8


def test_unknown_domain_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"unknown churches domain 'castles'; expected one of \('source', 'haunted', 'landscapes'\)"):
        churches.render("castles", "train", 0, 32, 0)
    with pytest.raises(ValueError, match=r"unknown target domain 'babies' of world 'churches'; available: \('haunted', 'landscapes'\)"):
        render_target("churches", "babies", tmp_path / "babies", [1], reference=1, size=32, seed=0)
    assert not (tmp_path / "babies").exists()
