"""The fidelity measures of every evaluate job against their definitions: precision and recall (Kynkaanniemi et al.
2019) and density and coverage (Naeem et al. 2020) against a written-out reference; the classifier two-sample test
(Lopez-Paz and Oquab 2017) at chance on one distribution, near 1 on disjoint ones, and sensitive to a 1 px blur."""
import dataclasses
import math

import numpy as np
import pytest

from domainstudio.metrics.prdc_measures import precision_recall_density_coverage
from domainstudio.metrics.two_sample import TwoSampleConfig, classifier_two_sample_test


def written_out_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """The four measures, one point at a time, as the papers define them. The ball of a point reaches its k-th
    nearest neighbour among the *other* points of its own set (Kynkaanniemi et al. eq. 1-2; Naeem et al. eq. 3-6);
    balls are open, as in the authors' code (ties only arise for exact duplicates)."""
    def radius(points, i):
        others = [np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i]
        return sorted(others)[k - 1]

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    d = [[np.linalg.norm(x - y) for y in fake] for x in real]  # d[i][j]: real i to fake j
    in_real_balls = [sum(d[i][j] < r_real[i] for i in range(len(real))) for j in range(len(fake))]
    precision = np.mean([n > 0 for n in in_real_balls])
    recall = np.mean([any(d[i][j] < r_fake[j] for j in range(len(fake))) for i in range(len(real))])
    density = np.mean(in_real_balls) / k
    coverage = np.mean([min(d[i]) < r_real[i] for i in range(len(real))])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("k", [1, 3, 5])
def test_prdc_equals_the_written_out_definitions(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(60, 4))
    fake = np.concatenate([rng.normal(0.7, 0.6, size=(30, 4)), rng.normal(-2.0, 1.0, size=(15, 4))])  # unequal sets
    ours, reference = precision_recall_density_coverage(real, fake, k), written_out_prdc(real, fake, k)
    assert 0 < ours["precision"] < 1 and 0 < ours["recall"] < 1 and 0 < ours["coverage"] < 1  # no trivial case
    assert ours == pytest.approx(reference, abs=1e-12)


def test_prdc_of_identical_and_disjoint_sets():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 6))
    same = precision_recall_density_coverage(real, real.copy(), 5)
    # Each fake sits on its real: inside that real's ball and those of its k - 1 nearer neighbours (the k-th lies on
    # the boundary, outside an open ball), so density is exactly 1.
    assert same == pytest.approx({"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0})
    fresh = precision_recall_density_coverage(real, rng.normal(size=(400, 6)), 5)  # one distribution, other points
    assert fresh["precision"] > 0.9 and fresh["recall"] > 0.9 and fresh["coverage"] > 0.9
    assert fresh["density"] == pytest.approx(1.0, abs=0.1)  # expected 1 on one distribution (Naeem et al. sec. 3.2)
    apart = precision_recall_density_coverage(real, real + 100.0, 5)
    assert apart == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_prdc_reads_fidelity_and_diversity_apart():
    """Samples collapsed onto a small part of the real distribution: all inside it (precision near 1) but covering
    little of it (low recall and coverage)."""
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 2))
    collapsed = rng.normal(0.0, 0.2, size=(400, 2))
    out = precision_recall_density_coverage(real, collapsed, 5)
    assert out["precision"] > 0.95 and out["recall"] < 0.3 and out["coverage"] < 0.3


def _blobs(n: int, seed: int, size: int = 16) -> np.ndarray:
    """uint8 images of one distribution: a bright disc at a random place on a random grey."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(4, size - 4, 2).tolist() + [rng.uniform(2, 4)]
        grey, colour = rng.uniform(40, 120), rng.uniform(150, 255, 3)
        disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None]
        out[i] = np.where(disc, colour, grey).astype(np.uint8)
    return out


SMALL = TwoSampleConfig(n_per_side=300, epochs=6, batch_size=32, channels=(8, 16, 32))


def test_c2st_is_at_chance_on_one_distribution():
    """Two disjoint draws of one distribution, one twice as large: as many images are taken from each side, so the
    classes are balanced and 0.5 is chance."""
    out = classifier_two_sample_test(_blobs(300, seed=1), _blobs(600, seed=2), dataclasses.replace(SMALL, n_per_side=1000))
    assert out["c2st_n_test"] == 300 and out["c2st_n_train"] == 300  # 150 + 150 held out of 300 per side
    assert abs(out["c2st_accuracy"] - 0.5) < 0.08  # 0.08 is 2.8 standard errors under the null
    n, correct = out["c2st_n_test"], round(out["c2st_accuracy"] * out["c2st_n_test"])
    # P(at least this many correct | Binomial(n, 1/2)), Lopez-Paz and Oquab sec. 2
    assert out["c2st_p_value"] == pytest.approx(sum(math.comb(n, i) for i in range(correct, n + 1)) / 2**n, rel=1e-9)
    assert out["c2st_p_value"] > 0.01
    assert out["c2st_std"] == pytest.approx(math.sqrt(out["c2st_accuracy"] * (1 - out["c2st_accuracy"]) / n))


def test_c2st_scores_held_out_images_only():
    """On pure noise a long-trained classifier memorises its training images; the held-out accuracy stays at chance."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(200, 8, 8, 3), dtype=np.uint8)
    cfg = TwoSampleConfig(n_per_side=100, epochs=30, batch_size=20, lr=0.003, channels=(16, 32))
    out = classifier_two_sample_test(noise[:100], noise[100:], cfg)
    assert abs(out["c2st_accuracy"] - 0.5) < 0.15  # 100 held out: 0.15 is 3 standard errors under the null


