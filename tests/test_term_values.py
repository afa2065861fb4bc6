"""Value tests of every loss term against a reference written out from its equation, in float64 and plain loops.

A property test (zero for identical sets, positive otherwise) passes many wrong formulas: a softmax that includes
j = i, swapped KL directions, a mean instead of a sum. These compare numbers, so any wrong formula fails.
"""
import math

import numpy as np
import pytest
import torch

from domainstudio.adapt import losses
from domainstudio.adapt.objectives import DomainStudio, DomainStudioOptions, DomainStudioWeights, noised_batch
from domainstudio.gan.losses import cross_domain_consistency_loss, ewc_penalty
from domainstudio.models.source import SchedulerConfig, build_scheduler
from tests.conftest import tiny_unet


def reference_relative_distance(ada: np.ndarray, sou: np.ndarray, direction: str, reduction: str = "sum") -> float:
    """sum_i KL over the softmax over j != i of cos(x_i, x_j) (DomainStudio eq. 5-7), one pair at a time;
    ``reduction="mean"``: KLDivLoss's mean over the n (n - 1) entries of the released code."""
    ada, sou = ada.reshape(len(ada), -1).astype(np.float64), sou.reshape(len(sou), -1).astype(np.float64)

    def cos(x, i, j):
        return float(x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])))

    total = 0.0
    for i in range(len(ada)):
        others = [j for j in range(len(ada)) if j != i]
        e_ada = [math.exp(cos(ada, i, j)) for j in others]
        e_sou = [math.exp(cos(sou, i, j)) for j in others]
        p_ada = [e / sum(e_ada) for e in e_ada]
        p_sou = [e / sum(e_sou) for e in e_sou]
        if direction == "paper":  # KL(p_ada || p_sou)
            total += sum(p * math.log(p / q) for p, q in zip(p_ada, p_sou))
        else:  # KL(p_sou || p_ada)
            total += sum(q * math.log(q / p) for p, q in zip(p_ada, p_sou))
    n = len(ada)
    return total if reduction == "sum" else total / (n * (n - 1))


