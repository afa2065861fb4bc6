"""LPIPS distances from cached embeddings equal lpips.LPIPS; the Intra-LPIPS protocol on known clusters."""
import numpy as np
import pytest
import torch

from domainstudio.metrics.intra_lpips import intra_lpips, intra_lpips_from_embeddings
from domainstudio.metrics.lpips_embedding import LpipsEmbedding, LpipsWeightsMissing, build_lpips, squared_distances


@pytest.fixture(scope="module")
def embedding():
    return LpipsEmbedding("alex-random", resize=64, batch_size=7)


def test_embedding_distances_equal_lpips_package(embedding):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(base.astype(int) + rng.integers(-40, 40, (9, 32, 32, 3)), 0, 255).astype(np.uint8)
    images = np.concatenate([base, noisy, rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)])
    e = embedding(images)
    ours = squared_distances(e, e)
    x = embedding.preprocess(images)
    with torch.no_grad():
        reference = torch.stack([embedding.model(x[i:i + 1].expand_as(x), x).flatten() for i in range(len(x))]).double()
    assert reference.max() > 0.01  # the comparison is not between zeros
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)


def test_identical_images_have_zero_distance(embedding):
    img = np.random.default_rng(1).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    e = embedding(np.concatenate([img, img]))
    assert squared_distances(e, e)[0, 1].item() == pytest.approx(0.0, abs=1e-9)


def test_protocol_on_known_clusters():
    # Two training points; samples around each at known offsets. Squared distances are LPIPS distances.
    train = torch.tensor([[0.0, 0.0], [10.0, 0.0]], dtype=torch.float64)
    around_a = torch.tensor([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)  # pairwise sq: 4, 2, 2
    around_b = torch.tensor([[10.0, 2.0], [10.0, -2.0]], dtype=torch.float64)           # pairwise sq: 16
    r = intra_lpips_from_embeddings(torch.cat([around_a, around_b]), train, cluster_cap=50)
    assert r.cluster_sizes == [3, 2]
    assert r.cluster_scores == pytest.approx([8 / 3, 16.0])
    assert r.intra_lpips == pytest.approx((8 / 3 + 16) / 2)
    # CDC's feat_cluster.py reports torch's std over clusters, the unbiased one: sqrt(sum (s - mean)^2 / (k - 1))
    mean = (8 / 3 + 16) / 2
    assert r.std == pytest.approx((((8 / 3 - mean) ** 2 + (16 - mean) ** 2) / (2 - 1)) ** 0.5)
    assert r.std == pytest.approx(torch.tensor([8 / 3, 16.0], dtype=torch.float64).std().item())


def test_clusters_with_fewer_than_two_members_are_reported_not_scored():
    train = torch.tensor([[0.0], [100.0], [200.0]], dtype=torch.float64)
    samples = torch.tensor([[1.0], [2.0], [201.0]], dtype=torch.float64)
    r = intra_lpips_from_embeddings(samples, train)
    assert r.cluster_sizes == [2, 0, 1] and r.n_clusters_scored == 1 and r.cluster_scores[1] is None
    with pytest.raises(ValueError, match="no cluster has two"):
        intra_lpips_from_embeddings(torch.tensor([[1.0], [150.0]], dtype=torch.float64), train)


def test_cluster_cap_subsamples_reproducibly():
    rng = np.random.default_rng(0)
    samples = torch.from_numpy(rng.normal(size=(300, 4)))
    train = torch.zeros(1, 4, dtype=torch.float64)
    a = intra_lpips_from_embeddings(samples, train, cluster_cap=20, seed=3)
    b = intra_lpips_from_embeddings(samples, train, cluster_cap=20, seed=3)
    c = intra_lpips_from_embeddings(samples, train, cluster_cap=20, seed=4)
    assert a.intra_lpips == b.intra_lpips != c.intra_lpips
    assert a.cluster_sizes == [300]


def test_more_diverse_samples_score_higher(embedding):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    def around(scale):
        noise = rng.normal(0, scale, (20, 32, 32, 3))
        return np.clip(np.repeat(train, 10, axis=0) + noise, 0, 255).astype(np.uint8)
    assert intra_lpips(around(40), train, embedding).intra_lpips > intra_lpips(around(5), train, embedding).intra_lpips


def test_missing_paper_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(LpipsWeightsMissing, match=r"alexnet-owt-.*\.pth"):
        build_lpips("alex")
    with pytest.raises(LpipsWeightsMissing, match=r"vgg16-.*\.pth"):
        build_lpips("vgg")