def test_c2st_tells_disjoint_distributions_apart():
    samples = 255 - _blobs(300, seed=1)  # the negative: a dark disc on a light grey
    out = classifier_two_sample_test(samples, _blobs(300, seed=2), SMALL)
    assert out["c2st_accuracy"] > 0.95 and out["c2st_p_value"] < 1e-20


def test_c2st_sees_a_one_pixel_blur():
    """Rendered faces against other rendered faces under a 1 px Gaussian blur: an artifact FID on the embedded
    backbone's features punishes little, and one the classifier sees on raw pixels."""
    from scipy.ndimage import gaussian_filter

    from domainstudio.data import faces

    def render(split, n):
        return np.stack([np.asarray(faces.render("babies", split, i, 32, 0)[0]) for i in range(n)])

    blurred = np.rint(gaussian_filter(render("test_a", 300).astype(float), sigma=(0, 1, 1, 0))).astype(np.uint8)
    out = classifier_two_sample_test(blurred, render("test_b", 300), TwoSampleConfig(n_per_side=300))
    assert out["c2st_accuracy"] > 0.8


def test_c2st_is_deterministic_by_seed_and_leaves_the_global_rng_alone():
    """A half-learnt contrast (light noise), where the accuracy moves with the initialisation: the seed decides it,
    the global random state neither decides it nor is changed by it."""
    import torch

    a = _blobs(120, seed=1)
    b = np.clip(_blobs(120, seed=2) + np.random.default_rng(0).normal(0, 12, a.shape), 0, 255).astype(np.uint8)
    cfg = TwoSampleConfig(n_per_side=120, epochs=10, batch_size=16, channels=(8, 16))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = classifier_two_sample_test(a, b, cfg)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(7)
    assert classifier_two_sample_test(a, b, cfg) == first
    assert len({classifier_two_sample_test(a, b, dataclasses.replace(cfg, seed=s))["c2st_accuracy"] for s in range(4)}) > 1
    with pytest.raises(ValueError, match="differ in size"):
        classifier_two_sample_test(a[:, :8], b, cfg)


def test_every_evaluate_job_writes_the_fidelity_record(tmp_path):
    """`domainstudio evaluate` with the workflow's arguments (domainstudio.params.arguments.evaluate_arguments, params.yaml's
    evaluate block) on a few rendered images and the released metric backbone: fidelity.json beside fid.json."""
    import json
    from pathlib import Path

    import yaml

    from domainstudio.cli import main
    from domainstudio.params.arguments import evaluate_arguments
    from domainstudio.data import faces
    from domainstudio.data.images import save_images

    root = Path(__file__).resolve().parents[1]
    params = yaml.safe_load((root / "params.yaml").read_text())
    for name, split, n in (("train", "train", 10), ("reference", "reference", 60), ("samples/images", "fresh", 40)):
        save_images(np.stack([np.asarray(faces.render("babies", split, i, 32, 0)[0]) for i in range(n)]), tmp_path / name)
    backbone = str(root / params["evaluate"]["embedded_backbone"])
    assert main(["reference-stats", "--images", str(tmp_path / "reference"), "--resolution", "32", "--backbone", "embedded",
                 "--embedded-backbone", backbone, "--out", str(tmp_path / "stats.npz")]) == 0
    run = {"world": "faces", "domain": "babies", "shots": 10, "method": "ddpm-ft", "family": "ddpm", "seed": 0}
    out = tmp_path / "metrics"
    args = evaluate_arguments(params["evaluate"], 32, run, samples=str(tmp_path / "samples"), train=str(tmp_path / "train"),
                              reference=str(tmp_path / "reference"), reference_stats=str(tmp_path / "stats.npz"),
                              metric_backbone=backbone, out=str(out), diversity=True, threads=1)
    assert main(["evaluate", *args]) == 0
    record = json.loads((out / "fidelity.json").read_text())
    assert record["method"] == "ddpm-ft" and record["fid_backbone"] == "embedded" and record["prdc_k"] == params["evaluate"]["prdc_k"]
    assert record["c2st_n_test"] == 40 and record["c2st_n_train"] == 40  # 40 a side, half held out
    assert record["prdc_n_real"] == record["prdc_n_fake"] == 40  # a subset of the 60 reference features, as many as samples
    assert record["c2st_config"]["seed"] == params["evaluate"]["seed"]
    assert all(0 <= record[k] <= 1 for k in ("c2st_accuracy", "precision", "recall", "coverage"))