def reference_haar_highpass(x: np.ndarray, convention: str = "pywavelets") -> np.ndarray:
    """LH + HL + HH of a one-level Haar transform with L = (1, 1)/sqrt2, H = (-1, 1)/sqrt2, written out per 2x2
    block [[a, b], [c, d]]: applied as convolutions (PyWavelets' dwt2), or as correlations (the released code's
    Conv2d), which flips the sign of every H tap."""
    h_sign = 1 if convention == "pywavelets" else -1
    n, ch, h, w = x.shape
    out = np.zeros((n, ch, h // 2, w // 2))
    for k in range(n):
        for c in range(ch):
            for i in range(h // 2):
                for j in range(w // 2):
                    a, b = x[k, c, 2 * i, 2 * j], x[k, c, 2 * i, 2 * j + 1]
                    cc, d = x[k, c, 2 * i + 1, 2 * j], x[k, c, 2 * i + 1, 2 * j + 1]
                    lh = h_sign * (a + b - cc - d) / 2  # low-pass along each row, high-pass down the columns
                    hl = h_sign * (a - b + cc - d) / 2  # high-pass along each row, low-pass down the columns
                    hh = (a - b - cc + d) / 2           # high-pass both ways: two sign flips cancel
                    out[k, c, i, j] = lh + hl + hh
    return out


def reference_hf_mse(x0_ada: np.ndarray, x0: np.ndarray, weight: np.ndarray | None, haar: str = "pywavelets") -> float:
    """(1/N) sum_i w_i * mean over pixels of (hf(x0_ada_i) - hf(x0_i))^2 (DomainStudio eq. 10)."""
    d = reference_haar_highpass(x0_ada.astype(np.float64), haar) - reference_haar_highpass(x0.astype(np.float64), haar)
    per_sample = [float((d[i] ** 2).mean()) for i in range(len(d))]
    w = np.ones(len(d)) if weight is None else weight.astype(np.float64)
    return float(sum(wi * si for wi, si in zip(w, per_sample)) / len(d))


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(3)
    return torch.randn(5, 3, 8, 8, generator=g), torch.randn(5, 3, 8, 8, generator=g)


@pytest.mark.parametrize("direction", ["paper", "official"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_relative_distance_loss_equals_the_written_out_equation(images, direction, reduction):
    ada, sou = images
    got = losses.relative_distance_loss(ada, sou, direction, reduction).item()
    assert got == pytest.approx(reference_relative_distance(ada.numpy(), sou.numpy(), direction, reduction), rel=1e-5, abs=1e-9)
    assert got > 1e-4  # far from zero: the comparison above is not between two near-zero numbers


def test_the_two_directions_differ_and_each_matches_its_own_reference(images):
    ada, sou = images
    paper, official = (reference_relative_distance(ada.numpy(), sou.numpy(), d) for d in ("paper", "official"))
    assert abs(paper - official) > 1e-4 * max(paper, official)  # so a swap of directions fails the test above


@pytest.mark.parametrize("convention, corner", [("pywavelets", (0, 0)), ("official", (1, 1))])
def test_haar_highpass_equals_the_filters_written_out_per_pixel(images, convention, corner):
    x = images[0]
    got = losses.haar_highpass(x, convention).double().numpy()
    np.testing.assert_allclose(got, reference_haar_highpass(x.double().numpy(), convention), rtol=1e-5, atol=1e-6)
    # the same thing said another way: twice one corner pixel of each 2x2 block minus the block mean
    block_mean = x.double().unfold(2, 2, 2).unfold(3, 2, 2).mean((-1, -2)).numpy()
    r, c = corner
    np.testing.assert_allclose(got, 2 * (x.double().numpy()[:, :, r::2, c::2] - block_mean), rtol=1e-5, atol=1e-6)


def test_haar_pywavelets_convention_equals_pywavelets():
    import pywt

    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8))
    _, (ch, cv, cd) = pywt.dwt2(x, "haar", axes=(-2, -1))
    np.testing.assert_allclose(losses.haar_highpass(torch.from_numpy(x)).double().numpy(), ch + cv + cd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_hf_reconstruction_loss_equals_the_written_out_equation(images, weighted):
    ada, x0 = images
    weight = torch.tensor([0.1, 0.5, 1.0, 0.0, 0.9]) if weighted else None
    got = losses.hf_reconstruction_loss(ada, x0, weight).item()
    assert got == pytest.approx(reference_hf_mse(ada.numpy(), x0.numpy(), None if weight is None else weight.numpy()), rel=1e-5)


def test_predicted_x0_equals_the_ddpm_formula(images):
    sched = build_scheduler(SchedulerConfig())
    x_t, eps = images
    t = torch.tensor([0, 10, 500, 900, 999])
    got = losses.predicted_x0(x_t, eps, sched.alphas_cumprod, t).double().numpy()
    abar = sched.alphas_cumprod.double().numpy()
    for i, ti in enumerate(t.tolist()):
        expected = (x_t[i].double().numpy() - math.sqrt(1 - abar[ti]) * eps[i].double().numpy()) / math.sqrt(abar[ti])
        np.testing.assert_allclose(got[i], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("options", [
    DomainStudioOptions(),
    DomainStudioOptions(kl_direction="official", pairwise_min_t=0, hfmse_weighting="none"),
    DomainStudioOptions(kl_direction="official", pairwise_min_t=0, pairwise_samples=3, pairwise_reduction="mean", haar="official"),
])
def test_domainstudio_objective_is_the_weighted_sum_of_the_written_out_terms(options):
    """L = L_simple + l2 L_img + l3 L_hf + l4 L_hfmse on the samples the timestep window keeps (eq. 11)."""
    sched = build_scheduler(SchedulerConfig())
    source, adapted = tiny_unet(), tiny_unet()
    with torch.no_grad():
        for p in adapted.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    weights = DomainStudioWeights(l_img=2.0, l_hf=1.0, l_hfmse=0.05)
    x0 = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    loss, terms = DomainStudio(sched, source, weights, options, batch_size=8)(adapted, x0, torch.Generator().manual_seed(5))

    b = noised_batch(sched, x0, torch.Generator().manual_seed(5))  # the same draws
    with torch.no_grad():
        eps_ada, eps_sou = adapted(b.x_t, b.t).sample.double(), source(b.x_t, b.t).sample.double()
    abar = sched.alphas_cumprod.double()
    x0_of = lambda eps: ((b.x_t.double() - (1 - abar[b.t]).sqrt().view(-1, 1, 1, 1) * eps) / abar[b.t].sqrt().view(-1, 1, 1, 1)).numpy()  # noqa: E731
    x0_ada, x0_sou = x0_of(eps_ada), x0_of(eps_sou)
    keep = (b.t >= options.pairwise_min_t).nonzero().flatten()
    generator = torch.Generator().manual_seed(5)
    noised_batch(sched, x0, generator)  # the objective's own draws, then its choice of pairwise_samples of the window
    if options.pairwise_samples is not None:
        keep = keep[torch.randperm(len(keep), generator=generator)[: options.pairwise_samples]]
    keep = keep.numpy()
    assert terms["pairwise_n"] == len(keep) >= 3
    hf = lambda x: reference_haar_highpass(x, options.haar)  # noqa: E731
    rd = lambda a, s, direction=options.kl_direction: reference_relative_distance(a, s, direction, options.pairwise_reduction)  # noqa: E731
    expected = {
        "l_simple": float(((eps_ada - b.noise.double()) ** 2).mean()),
        "l_img": rd(x0_ada[keep], x0_sou[keep]),
        "l_hf": rd(hf(x0_ada[keep]), hf(x0_sou[keep])),
        "l_hfmse": reference_hf_mse(x0_ada, x0.numpy(), abar[b.t].numpy() if options.hfmse_weighting == "abar" else None, options.haar),
    }
    # x0_hat is formed in float32 (the term is computed so), 1/sqrt(abar_t) amplifies its rounding: rel 1e-3. The
    # other KL direction differs by more than that here, so a swapped or ignored kl_direction fails.
    other = "official" if options.kl_direction == "paper" else "paper"
    if options.pairwise_samples is None:  # with 3 samples the two directions differ by less than the tolerance
        assert abs(rd(x0_ada[keep], x0_sou[keep], other) - expected["l_img"]) > 3e-3 * expected["l_img"]
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-3), name
    total = expected["l_simple"] + 2.0 * expected["l_img"] + 1.0 * expected["l_hf"] + 0.05 * expected["l_hfmse"]
    assert loss.item() == pytest.approx(total, rel=1e-3)


@pytest.mark.parametrize("lo, hi, t", [
    (500, None, [499, 500, 501, 0, 999, 250, 750, 998]),
    (200, 800, [199, 200, 201, 500, 650, 798, 799, 800, 801]),
])
def test_domainstudio_objective_on_and_beside_the_window_edges(monkeypatch, lo, hi, t):
    """L = L_simple + l2 L_img + l3 L_hf + l4 L_hfmse (eq. 11) with timesteps placed on and one step beside
    pairwise_min_t and pairwise_max_t: the window keeps pairwise_min_t <= t < pairwise_max_t, decided sample by
    sample in the reference; L_simple and the abar-weighted L_hfmse take the whole batch."""
    from domainstudio.adapt import objectives

    sched = build_scheduler(SchedulerConfig())
    source, adapted = tiny_unet(), tiny_unet()
    with torch.no_grad():
        for p in adapted.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    t = torch.tensor(t)
    n = len(t)
    x0 = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(5))

    def placed(scheduler, x0, generator):  # the objective's draw of t and eps, with t placed
        return objectives.NoisedBatch(x0, noise, t, scheduler.add_noise(x0, noise, t))

    monkeypatch.setattr(objectives, "noised_batch", placed)
    weights = DomainStudioWeights(l_img=2.0, l_hf=1.0, l_hfmse=0.05)
    options = DomainStudioOptions(pairwise_min_t=lo, pairwise_max_t=hi)
    loss, terms = DomainStudio(sched, source, weights, options, batch_size=n)(adapted, x0, torch.Generator().manual_seed(0))

    x_t = sched.add_noise(x0, noise, t)
    with torch.no_grad():
        eps_ada, eps_sou = adapted(x_t, t).sample.double().numpy(), source(x_t, t).sample.double().numpy()
    abar = sched.alphas_cumprod.double().numpy()
    x_t, eps, x0 = x_t.double().numpy(), noise.double().numpy(), x0.double().numpy()
    ts = t.tolist()
    x0_ada = np.stack([(x_t[i] - math.sqrt(1 - abar[ts[i]]) * eps_ada[i]) / math.sqrt(abar[ts[i]]) for i in range(n)])
    x0_sou = np.stack([(x_t[i] - math.sqrt(1 - abar[ts[i]]) * eps_sou[i]) / math.sqrt(abar[ts[i]]) for i in range(n)])

    def window(lo, hi):
        return [i for i in range(n) if lo <= ts[i] and (hi is None or ts[i] < hi)]

    def objective(keep):
        hf = reference_haar_highpass
        return {"l_simple": float(((eps_ada - eps) ** 2).mean()),
                "l_img": reference_relative_distance(x0_ada[keep], x0_sou[keep], "paper"),
                "l_hf": reference_relative_distance(hf(x0_ada[keep]), hf(x0_sou[keep]), "paper"),
                "l_hfmse": reference_hf_mse(x0_ada, x0, abar[ts])}

    keep = window(lo, hi)
    expected = objective(keep)
    assert terms["pairwise_n"] == len(keep)
    for name, value in expected.items():
        assert terms[name] == pytest.approx(value, rel=1e-3), name
    total = expected["l_simple"] + 2.0 * expected["l_img"] + 1.0 * expected["l_hf"] + 0.05 * expected["l_hfmse"]
    assert loss.item() == pytest.approx(total, rel=1e-3)
    # each edge one step off keeps another set of samples and moves L_img by far more than the tolerance
    for other in (window(lo + 1, hi), window(lo - 1, hi)) + (() if hi is None else (window(lo, hi + 1), window(lo, hi - 1))):
        assert other != keep
        assert abs(objective(other)["l_img"] - expected["l_img"]) > 1e-2 * expected["l_img"]


def test_cdc_distance_loss_is_the_sum_over_layers_of_the_written_out_kl():
    """CDC's L_dist (Ojha et al. eq. 1-2): per layer, KL(adapted || source) of the softmax over j != i."""
    g = torch.Generator().manual_seed(0)
    ada = [torch.randn(4, 8, 4, 4, generator=g), torch.randn(4, 16, generator=g)]
    src = [torch.randn(4, 8, 4, 4, generator=g), torch.randn(4, 16, generator=g)]
    expected = sum(reference_relative_distance(a.numpy(), s.numpy(), "paper") for a, s in zip(ada, src))
    assert cross_domain_consistency_loss(ada, src).item() == pytest.approx(expected, rel=1e-5)


def test_ewc_penalty_is_the_fisher_weighted_squared_distance_to_the_source():
    """EWC (Li et al. eq. 4, without lambda): sum over every weight of F_i (theta_i - theta_S,i)^2."""
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    g = torch.Generator().manual_seed(0)
    source = {n: p.detach() + 0.1 * torch.randn(p.shape, generator=g) for n, p in net.named_parameters()}
    fisher = {n: torch.rand(p.shape, generator=g) for n, p in net.named_parameters()}
    expected = 0.0
    for n, p in net.named_parameters():
        for theta, theta_s, f in zip(p.detach().flatten().tolist(), source[n].flatten().tolist(), fisher[n].flatten().tolist()):
            expected += f * (theta - theta_s) ** 2
    assert ewc_penalty(net, source, fisher).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("direction,reduction", [("paper", "sum"), ("official", "mean"), ("official", "sum")])
def test_cdc_with_one_layer_per_anchor_takes_row_i_from_that_layer_only(direction, reduction):
    """The official code's L_dist: row i of the similarity softmax from layer feat_ind[i] only, KLDivLoss(log p_ada,
    p_src) (direction 'official') averaged over the n (n - 1) entries (reduction 'mean')."""
    g = torch.Generator().manual_seed(1)
    ada = [torch.randn(4, 6, generator=g), torch.randn(4, 3, 2, 2, generator=g), torch.randn(4, 5, generator=g)]
    src = [torch.randn(4, 6, generator=g), torch.randn(4, 3, 2, 2, generator=g), torch.randn(4, 5, generator=g)]
    layer = torch.tensor([2, 0, 2, 1])
    n, expected = 4, 0.0
    for i in range(n):  # the row-i term of the reference: KL of anchor i alone, computed on the anchor's layer
        a, s = ada[layer[i]].reshape(n, -1).double().numpy(), src[layer[i]].reshape(n, -1).double().numpy()
        cos = lambda x, j: float(x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])))  # noqa: E731
        others = [j for j in range(n) if j != i]
        p_ada = np.exp([cos(a, j) for j in others]); p_ada /= p_ada.sum()
        p_src = np.exp([cos(s, j) for j in others]); p_src /= p_src.sum()
        p, q = (p_ada, p_src) if direction == "paper" else (p_src, p_ada)
        expected += float((p * np.log(p / q)).sum())
    expected = expected if reduction == "sum" else expected / (n * (n - 1))
    got = cross_domain_consistency_loss(ada, src, direction, reduction, layer_of_sample=layer).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert cross_domain_consistency_loss(ada, src, direction, reduction).item() != pytest.approx(expected, rel=1e-3)


def test_cdc_official_layers_draw_one_block_from_8_px_up_per_anchor():
    """layers: random, the official feat_ind = randint(1, n_latent - 1): never the 4x4 layer. Here: a block from 8 px
    up per anchor, the z and the blocks drawn in that order from the step's stream; the regulariser is lambda times
    the mean over the n (n - 1) entries of KL(source || adapted) of each anchor's row on its block, written out."""
    from domainstudio.gan.artifact import build_gan
    from domainstudio.gan.methods import Cdc, CdcConfig, random_layers
    from domainstudio.gan.networks import GanNetworkConfig

    G, D = build_gan(GanNetworkConfig(z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=16, patch_resolution=8), 32, 0)
    cfg = CdcConfig(weight=7.0, feature_batch=5, kl_direction="official", reduction="mean", layers="random")
    rule = Cdc(G, D, cfg, anchors=3, rng=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in G.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    n_blocks = len(G.blocks)  # 4, 8, 16, 32 px
    drawn = random_layers(n_blocks, 20000, torch.Generator().manual_seed(0))
    assert sorted(drawn.unique().tolist()) == [1, 2, 3]  # every block but the 4x4 one
    assert (drawn.bincount(minlength=n_blocks)[1:].double() / len(drawn) - 1 / 3).abs().max() < 0.02

    rng = torch.Generator().manual_seed(4)
    z = torch.randn(cfg.feature_batch, 8, generator=rng)
    layer = torch.randint(1, n_blocks, (cfg.feature_batch,), generator=rng).tolist()
    assert len(set(layer)) > 1
    with torch.no_grad():
        _, src = rule.source(z, return_features=True)
        _, ada = G(z, return_features=True)
    n, expected = cfg.feature_batch, 0.0
    for i in range(n):
        a, s_ = ada[layer[i]].reshape(n, -1).double().numpy(), src[layer[i]].reshape(n, -1).double().numpy()
        cos = lambda x, j: float(x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])))  # noqa: E731
        others = [j for j in range(n) if j != i]
        p_ada = np.exp([cos(a, j) for j in others]); p_ada /= p_ada.sum()
        p_src = np.exp([cos(s_, j) for j in others]); p_src /= p_src.sum()
        expected += float((p_src * np.log(p_src / p_ada)).sum())  # KLDivLoss(log p_ada, p_src), row i
    expected = cfg.weight * expected / (n * (n - 1))
    loss, terms = rule.generator_regulariser(G, torch.Generator().manual_seed(4))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert terms["cdc"] == pytest.approx(expected / cfg.weight, rel=1e-5)


