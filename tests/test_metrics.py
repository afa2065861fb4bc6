"""FID/KID against clean-fid itself; the embedded backbone is a sensible metric; ground-truth diversity; offline errors."""
import json

import numpy as np
import pytest
import torch

from domainstudio.data import faces
from domainstudio.data.images import save_images
from domainstudio.metrics.diversity import entropy, factor_diversity, near_copy_fraction
from domainstudio.metrics.embedded_backbone import BackboneTrainConfig, EmbeddedBackbone, sanity_checks, train_backbone
from domainstudio.metrics.fid import (CleanFidFeatures, InceptionWeightsMissing, fid, frechet_distance, inception_features, kid,
                                      statistics)
from domainstudio.metrics.lpips_embedding import squared_distances


class TinyExtractor(torch.nn.Module):
    """A fixed random conv net standing in for clean-fid's Inception (same call convention: [0, 255] floats)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)

    def forward(self, x):
        return torch.relu(self.conv(x / 255.0)).mean((2, 3))


def _rendered(domain, n, split="train", size=32):
    out = [faces.render(domain, split, i, size, 0) for i in range(n)]
    return np.stack([np.asarray(im) for im, _ in out]), [f for _, f in out]


def test_fid_equals_clean_fid_compute_fid(tmp_path):
    from cleanfid import fid as cleanfid

    a, _ = _rendered("source", 40)
    b, _ = _rendered("sketches", 40)
    save_images(a, tmp_path / "a")
    save_images(b, tmp_path / "b")
    model = TinyExtractor().eval()
    ours = fid(CleanFidFeatures(model)(a), *statistics(CleanFidFeatures(model)(b)))
    reference = cleanfid.compute_fid(str(tmp_path / "a"), str(tmp_path / "b"), mode="clean", custom_feat_extractor=model,
                                     device=torch.device("cpu"), num_workers=0, batch_size=16, verbose=False)
    assert reference > 1e-3  # the comparison is not between zeros
    assert ours == pytest.approx(reference, rel=1e-4)


def test_frechet_distance_equals_clean_fid():
    from cleanfid.fid import frechet_distance as reference

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 8)), rng.normal(0.3, 1.5, size=(300, 8)) @ rng.normal(size=(8, 8))
    (mu1, s1), (mu2, s2) = statistics(a), statistics(b)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference(mu1, s1, mu2, s2), rel=1e-9)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)
    assert fid(a, mu2, s2) == pytest.approx(reference(mu1, s1, mu2, s2), rel=1e-9)


@pytest.mark.parametrize("gram_limit_bytes", [2**30, 0], ids=["gram-matrices", "per-subset"])
def test_kid_equals_clean_fid_with_the_same_seeded_subsets(gram_limit_bytes):
    from cleanfid.fid import kernel_distance

    rng = np.random.default_rng(0)
    gen, ref = rng.normal(size=(70, 6)), rng.normal(0.2, 1.0, size=(90, 6))
    for seed, size in [(1, 1000), (3, 40)]:  # every subset the smaller set; subsets of 40 (draws matter)
        np.random.seed(seed)
        expected = kernel_distance(gen, ref, max_subset_size=size)
        ours = kid(gen, ref, seed=seed, max_subset_size=size, gram_limit_bytes=gram_limit_bytes)
        assert expected > 1e-3 and ours == pytest.approx(expected, rel=1e-9)
    assert kid(gen, ref, seed=3) == kid(gen, ref, seed=3) != kid(gen, ref, seed=4)
    assert abs(kid(ref[:45], ref[45:])) < kid(gen, ref)  # two halves of one set: ~0


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch, capsys):
    from domainstudio.cli import main

    monkeypatch.setenv("DOMAINSTUDIO_INCEPTION_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(InceptionWeightsMissing, match="inception-2015-12-05.pt"):
        inception_features()
    save_images(_rendered("babies", 3)[0], tmp_path / "ref")
    out = tmp_path / "stats.npz"
    assert main(["reference-stats", "--images", str(tmp_path / "ref"), "--resolution", "32", "--backbone", "inception", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "nowhere" / "inception-2015-12-05.pt") in err and "DOMAINSTUDIO_INCEPTION_DIR" in err
    assert not out.exists()


@pytest.fixture(scope="module")
def backbone():
    sets = {d: _rendered(d, 120) for d in faces.DOMAINS}
    net, coder, report = train_backbone(sets, faces.FACTOR_LEVELS, BackboneTrainConfig(steps=250, batch_size=48, lr=3e-3))
    bb = EmbeddedBackbone(net, coder, {"resolution": 32, "report": report, "coder": coder.state()})
    return bb, {d: s[0] for d, s in sets.items()}


def test_embedded_backbone_is_a_sensible_metric(backbone):
    bb, sets = backbone
    checks = sanity_checks(bb, {d: x[-40:] for d, x in sets.items()}, n=40)
    for domain, c in checks["domains"].items():
        assert c["self"] < 1e-9, domain                                        # identical images: 0
        assert all(a < b for a, b in zip(c["noised"], c["noised"][1:])), domain  # grows with perturbation
        assert c["noised"][1] < c["other_identities"], domain                   # a noised copy is nearer than another face
    within = max(checks["fid_within"].values())
    assert min(checks["fid_between"].values()) > 2 * within                     # domains separate


def test_embedded_backbone_round_trip(backbone, tmp_path):
    bb, sets = backbone
    bb.save(tmp_path)
    again = EmbeddedBackbone.load(tmp_path)
    x = sets["babies"][:5]
    assert torch.equal(bb(x), again(x))
    assert np.array_equal(bb.fid_features(x), again.fid_features(x))
    assert bb.meta["report"]["domain_accuracy"]["sketches"] > 0.9  # domains are told apart on held-out images
    with pytest.raises(FileNotFoundError, match="backbone.json"):
        EmbeddedBackbone.load(tmp_path / "missing")


class FakeHeads:
    """predict() returns given labels, so the diversity arithmetic is checked exactly."""

    def __init__(self, by_id):
        self.by_id = by_id
        self.coder = type("C", (), {"n_classes": staticmethod(lambda n: 4)})()

    def predict(self, images):
        return self.by_id[id(images)]

    def readable_factors(self, domain):
        return ["a", "b"]

    def domain_index(self, domain):
        return 1


def test_factor_diversity_ratios():
    ref, copies, varied = np.zeros(1), np.zeros(2), np.zeros(3)
    uniform = np.tile(np.arange(4), 25)
    heads = FakeHeads({
        id(ref): {"a": uniform, "b": uniform, "domain": np.ones(100, int)},
        id(copies): {"a": np.zeros(100, int), "b": np.zeros(100, int), "domain": np.r_[np.ones(70, int), np.zeros(30, int)]},
        id(varied): {"a": uniform, "b": np.tile([0, 1], 50), "domain": np.ones(100, int)},
    })
    c = factor_diversity(heads, copies, ref, "x")
    assert c["factor_diversity"] == 0.0 and c["in_domain"] == pytest.approx(0.7)
    v = factor_diversity(heads, varied, ref, "x")
    assert v["factor_entropy_ratio"] == pytest.approx({"a": 1.0, "b": 0.5})
    assert entropy(uniform, 4) == pytest.approx(np.log(4))


def test_near_copy_fraction():
    rng = np.random.default_rng(0)
    train = torch.from_numpy(rng.normal(size=(5, 8)))
    reference = torch.from_numpy(rng.normal(size=(400, 8)))
    copies = train[torch.arange(100) % 5] + 1e-3
    assert near_copy_fraction(copies, train, reference, 0.05)["near_copy_fraction"] == 1.0
    fresh = torch.from_numpy(rng.normal(size=(2000, 8)))
    assert near_copy_fraction(fresh, train, reference, 0.05)["near_copy_fraction"] == pytest.approx(0.05, abs=0.02)