def test_per_sample_fisher_is_the_mean_of_squared_per_sample_gradients():
    """EWC's Fisher (Li et al. eq. 3) by its definition: one backward pass per sample's -log D(G(z_i)) term,
    squared and averaged over all samples; the batch-mean estimate squares the mean gradient instead."""
    from domainstudio.gan.artifact import build_gan
    from domainstudio.gan.losses import ewc_fisher
    from domainstudio.gan.networks import GanNetworkConfig

    G, D = build_gan(GanNetworkConfig(z_dim=8, w_dim=8, mapping_layers=1, channel_base=32, channel_max=8, patch_resolution=4), 8, 0)
    batches, size = 2, 3
    rng = torch.Generator().manual_seed(5)
    zs = [torch.randn(size, 8, generator=rng) for _ in range(batches)]  # as ewc_fisher draws them
    params = dict(G.named_parameters())
    per_sample = {n: torch.zeros_like(p) for n, p in params.items()}
    batch_mean = {n: torch.zeros_like(p) for n, p in params.items()}
    for z in zs:
        losses_z = torch.nn.functional.softplus(-D(G(z)))  # -log sigmoid(D(G(z_i))), sample by sample
        for i in range(size):
            grads = torch.autograd.grad(losses_z[i], list(params.values()), retain_graph=True, allow_unused=True)
            for (n, _), gr in zip(params.items(), grads):
                if gr is not None:
                    per_sample[n] += gr.pow(2) / (batches * size)
        grads = torch.autograd.grad(losses_z.mean(), list(params.values()), allow_unused=True)
        for (n, _), gr in zip(params.items(), grads):
            if gr is not None:
                batch_mean[n] += gr.pow(2) / batches
    for estimate, expected in (("per_sample", per_sample), ("batch_mean", batch_mean)):
        got = ewc_fisher(G, D, batches, size, torch.Generator().manual_seed(5), estimate)
        for n in params:
            torch.testing.assert_close(got[n], expected[n], rtol=1e-4, atol=1e-10)
    assert sum(v.sum() for v in per_sample.values()) > sum(v.sum() for v in batch_mean.values())


def test_freezed_freezes_exactly_the_first_layers_and_r1_follows_the_cdc_head():
    """FreezeD: after adaptation steps, from_rgb and the first (layers - 1) blocks hold their source weights bit for
    bit and every other discriminator weight moved; CDC's official R1 differentiates the mean of each image's patch
    logits (its train.py: ``real_pred.view(B, -1).mean(1)``), written out patch by patch in float64."""
    from domainstudio.gan.artifact import build_gan
    from domainstudio.gan.losses import r1_penalty
    from domainstudio.gan.methods import Adaptation, FreezeD, FreezeDConfig
    from domainstudio.gan.networks import GanNetworkConfig
    from domainstudio.gan.train import GanTrainConfig, train_gan

    G, D = build_gan(GanNetworkConfig(z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=16, patch_resolution=8), 16, 0)
    before = {n: p.detach().clone() for n, p in D.named_parameters()}
    images = (np.random.default_rng(0).random((6, 16, 16, 3)) * 255).astype(np.uint8)
    train_gan(G, D, images, GanTrainConfig(steps=2, batch_size=4), FreezeD(G, D, FreezeDConfig(layers=2)), torch.Generator().manual_seed(0))
    frozen = {n for n in before if n.startswith(("from_rgb.", "blocks.0."))}
    for n, p in D.named_parameters():
        changed = not torch.equal(p, before[n])
        assert changed != (n in frozen) or n == "patch_head.weight" or n.endswith("patch_head.bias"), n
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    D.double()
    n_patches = D(x, patch=True).shape[1]
    expected = 0.0
    for b in range(len(x)):  # (1/B) sum_b ||grad_{x_b} (1/P) sum_p D_p(x_b)||^2, one backward pass per patch logit
        xb = x[b:b + 1].clone().requires_grad_(True)
        logits = D(xb, patch=True)[0]
        grad_of_mean = sum(torch.autograd.grad(logits[p], xb, retain_graph=True)[0] for p in range(n_patches)) / n_patches
        expected += grad_of_mean.pow(2).sum().item() / len(x)
    got = r1_penalty(D, x, patch=True).item()
    assert got == pytest.approx(expected, rel=1e-9)
    xr = x.clone().requires_grad_(True)
    (grad_of_sum,) = torch.autograd.grad(D(xr, patch=True).sum(), xr)
    assert grad_of_sum.pow(2).sum().item() / len(x) == pytest.approx(n_patches ** 2 * got, rel=1e-9)  # the sum: P^2 times
    assert r1_penalty(D, x).item() != pytest.approx(got, rel=1e-3)
    assert not Adaptation(G, D).r1_on_patches(True)
